"""The offline job: embed the catalog with the item tower, build the ANN index, measure its recall
against exact search on real user vectors, and bulk-load the feature store."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from recfunnel.data.dataset import Dataset
from recfunnel.data.history import History
from recfunnel.index.ann import IndexConfig, ItemIndex, exact_top_k, tune
from recfunnel.retrieval.two_tower_recommender import TwoTower
from recfunnel.store.base import FeatureStore

RECALL_K = 100
log = logging.getLogger("recfunnel")


def indexable(model: object) -> bool:
    """Whether ``model`` has an item tower whose vectors an index can serve."""
    return isinstance(model, TwoTower)


def build_item_index(model: TwoTower, history: History, config: IndexConfig | None = None,
                     sample_users: int = 1000, seed: int = 0) -> tuple[ItemIndex, dict[str, Any]]:
    """Index the model's item vectors; tune and record recall@100 on a sample of real users."""
    start = time.perf_counter()
    model._precompute_items()  # the item tower over the whole catalog, in batches
    vectors = model.item_vectors_
    index = ItemIndex.build(vectors, config, seed=seed)
    build_seconds = time.perf_counter() - start
    with_history = np.flatnonzero(history.lengths() > 0)
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(with_history, min(sample_users, len(with_history)), replace=False))
    with torch.inference_mode():
        queries = model.user_vectors(users, history).numpy()
    k = min(RECALL_K, len(vectors))
    recall = tune(index, queries, exact_top_k(vectors, queries, k), k) if len(users) else 1.0
    info = {"config": index.config.to_dict(), f"recall@{k}": round(recall, 4),
            "recall_queries": len(users), "build_seconds": round(build_seconds, 2),
            "items": index.size}
    log.info("index %s over %d items: recall@%d %.3f", index.config.kind, index.size, k, recall)
    return index, info


def load_store(store: FeatureStore, model: TwoTower, dataset: Dataset) -> None:
    """Everything a live request reads: users, items with their embeddings, the visible history."""
    store.load_tables(dataset.users, dataset.items, model.item_vectors_, dataset.interactions)
