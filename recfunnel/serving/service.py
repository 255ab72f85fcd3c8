"""One loaded artifact version behind the HTTP service: the system, its feature store, the
online funnel, and raw-id lookups. The app swaps whole ``Service`` objects to change versions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recfunnel.artifacts import System, add_items, load_system, reading
from recfunnel.errors import NotFoundError, RecfunnelError
from recfunnel.index.offline import indexable
from recfunnel.serving.online import Answer, OnlineFunnel, Request
from recfunnel.serving.retrieval import single_thread
from recfunnel.store.base import Event, FeatureStore
from recfunnel.store.redis_store import RedisStore
from recfunnel.store.sqlite_store import SQLiteStore


@dataclass(frozen=True)
class StoreConfig:
    kind: str = "sqlite"  # sqlite: the artifact's own file; redis: a server loaded by `index build`
    redis_url: str = "redis://localhost:6379/0"

    def open(self, system: System) -> FeatureStore:
        if self.kind == "redis":
            return RedisStore(self.redis_url)
        return SQLiteStore(system.store_path)


class Service:
    def __init__(self, system: System, store: FeatureStore, store_config: StoreConfig):
        self.system, self.store, self.store_config = system, store, store_config
        self.user_ids = {str(u): i for i, u in enumerate(system.dataset.users["user_id"])}
        self._build()

    @classmethod
    def load(cls, path: Path, store_config: StoreConfig) -> Service:
        with reading(path):  # the index and co-occurrence weights are read lazily: within it too
            system = load_system(path)
            index = system.index if indexable(system.retrieval) else None
            if index is not None:
                system.funnel()
        if index is None:
            raise RecfunnelError(f"{path}: serving needs a two-tower artifact with an index "
                                 f"(this one is {system.retrieval.name}); fit --model two-tower")
        single_thread()
        service = cls(system, store_config.open(system), store_config)
        if system.dataset.n_users:  # first requests pay one-time costs (allocator, caches)
            for _ in range(3):
                service.online.recommend(0, 1)
        return service

    def _build(self) -> None:
        system = self.system
        items = system.dataset.items
        self.item_ids = {str(i): n for n, i in enumerate(items["item_id"])}
        self.descriptions = [
            {"item_id": str(i), "title": str(t), "genres": list(g),
             "year": int(y) if y is not None and math.isfinite(y) else None}
            for i, t, g, y in zip(items["item_id"], items.get("title", items["item_id"]),
                                  items.get("genres", [[]] * len(items)),
                                  items.get("year", [None] * len(items)))]
        self.online = OnlineFunnel(system.funnel(), self.store)

    def user_index(self, raw: str) -> int | None:
        return self.user_ids.get(str(raw))

    def item_index(self, raw: str) -> int:
        index = self.item_ids.get(str(raw))
        if index is None:
            raise NotFoundError(f"unknown item {raw!r}")
        return index

    def describe(self, item: int) -> dict[str, Any]:
        """Item id, title, genres and year, as the API shows them."""
        return dict(self.descriptions[item])

    def recommend(self, raw_user: str, k: int, demographics: dict[str, Any]) -> Answer:
        return self.recommend_many([(raw_user, k, demographics)])[0]

    def recommend_many(self, requests: list[tuple[str, int, dict[str, Any]]]) -> list[Answer]:
        """(raw user id, k, demographics) per request, answered together."""
        return self.online.recommend_many([Request(self.user_index(user), k, demographics or None)
                                           for user, k, demographics in requests])

    def add_event(self, raw_user: str, raw_item: str, kind: str, value: float | None,
                  timestamp: int) -> dict[str, Any]:
        user = self.user_index(raw_user)
        if user is None:
            raise NotFoundError(f"unknown user {raw_user!r}: events are taken for users in the "
                                "artifact's user table")
        item = self.item_index(raw_item)
        self.store.append_events([Event(user, item, timestamp, kind, value)])
        return {"user_id": str(raw_user), "item_id": str(raw_item), "timestamp": timestamp}

    def add_item(self, raw_id: str, title: str, genres: list[str], year: int | None) -> int:
        catalog = self.system.dataset.items["item_id"]
        item_id: Any = raw_id
        if pd.api.types.is_integer_dtype(catalog):
            try:
                item_id = int(raw_id)
            except ValueError:
                raise RecfunnelError(f"item_id {raw_id!r}: the catalog's item ids are "
                                     "integers") from None
        frame = pd.DataFrame({"item_id": [item_id], "title": [title or str(raw_id)],
                              "genres": [list(genres)],
                              "year": [float(year) if year is not None else np.nan]})
        index = int(add_items(self.system, frame, self.store)[0])
        self._build()
        return index

    def similar(self, raw_item: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.online.similar(self.item_index(raw_item), k)

    def close(self) -> None:
        self.store.close()
