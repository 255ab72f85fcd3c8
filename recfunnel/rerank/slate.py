"""What the re-ranking rules work on: the ranked candidates of one user, and what is known about
the items and the user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
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

    @cached_property
    def newest(self) -> float:
        """The newest release year in the catalog (NaN when no year is known)."""
        return float(np.nanmax(self.year)) if np.isfinite(self.year).any() else float("nan")

    @cached_property
    def age(self) -> np.ndarray:
        """Years before the newest release, per item; infinite where the year is unknown."""
        return np.where(np.isnan(self.year), np.inf, self.newest - self.year)


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


@dataclass(frozen=True)
class Slate:
    """One user's candidates, best first, with the story of each: where it came from, its scores
    and what every rule did to it. The story is kept by each item's position in the slate as
    first ranked (``origin``) and written out as dicts only when asked (for the final list),
    so that rules over a hundred candidates move arrays, not dicts."""

    items: np.ndarray
    scores: np.ndarray
    origin: np.ndarray
    details: dict[str, np.ndarray] = field(default_factory=dict)  # columns, by origin
    # what the rules did, in the order they did it: (rule, origins, one value per origin)
    notes: tuple[tuple[str, np.ndarray, Sequence[float | str]], ...] = ()

    @classmethod
    def ranked(cls, items: np.ndarray, scores: np.ndarray,
               details: dict[str, Sequence[Any]] | None = None) -> Slate:
        """Sort by score, best first; ``details`` (columns in the order of ``items``: source,
        retrieval and ranking scores) start each explanation."""
        scores = np.asarray(scores, dtype=np.float64)
        order = np.argsort(-scores, kind="stable")
        return cls(np.asarray(items)[order], scores[order], order,
                   {name: np.asarray(column) for name, column in (details or {}).items()})

    def __len__(self) -> int:
        return len(self.items)

    @property
    def explanations(self) -> list[dict[str, Any]]:
        """Per item: its details and, under "adjustments", what each rule did to it (a rule's
        later note on an item replaces its earlier one)."""
        columns = {name: column[self.origin].tolist() for name, column in self.details.items()}
        origins = self.origin.tolist()
        position = {o: p for p, o in enumerate(origins)}
        adjustments: list[dict[str, float | str]] = [{} for _ in origins]
        for rule, noted, values in self.notes:
            values = values.tolist() if isinstance(values, np.ndarray) else values
            for o, value in zip(noted.tolist(), values):
                if o in position:
                    adjustments[position[o]][rule] = value
        return [{"adjustments": adjustments[p],
                 **{name: column[p] for name, column in columns.items()}}
                for p in range(len(origins))]

    def keep(self, mask: np.ndarray) -> Slate:
        """The items at ``mask`` (booleans, or positions in the order wanted)."""
        return Slate(self.items[mask], self.scores[mask], self.origin[mask], self.details,
                     self.notes)

    def note(self, rule: str, positions: np.ndarray, values: Sequence[float | str]) -> Slate:
        """Record ``values`` under ``rule`` for the items at ``positions``."""
        return Slate(self.items, self.scores, self.origin, self.details,
                     self.notes + ((rule, self.origin[positions], values),))
