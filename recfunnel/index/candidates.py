"""Several candidate sources merged under per-source quotas.

Sources: the two-tower ANN search, item-to-item neighbours of the user's last items (the same
index, queried with those items' vectors), items that co-occur with the user's whole history
(EASE item-item weights, where the catalog is small enough for them), the most popular items of
the user's favourite genres, and the most popular items overall. Each source fills its quota
with items the user has not seen and no earlier source gave; a source that runs short leaves its
slots to the last one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from recfunnel.compiled import compiled
from recfunnel.data.arrays import Int16Rows, column_counts
from recfunnel.data.history import History
from recfunnel.index.ann import ItemIndex
from recfunnel.retrieval.topk import PAD, best_per_row

SOURCES = ("two-tower", "item-to-item", "co-occurrence", "genre-popular", "popular")


@dataclass
class Quotas:
    """Share of the candidate list per source, in the order they are filled. The defaults were
    chosen on ML-100K's validation moments (``bench/candidate_sources.py``, BENCHMARKS.md)."""

    shares: dict[str, float] = field(default_factory=lambda: {
        "two-tower": 0.7, "item-to-item": 0.1, "co-occurrence": 0.1, "genre-popular": 0.05,
        "popular": 0.05})

    def __post_init__(self) -> None:
        unknown = set(self.shares) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown candidate sources {sorted(unknown)}; known: {SOURCES}")

    def counts(self, n: int) -> dict[str, int]:
        total = sum(self.shares.values())
        return {s: int(round(n * w / total)) for s, w in self.shares.items()}


@dataclass
class Candidates:
    items: np.ndarray  # item indices, source by source (for many users: [U, n], PAD padded)
    scores: np.ndarray  # the source's own score (inner product, or popularity)
    sources: np.ndarray  # index into SOURCES (-1 on PAD)
    # each item's co-occurrence with the whole history (the item-item weights from every seen
    # item, summed; zeros without weights): the co-occurrence source's score and a ranking feature
    cooccurrence: np.ndarray

    @classmethod
    def stack(cls, parts: list[Candidates], n: int) -> Candidates:
        """Several users' candidates as [U, n] fields, items PAD padded."""
        shape = (len(parts), n)
        out = cls(np.full(shape, PAD, dtype=np.int64), np.zeros(shape, np.float32),
                  np.full(shape, -1, dtype=np.int8), np.zeros(shape, np.float32))
        for row, found in enumerate(parts):
            for name in ("items", "scores", "sources", "cooccurrence"):
                getattr(out, name)[row, :len(found.items)] = getattr(found, name)
        return out


class CandidateGenerator:
    """``popularity``: interaction count per item; ``genres``: item x genre multi-hot matrix.

    One request at a time per generator (a server process handles requests one by one): a
    catalog-sized mask of excluded items is reused across requests, set and cleared only where
    a request touches it. The one catalog-sized array a request computes is the history's
    co-occurrence row, and only where there are dense item-item ``cooccurrence`` weights, which
    it sums as 16-bit integers (``Int16Rows``) so that a request reads half the memory: on
    ML-100K no user's row moves by more than 2.4e-4 of its range (BENCHMARKS.md). Given float
    weights, the generator quantises them into a copy of its own; an artifact's saved 16-bit
    weights come memory-mapped instead, one copy that all server processes read (a private copy
    only once items have been added, padded with zeros). The float weights stay in the ranking
    stage's ``ItemTable``, also a read-only memory map of the artifact's file.
    """

    def __init__(self, index: ItemIndex, item_vectors: np.ndarray, popularity: np.ndarray,
                 genres: sp.csr_matrix, quotas: Quotas | None = None, last_items: int = 3,
                 cooccurrence: np.ndarray | Int16Rows | None = None):
        self.index, self.item_vectors = index, item_vectors
        self._cooccurrence_rows = (cooccurrence if isinstance(cooccurrence, Int16Rows) or
                                   cooccurrence is None else Int16Rows.of(cooccurrence))
        self.quotas = quotas or Quotas()
        self._counts = functools.cache(self.quotas.counts)  # per request otherwise
        self.last_items = last_items
        self.popularity = popularity.astype(np.float32)
        self.popular = np.argsort(-popularity, kind="stable")
        self.genre_rows, self.genres = genres.tocsr(), genres.tocsc()
        self.by_genre = [self._rank_genre(g) for g in range(genres.shape[1])]
        self._blocked = np.zeros(len(popularity), dtype=bool)

    @classmethod
    def over(cls, index: ItemIndex, item_vectors: np.ndarray, history: History,
             genres: sp.spmatrix, quotas: Quotas | None = None,
             cooccurrence: np.ndarray | Int16Rows | None = None) -> CandidateGenerator:
        """A generator whose popular sources count the interactions of ``history``."""
        counts = np.bincount(history.interactions["item"], minlength=len(item_vectors))
        return cls(index, item_vectors, counts.astype(np.float64), genres, quotas,
                   cooccurrence=cooccurrence)

    def _rank_genre(self, g: int) -> np.ndarray:
        members = self.genres.indices[self.genres.indptr[g]:self.genres.indptr[g + 1]]
        return members[np.argsort(-self.popularity[members], kind="stable")]

    def generate(self, user_vector: np.ndarray, recent: np.ndarray, seen: np.ndarray,
                 n: int) -> Candidates:
        """Up to ``n`` candidates the user has not seen; ``recent`` holds the user's last items,
        oldest first, and steers the item-to-item and genre sources; ``seen`` is everything
        they have seen (distinct item indices, any order)."""
        affinity = (self._cooccurrence_rows.sum_rows(seen)
                    if self._cooccurrence_rows is not None and len(seen) else None)
        quota = self._counts(n)
        order = [s for s in SOURCES if quota.get(s)]
        items, scores, sources = [], [], []
        count = 0
        blocked = self._blocked
        blocked[seen] = True
        try:
            for position, source in enumerate(order):
                want = n - count if position == len(order) - 1 else min(quota[source], n - count)
                if want <= 0:
                    continue
                ids, values = self._source(source, user_vector, recent, seen, items, want,
                                           affinity, blocked)
                ids, values = _take(ids, values, blocked, want)  # and blocks them
                items.append(ids)
                scores.append(values)
                sources.append(SOURCES.index(source))
                count += len(ids)
        finally:
            blocked[seen] = False
            for ids in items:
                blocked[ids] = False
        found = np.concatenate(items) if items else np.zeros(0, np.int64)
        return Candidates(found, np.concatenate(scores).astype(np.float32) if items
                          else np.zeros(0, np.float32),
                          np.repeat(np.array(sources, dtype=np.int8), [len(i) for i in items]),
                          affinity[found] if affinity is not None
                          else np.zeros(len(found), np.float32))

    def lists(self, user_vectors: np.ndarray, windows: np.ndarray, seen: sp.csr_matrix,
              n: int) -> Candidates:
        """:meth:`generate` for many users, one by one as requests arrive: ``windows`` [U, L]
        their last items, oldest first, -1 padded; ``seen`` [U, n_items] their histories. Each
        field [U, n], items PAD padded."""
        return Candidates.stack([
            self.generate(user_vectors[row], windows[row][windows[row] >= 0],
                          seen.indices[seen.indptr[row]:seen.indptr[row + 1]], n)
            for row in tqdm(range(len(user_vectors)), desc="candidate sources", disable=None,
                            leave=False)], n)

    def _source(self, source: str, user_vector: np.ndarray, recent: np.ndarray, seen: np.ndarray,
                picked: list[np.ndarray], want: int, affinity: np.ndarray | None,
                blocked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The source's ranked items and scores: at least ``want`` that are neither seen nor
        ``picked`` by the sources before it, when the source has that many. ``affinity``: every
        item's co-occurrence with the history (None without weights or history); ``blocked``:
        True for the seen and picked items."""
        if source == "two-tower":
            ids, scores = self.index.search(user_vector[None, :], want, exclude=seen)
            return ids[0], scores[0]
        if source == "item-to-item":
            last = recent[-self.last_items:]
            if not len(last):
                return _EMPTY
            ids, scores = self.index.search(self.item_vectors[last], want,
                                            exclude=np.concatenate([seen, *picked]))
            return _interleaved(ids, scores)
        if source == "co-occurrence":
            return _EMPTY if affinity is None else _best_open(affinity, blocked, want)
        enough = len(seen) + sum(len(ids) for ids in picked) + want
        if source == "genre-popular":
            if not len(recent) or self.genres.shape[1] == 0:
                return _EMPTY
            ranked = self.by_genre[self._favourite_genre(recent)][:enough]
        else:
            ranked = self.popular[:enough]
        return ranked, self.popularity[ranked]

    def _favourite_genre(self, items: np.ndarray) -> int:
        return int(column_counts(self.genre_rows, items).argmax())


@compiled()
def _interleaved(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Several queries' ranked hits [q, k] as one list by score, best first; ties keep the
    queries interleaved, rank by rank."""
    by_rank_ids, by_rank_scores = ids.T.copy().ravel(), scores.T.copy().ravel()
    order = np.argsort(-by_rank_scores, kind="mergesort")  # stable
    return by_rank_ids[order], by_rank_scores[order]


@compiled()
def _best_open(scores: np.ndarray, blocked: np.ndarray,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of ``scores`` [n] among the items not ``blocked``, in ``top_k``'s order
    (PAD-padded when fewer are open)."""
    open_scores = scores.copy()
    for item in range(len(scores)):
        if blocked[item]:
            open_scores[item] = -np.inf
    ids, values = best_per_row(open_scores.reshape(1, -1), min(k, len(scores)))
    return ids[0], values[0]


@compiled()
def _take(ids: np.ndarray, values: np.ndarray, blocked: np.ndarray,
          want: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``want`` of a source's ranked ``ids`` (and their ``values``) that are real
    (not -1) and not ``blocked``, each blocked once taken: so an item a source lists twice
    (item-to-item's several queries) is taken once."""
    size = min(want, len(ids))
    taken_ids, taken_values = np.empty(size, ids.dtype), np.empty(size, values.dtype)
    n = 0
    for position in range(len(ids)):
        if n == size:
            break
        item = ids[position]
        if item < 0 or blocked[item]:
            continue
        blocked[item] = True
        taken_ids[n], taken_values[n] = item, values[position]
        n += 1
    return taken_ids[:n], taken_values[:n]


_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
