"""Ranking features of (user, candidate) pairs: one function for a training batch and a live
request alike.

Per candidate: its two-tower item vector, the user vector, the history's item vectors (for target
attention in the model), and dense features: retrieval score and rank within the slate, an
item-to-item co-occurrence score over the user's whole history (EASE weights: a collaborative
signal the two towers, which see only the last items, do not carry), item popularity and age, the
user's genre affinity for it, and how much history the user has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recfunnel.compiled import compiled
from recfunnel.data.dataset import Dataset
from recfunnel.data.history import History
from recfunnel.retrieval.ease import EASE, MAX_ITEMS

DENSE = ("retrieval_score", "retrieval_rank", "cooccurrence", "popularity", "age",
         "genre_affinity", "activity")
COOCCURRENCE_L2 = 100.0  # EASE's chosen l2 on ML-100K; the ranker rescales the feature anyway


@dataclass
class ItemTable:
    """Per-item inputs of the ranking features; row ``i`` is item ``i``."""

    vectors: np.ndarray  # [n, d] two-tower item vectors
    popularity: np.ndarray  # [n] log(1 + interactions in the visible history)
    age: np.ndarray  # [n] years before the newest release, 0 where unknown
    genres: np.ndarray  # [n, G] multi-hot
    cooccurrence: np.ndarray | None  # [n, n] EASE item-item weights; None past MAX_ITEMS

    def __post_init__(self) -> None:
        # the columns side by side, so that a request gathers its candidates' rows once: vector,
        # genres, 1 / number of genres, popularity, age in decades; the large fields become views
        d, n_genres = self.vectors.shape[1], self.genres.shape[1]
        self.packed = np.hstack([
            self.vectors, self.genres, 1 / np.maximum(self.genres.sum(1, keepdims=True), 1.0),
            self.popularity[:, None], self.age[:, None] / 10]).astype(np.float32)
        self.vectors = self.packed[:, :d]
        self.genres = self.packed[:, d:d + n_genres]

    @classmethod
    def build(cls, dataset: Dataset, history: History, vectors: np.ndarray,
              weights: np.ndarray | None = None) -> ItemTable:
        """From the catalog, the interactions the features may know about, and item vectors.
        ``weights``: the co-occurrence weights of this history when already solved
        (:func:`cooccurrence_weights`), perhaps before items were added to the catalog: they are
        padded with zeros (what a refit gives items without interactions) instead of solving
        EASE again."""
        counts = np.bincount(history.interactions["item"], minlength=dataset.n_items)
        year = dataset.items["year"].to_numpy(dtype=np.float64) if "year" in dataset.items \
            else np.full(dataset.n_items, np.nan)
        age = np.nan_to_num(np.nanmax(year) - year, nan=0.0) if np.isfinite(year).any() \
            else np.zeros(len(year))
        if weights is None:
            weights = cooccurrence_weights(dataset, history)
        elif len(weights) < dataset.n_items:
            padded = np.zeros((dataset.n_items, dataset.n_items), dtype=np.float32)
            padded[:len(weights), :len(weights)] = weights
            weights = padded
        return cls(np.asarray(vectors, dtype=np.float32), np.log1p(counts).astype(np.float32),
                   age.astype(np.float32), dataset.genre_matrix().toarray().astype(np.float32),
                   weights)


def cooccurrence_weights(dataset: Dataset, history: History) -> np.ndarray | None:
    """EASE's item-item weights over ``history`` [n, n]; None when the catalog is too large for
    dense weights."""
    return EASE(COOCCURRENCE_L2).fit(history, dataset).weights_ \
        if dataset.n_items <= MAX_ITEMS else None


def candidate_features(table: ItemTable, user_vectors: np.ndarray, recent: np.ndarray,
                       activity: np.ndarray, candidates: np.ndarray, retrieval_scores: np.ndarray,
                       cooccurrence: np.ndarray) -> dict[str, np.ndarray]:
    """``user_vectors`` [B, d]; ``recent`` [B, L] the last items, -1 padded (``history_window``);
    ``activity`` [B] how many items the whole visible history holds; ``candidates``,
    ``retrieval_scores`` and ``cooccurrence`` (the item-item weights from every seen item to the
    candidate, summed, as the candidate generator computes them) [B, C]. The ranking network's
    inputs, by name. Compiled (Numba): one call where NumPy made twenty, each costing a few
    microseconds at a live request's sizes (PyTorch's tens)."""
    items, history, dense = _features(table.packed, table.vectors.shape[1],
                                      table.genres.shape[1], np.asarray(recent),
                                      np.asarray(activity), np.asarray(candidates),
                                      np.asarray(retrieval_scores, dtype=np.float32),
                                      np.asarray(cooccurrence, dtype=np.float32))
    return {"user": user_vectors, "items": items, "history": history,
            "history_mask": recent >= 0, "dense": dense}


@compiled()
def _features(packed: np.ndarray, d: int, n_genres: int, recent: np.ndarray,
              activity: np.ndarray, candidates: np.ndarray, retrieval_scores: np.ndarray,
              cooccurrence: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # packed rows: vector [:d], genres [d:d + G], 1 / number of genres, popularity, age
    n_queries, n_candidates = candidates.shape
    items = np.empty((n_queries, n_candidates, d), dtype=np.float32)
    history = np.zeros((n_queries, recent.shape[1], d), dtype=np.float32)
    dense = np.empty((n_queries, n_candidates, len(DENSE)), dtype=np.float32)
    profile = np.empty(n_genres, dtype=np.float32)  # the history's genre shares
    for q in range(n_queries):
        profile[:] = 0
        for slot in range(recent.shape[1]):
            past = recent[q, slot]
            if past >= 0:
                history[q, slot] = packed[past, :d]
                profile += packed[past, d:d + n_genres]
        profile /= np.float32(max(profile.sum(), 1.0))
        rank = np.empty(n_candidates, dtype=np.int64)  # by retrieval score, ties in slate order
        rank[np.argsort(-retrieval_scores[q], kind="mergesort")] = np.arange(n_candidates)
        for c in range(n_candidates):
            row = packed[candidates[q, c]]
            items[q, c] = row[:d]
            affinity = np.float32(0.0)
            for g in range(n_genres):
                affinity += row[d + g] * profile[g]
            dense[q, c, 0] = retrieval_scores[q, c]
            dense[q, c, 1] = np.log1p(np.float64(rank[c]))
            dense[q, c, 2] = cooccurrence[q, c]
            dense[q, c, 3] = row[d + n_genres + 1]  # popularity
            dense[q, c, 4] = row[d + n_genres + 2]  # age
            dense[q, c, 5] = affinity * row[d + n_genres]
            dense[q, c, 6] = np.log1p(np.float64(activity[q]))
    return items, history, dense
