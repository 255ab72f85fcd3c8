"""What the re-ranking rules work on: the ranked candidates of one user, and what is known about
the items and the user."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class ItemFacts:
    """Per-item facts the rules read; row ``i`` describes item ``i``."""

    genres: sp.csr_matrix  # item x genre multi-hot
    genre_names: list[str]
    year: np.ndarray  # release year, NaN where unknown
    tail: np.ndarray  # True outside the popular head
    vectors: np.ndarray  # unit item embeddings, for similarity


@dataclass(frozen=True)
class UserFacts:
    seen: np.ndarray  # every item the user has an event for
    disliked: np.ndarray  # items the user rated at or under the dislike threshold


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
                e["adjustments"][rule] = round(float(d), 6)
        return Slate.ranked(self.items, self.scores + deltas, self.explanations)
