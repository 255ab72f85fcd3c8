"""What users have been seen with, in the two shapes models need: a matrix and time-ordered lists."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recfunnel.data.dataset import interaction_matrix


class History:
    """Visible interactions of every user, as a binary matrix and as per-user sequences."""

    def __init__(self, interactions: pd.DataFrame, n_users: int, n_items: int):
        self.interactions = interactions
        self.n_users = n_users
        self.n_items = n_items

    @cached_property
    def matrix(self) -> sp.csr_matrix:
        """Binary users x items CSR matrix."""
        return interaction_matrix(self.interactions, self.n_users, self.n_items)

    @cached_property
    def sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """(items, offsets): user ``u``'s items by time (ties in file order) are
        ``items[offsets[u]:offsets[u + 1]]``."""
        frame = self.interactions
        order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy(),
                            frame["user"].to_numpy()))
        items = frame["item"].to_numpy()[order].astype(np.int64)
        counts = np.bincount(frame["user"].to_numpy(), minlength=self.n_users)
        return items, np.concatenate([[0], np.cumsum(counts)])

    def lengths(self) -> np.ndarray:
        return np.diff(self.sequences[1])

    @cached_property
    def _pair_keys(self) -> np.ndarray:
        frame = self.interactions
        return np.unique(frame["user"].to_numpy(np.int64) * self.n_items + frame["item"].to_numpy())

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Elementwise: has ``users[i]`` been seen with ``items[i]``? (broadcasts like NumPy)"""
        keys = np.asarray(users, dtype=np.int64) * self.n_items + np.asarray(items, dtype=np.int64)
        where = np.searchsorted(self._pair_keys, keys).clip(max=len(self._pair_keys) - 1)
        return self._pair_keys[where] == keys if len(self._pair_keys) else np.zeros(keys.shape, bool)
