"""The feature store: one interface, an embedded backend (SQLite) and a server backend (Redis).

It holds what a live request needs: user features and each user's time-ordered events, item
features and item embeddings. Keys are the model's integer user and item indices. Features are
stored raw (as in the data files); the model's feature functions turn them into tensors, for a
training batch and for a live request alike.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recfunnel.data.dataset import DISLIKE_AT


@dataclass(frozen=True)
class Event:
    user: int
    item: int
    timestamp: int
    kind: str = "watch"  # watch | rating
    value: float | None = None

    @property
    def dislike(self) -> bool:
        return self.kind == "rating" and self.value is not None and self.value <= DISLIKE_AT


@dataclass(frozen=True)
class UserState:
    """Everything one request reads about a user."""

    features: dict[str, Any] | None  # raw features; None for a user the store has never seen
    recent: np.ndarray  # the last items, oldest first
    seen: np.ndarray
    disliked: np.ndarray


class FeatureStore(ABC):
    """Writes are durable when the call returns: a process killed afterwards loses nothing."""

    @abstractmethod
    def put_items(self, items: Iterable[int], features: list[dict[str, Any]],
                  vectors: np.ndarray) -> None:
        """Insert or replace items with their raw features and embedding."""

    @abstractmethod
    def _item_values(self, field: str, items: Iterable[int]) -> list[Any]:
        """The stored ``vector`` (bytes) or ``features`` (JSON text) of each item, in the order
        asked; KeyError naming the items the store does not hold."""

    def item_vectors(self, items: Iterable[int]) -> np.ndarray:
        """Embeddings [n, d] in the order asked; KeyError for an unknown item."""
        blobs = self._item_values("vector", items)
        if not blobs:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs])

    def item_features(self, items: Iterable[int]) -> list[dict[str, Any]]:
        """Raw features in the order asked; KeyError for an unknown item."""
        return [json.loads(f) for f in self._item_values("features", items)]

    @abstractmethod
    def n_items(self) -> int:
        """How many items the store holds."""

    @abstractmethod
    def put_users(self, users: Iterable[int], features: list[dict[str, Any]]) -> None:
        """Insert or replace users' raw features."""

    @abstractmethod
    def user_features(self, user: int) -> dict[str, Any] | None:
        """Raw features, or None for a user the store has never seen."""

    @abstractmethod
    def append_events(self, events: list[Event]) -> None:
        """Record events durably."""

    @abstractmethod
    def recent_items(self, user: int, n: int) -> np.ndarray:
        """The user's last ``n`` items, oldest first (by timestamp, then arrival)."""

    @abstractmethod
    def seen_items(self, user: int) -> np.ndarray:
        """Every item the user has an event for, in no set order and possibly repeated: one read,
        so that a request can exclude what was seen without reading the whole history."""

    @abstractmethod
    def disliked_items(self, user: int) -> np.ndarray:
        """Items the user rated at or under ``DISLIKE_AT``, kept like :meth:`seen_items`."""

    @abstractmethod
    def user_state(self, user: int, n_recent: int) -> UserState:
        """:meth:`user_features`, the last ``n_recent`` :meth:`recent_items`,
        :meth:`seen_items` and :meth:`disliked_items` of ``user``, in one round trip."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def load_tables(self, users: pd.DataFrame, items: pd.DataFrame, vectors: np.ndarray,
                    interactions: pd.DataFrame) -> None:
        """Bulk-load a trained system: indexed user and item tables (row i is index i), item
        embeddings, and interactions with integer ``user``/``item`` columns and ``timestamp``."""
        self.put_users(range(len(users)), records(users))
        self.put_items(range(len(items)), records(items), vectors)
        self.append_events([
            Event(int(u), int(i), int(t), "rating" if np.isfinite(r) else "watch",
                  float(r) if np.isfinite(r) else None)
            for u, i, t, r in zip(interactions["user"], interactions["item"],
                                  interactions["timestamp"], _ratings(interactions))])

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (lists stay lists; NaN becomes None)."""
    return json.loads(table.to_json(orient="records"))


def _ratings(interactions: pd.DataFrame) -> np.ndarray:
    if "rating" in interactions:
        return interactions["rating"].to_numpy(dtype=np.float64)
    return np.full(len(interactions), np.nan)
