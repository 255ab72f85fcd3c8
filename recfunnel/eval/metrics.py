"""Full-ranking metrics computed from ranked lists, so every stage of the funnel is scored one way.

A list is a row of item indices, best first, that already excludes the user's visible history;
the target is the one held-out item. Nothing here samples negatives: a sampled metric flatters a
model several-fold, so recfunnel never reports one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recfunnel.data.dataset import long_tail
from recfunnel.retrieval.topk import PAD

KS = (10, 20, 50, 100, 200, 500)


@dataclass(frozen=True)
class CatalogStats:
    """What beyond-accuracy metrics need to know about the items, from the training interactions."""

    popularity: np.ndarray  # share of training users who interacted with each item
    tail: np.ndarray  # True for items outside the head
    genres: sp.csr_matrix | None = None  # item x genre multi-hot, for intra-list diversity
    n_users: int = 1  # training users behind ``popularity``

    @classmethod
    def from_train(cls, train: sp.csr_matrix, genres: sp.csr_matrix | None = None) -> CatalogStats:
        counts = np.asarray(train.sum(axis=0)).ravel()
        tail = long_tail(counts)
        has_genres = genres is not None and genres.shape[1] > 0
        n_users = max(1, train.shape[0])
        return cls(counts / n_users, tail, genres if has_genres else None, n_users)

    @property
    def self_information(self) -> np.ndarray:
        return -np.log2(np.maximum(self.popularity, 1.0 / self.n_users))


@dataclass
class Report:
    """Metric name -> value (``HR@10``, ``NDCG@10``, ``MRR``, ``coverage@10`` ...), plus a 95%
    bootstrap interval on NDCG@10 and the number of users scored."""

    metrics: dict[str, float]
    ndcg10_ci: tuple[float, float]
    n_users: int
    ks: tuple[int, ...] = field(default=KS)

    def __getitem__(self, name: str) -> float:
        return self.metrics[name]

    def to_dict(self) -> dict:
        return {"metrics": self.metrics, "ndcg10_ci95": list(self.ndcg10_ci),
                "n_users": self.n_users}


def hit_positions(lists: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based position of each user's target in their list, or -1 when it is absent."""
    hits = lists == targets[:, None]
    found = hits.any(axis=1)
    return np.where(found, hits.argmax(axis=1), -1)


def evaluate_lists(
    lists: np.ndarray,
    targets: np.ndarray,
    catalog: CatalogStats,
    *,
    ks: tuple[int, ...] = KS,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Report:
    """HR@K, NDCG@K, MRR, coverage, mean popularity, novelty, long-tail share and genre diversity.

    Novelty is the mean self-information ``-log2(popularity)`` of the recommended items: higher
    means less obvious items (an item nobody trained on counts as seen by one user).

    MRR counts ranks inside the list only (a target below rank 500 adds less than 0.002 anyway).
    """
    if len(lists) != len(targets):
        raise ValueError(f"{len(lists)} lists for {len(targets)} targets")
    ks = tuple(k for k in ks if k <= lists.shape[1]) or (lists.shape[1],)
    position = hit_positions(lists, targets)
    found = position >= 0
    rank = np.maximum(position, 0) + 1.0
    gain = np.where(found, 1.0 / np.log2(rank + 1.0), 0.0)
    metrics: dict[str, float] = {}
    for k in ks:
        within = found & (position < k)
        metrics[f"HR@{k}"] = float(within.mean())
        metrics[f"NDCG@{k}"] = float(np.where(within, gain, 0.0).mean())
    metrics["MRR"] = float(np.where(found, 1.0 / rank, 0.0).mean())
    for k in ks:
        top = lists[:, :k]
        real = top != PAD
        items = top[real]
        metrics[f"coverage@{k}"] = len(np.unique(items)) / len(catalog.popularity)
        metrics[f"popularity@{k}"] = float(catalog.popularity[items].mean()) if len(items) else 0.0
        metrics[f"novelty@{k}"] = float(catalog.self_information[items].mean()) if len(items) else 0.0
        metrics[f"tail_share@{k}"] = float(catalog.tail[items].mean()) if len(items) else 0.0
        if catalog.genres is not None:
            metrics[f"diversity@{k}"] = intra_list_diversity(top, catalog.genres)
    return Report(metrics, bootstrap_ci(user_ndcg(lists, targets), n_bootstrap, seed),
                  len(targets), ks)


def user_ndcg(lists: np.ndarray, targets: np.ndarray, k: int = 10) -> np.ndarray:
    """Each user's NDCG@k with one relevant item: 1 / log2(rank + 1) inside the top k, else 0."""
    position = hit_positions(lists, targets)
    inside = (position >= 0) & (position < k)
    return np.where(inside, 1.0 / np.log2(np.maximum(position, 0) + 2.0), 0.0)


def intra_list_diversity(lists: np.ndarray, genres: sp.csr_matrix) -> float:
    """Mean over lists of the average pairwise (1 - cosine similarity) of the items' genre vectors."""
    norms = np.sqrt(np.asarray(genres.multiply(genres).sum(axis=1)).ravel())
    unit = sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ genres
    unit = unit.toarray().astype(np.float64)
    per_list = []
    for row in lists:
        vectors = unit[row[row != PAD]]
        n = len(vectors)
        if n < 2:
            continue
        total = float(np.square(vectors.sum(axis=0)).sum())  # sum of all pairwise cosines, i == j too
        self_similarity = float((np.square(vectors).sum(axis=1)).sum())
        per_list.append(1.0 - (total - self_similarity) / (n * (n - 1)))
    return float(np.mean(per_list)) if per_list else 0.0


def bootstrap_ci(values: np.ndarray, n_resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling users with replacement."""
    if len(values) == 0 or n_resamples == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for i in range(n_resamples):
        means[i] = values[rng.integers(0, len(values), len(values))].mean()
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))
