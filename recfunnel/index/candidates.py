"""Several candidate sources merged under per-source quotas.

Sources: the two-tower ANN search, item-to-item neighbours of the user's last items (the same index,
queried with those items' vectors), the most popular items of the user's favourite genres, and the
most popular items overall. Each source fills its quota with items the user has not seen and no
earlier source gave; a source that runs short leaves its slots to the next ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recfunnel.index.ann import ItemIndex

SOURCES = ("two-tower", "item-to-item", "genre-popular", "popular")


@dataclass
class Quotas:
    """Share of the candidate list per source, in the order they are filled."""

    shares: dict[str, float] = field(default_factory=lambda: {
        "two-tower": 0.8, "item-to-item": 0.1, "genre-popular": 0.05, "popular": 0.05})

    def __post_init__(self) -> None:
        unknown = set(self.shares) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown candidate sources {sorted(unknown)}; known: {SOURCES}")

    def counts(self, n: int) -> dict[str, int]:
        total = sum(self.shares.values())
        return {s: int(round(n * w / total)) for s, w in self.shares.items()}


@dataclass
class Candidates:
    items: np.ndarray  # item indices, source by source
    scores: np.ndarray  # the source's own score (inner product, or popularity)
    sources: np.ndarray  # index into SOURCES


class CandidateGenerator:
    """``popularity``: interaction count per item; ``genres``: item x genre multi-hot matrix."""

    def __init__(self, index: ItemIndex, item_vectors: np.ndarray, popularity: np.ndarray,
                 genres: sp.csr_matrix, quotas: Quotas | None = None, last_items: int = 3):
        self.index, self.item_vectors = index, item_vectors
        self.quotas = quotas or Quotas()
        self.last_items = last_items
        self.popularity = popularity.astype(np.float32)
        self.popular = np.argsort(-popularity, kind="stable")
        self.genre_rows, self.genres = genres.tocsr(), genres.tocsc()
        self.by_genre = [self._rank_genre(g) for g in range(genres.shape[1])]

    def _rank_genre(self, g: int) -> np.ndarray:
        members = self.genres.indices[self.genres.indptr[g]:self.genres.indptr[g + 1]]
        return members[np.argsort(-self.popularity[members], kind="stable")]

    def generate(self, user_vector: np.ndarray, history: np.ndarray, n: int) -> Candidates:
        """Up to ``n`` unseen candidates; ``history`` holds the user's items, oldest first."""
        seen = set(history.tolist())
        taken: set[int] = set()
        items: list[int] = []
        scores: list[float] = []
        sources: list[int] = []
        quota = self.quotas.counts(n)
        order = [s for s in SOURCES if quota.get(s)]
        for position, source in enumerate(order):
            want = n - len(items) if position == len(order) - 1 else quota[source]
            got = 0
            for item, score in self._source(source, user_vector, history,
                                            want + len(seen) + len(taken)):
                if got >= want or len(items) >= n:
                    break
                if item < 0 or item in seen or item in taken:
                    continue
                taken.add(item)
                items.append(item)
                scores.append(score)
                sources.append(SOURCES.index(source))
                got += 1
        return Candidates(np.array(items, dtype=np.int64), np.array(scores, dtype=np.float32),
                          np.array(sources, dtype=np.int8))

    def _source(self, source: str, user_vector: np.ndarray, history: np.ndarray, k: int):
        if source == "two-tower":
            ids, scores = self.index.search(user_vector[None, :], min(k, self.index.size))
            return zip(ids[0].tolist(), scores[0].tolist())
        if source == "item-to-item":
            last = history[-self.last_items:]
            if not len(last):
                return iter(())
            ids, scores = self.index.search(self.item_vectors[last], min(k, self.index.size))
            order = np.argsort(-scores.T.ravel(), kind="stable")  # interleave by similarity
            return zip(ids.T.ravel()[order].tolist(), scores.T.ravel()[order].tolist())
        if source == "genre-popular":
            if not len(history) or self.genres.shape[1] == 0:
                return iter(())
            favourite = np.asarray(self.genre_rows[history].sum(axis=0)).ravel().argmax()
            ranked = self.by_genre[favourite][:k]
            return zip(ranked.tolist(), self.popularity[ranked].tolist())
        ranked = self.popular[:k]
        return zip(ranked.tolist(), self.popularity[ranked].tolist())
