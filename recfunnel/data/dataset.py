"""The one in-memory dataset every stage of the funnel reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from recfunnel.data.history import History


@dataclass
class Dataset:
    """Interactions plus user and item tables, with dense integer indices.

    - ``interactions``: columns ``user`` (int32 index into ``users``), ``item`` (int32 index into
      ``items``), ``timestamp`` (int64 seconds), ``rating`` (float32, NaN when the log has none),
      in file order.
    - ``users``: one row per user index; ``user_id`` holds the raw id, other columns are features.
    - ``items``: one row per item index; ``item_id`` holds the raw id, then ``title`` (str),
      ``genres`` (list of str) and ``year`` (float, NaN when unknown) when known, then other features.
    """

    name: str
    interactions: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def matrix(self, interactions: pd.DataFrame | None = None) -> sp.csr_matrix:
        """Binary user x item CSR matrix of ``interactions`` (default: all of them)."""
        return self.history(interactions).matrix

    def history(self, interactions: pd.DataFrame | None = None) -> History:
        """``interactions`` (default: all of them) as a :class:`History` over this catalog."""
        from recfunnel.data.history import History

        return History(self.interactions if interactions is None else interactions,
                       self.n_users, self.n_items)

    def user_index(self, raw_id: Any) -> int | None:
        """Index of a raw user id (given as it appears in the files, or as a string); None if unknown."""
        return _lookup(self.users["user_id"], raw_id)

    def item_index(self, raw_id: Any) -> int | None:
        return _lookup(self.items["item_id"], raw_id)

    def genre_vocabulary(self) -> list[str]:
        if "genres" not in self.items:
            return []
        return sorted({g for gs in self.items["genres"] for g in gs})

    def genre_matrix(self) -> sp.csr_matrix:
        """Multi-hot item x genre matrix over ``genre_vocabulary()`` (zero columns if no genres)."""
        vocab = self.genre_vocabulary()
        position = {g: j for j, g in enumerate(vocab)}
        rows, cols = [], []
        if vocab:
            for i, gs in enumerate(self.items["genres"]):
                for g in gs:
                    rows.append(i)
                    cols.append(position[g])
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(self.n_items, len(vocab)))

    def summary(self) -> str:
        density = len(self.interactions) / max(1, self.n_users * self.n_items)
        return (
            f"{self.name}: {self.n_users:,} users, {self.n_items:,} items, "
            f"{len(self.interactions):,} interactions (density {density:.4%})"
        )


TAIL_HEAD_SHARE = 0.2  # the "head" is the 20% most popular items; the rest is the long tail
DISLIKE_AT = 2.0  # a rating at or under this is a dislike


def long_tail(counts: np.ndarray) -> np.ndarray:
    """True for items outside the head (the ``TAIL_HEAD_SHARE`` most interacted-with items)."""
    head = np.argsort(-np.asarray(counts), kind="stable")[:int(np.ceil(TAIL_HEAD_SHARE * len(counts)))]
    tail = np.ones(len(counts), dtype=bool)
    tail[head] = False
    return tail


def interaction_matrix(interactions: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary user x item CSR matrix; repeated pairs count once."""
    users = interactions["user"].to_numpy()
    items = interactions["item"].to_numpy()
    m = sp.csr_matrix(
        (np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items)
    )
    m.data[:] = 1.0
    return m


def _lookup(ids: pd.Series, raw_id: Any) -> int | None:
    hits = np.flatnonzero(ids.to_numpy() == raw_id)
    if len(hits) == 0:
        hits = np.flatnonzero(ids.astype(str).to_numpy() == str(raw_id))
    return int(hits[0]) if len(hits) else None
