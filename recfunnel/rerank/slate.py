"""What the re-ranking rules work on: the ranked candidates of one user, and what is known about
the items and the user."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from recfunnel.data.dataset import DISLIKE_AT, Dataset, long_tail
from recfunnel.data.history import History

@dataclass(frozen=True)
class ItemFacts:
    """Per-item facts the rules read; row ``i`` describes item ``i``."""

    genres: sp.csr_matrix  # item x genre multi-hot
    genre_names: list[str]
    year: np.ndarray  # release year, NaN where unknown
    tail: np.ndarray  # True outside the popular head
    vectors: np.ndarray  # unit rows whose dot products are the similarity MMR uses

    @classmethod
    def build(cls, dataset: Dataset, history: History, vectors: np.ndarray | None) -> ItemFacts:
        """From the catalog and the visible history. Similarity averages two cosines: of the
        item embeddings, centred first (two-tower vectors share a common direction, median cosine
        about 0.6 on ML-100K, which makes every pair look alike), and of the genre vectors, so
        that MMR also spreads the list over genres; without embeddings, genres alone."""
        genres = dataset.genre_matrix()
        year = (dataset.items["year"].to_numpy(dtype=np.float64) if "year" in dataset.items
                else np.full(dataset.n_items, np.nan))
        counts = np.bincount(history.interactions["item"], minlength=dataset.n_items)
        parts = [genres.toarray()] + ([vectors - vectors.mean(axis=0)] if vectors is not None
                                      else [])
        unit = np.hstack([_unit(np.asarray(p, dtype=np.float32)) for p in parts])
        return cls(genres, dataset.genre_vocabulary(), year, long_tail(counts), _unit(unit))


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class UserFacts:
    seen: np.ndarray  # every item the user has an event for
    disliked: np.ndarray  # items the user rated at or under the dislike threshold

    @classmethod
    def from_history(cls, history: History, users: np.ndarray) -> list[UserFacts]:
        """Seen and disliked items of each of ``users``."""
        frame = history.interactions
        low = frame[frame["rating"] <= DISLIKE_AT] if "rating" in frame else frame.iloc[:0]
        disliked = History(low, history.n_users, history.n_items).matrix
        seen = history.matrix
        return [cls(seen.indices[seen.indptr[u]:seen.indptr[u + 1]],
                    disliked.indices[disliked.indptr[u]:disliked.indptr[u + 1]]) for u in users]


@dataclass
class Slate:
    """One user's candidates, best first, with the story of each: where it came from, its scores
    and what every rule did to it."""

    items: np.ndarray
    scores: np.ndarray
    explanations: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def ranked(cls, items: np.ndarray, scores: np.ndarray,
               details: list[dict[str, Any]] | None = None) -> Slate:
        """Sort by score, best first; ``details`` (source, retrieval and ranking scores) start
        each explanation."""
        details = details or [{} for _ in items]
        order = np.argsort(-np.asarray(scores), kind="stable")
        explanations = [{"adjustments": {}, **details[i]} for i in order]
        return cls(np.asarray(items)[order], np.asarray(scores, dtype=np.float64)[order],
                   explanations)

    def __len__(self) -> int:
        return len(self.items)

    def keep(self, mask: np.ndarray) -> Slate:
        return replace(self, items=self.items[mask], scores=self.scores[mask],
                       explanations=[e for e, m in zip(self.explanations, mask) if m])

    def adjust(self, rule: str, deltas: np.ndarray) -> Slate:
        """Add ``deltas`` to the scores, record the non-zero ones under ``rule``, re-sort."""
        for e, d in zip(self.explanations, deltas):
            if d:
                e["adjustments"][rule] = float(d)
        scores = self.scores + deltas
        order = np.argsort(-scores, kind="stable")
        return Slate(self.items[order], scores[order], [self.explanations[i] for i in order])
