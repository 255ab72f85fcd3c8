"""Approximate nearest-neighbour search over item vectors, with FAISS (inner product).

The index type follows the catalog size unless configured: exact search for small catalogs, IVF with
float vectors up to a few million items, IVF with 8-bit scalar-quantised vectors beyond (a quarter of
the memory), optionally re-scored with the exact vectors. After a build, :func:`tune` picks the
smallest ``nprobe`` whose recall@100 against exact search reaches the target on real queries.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from recfunnel.data.arrays import contained
from recfunnel.compiled import compiled
from recfunnel.retrieval.topk import best_per_row

KINDS = ("auto", "flat", "ivf-flat", "ivf-sq8", "hnsw")
RECALL_TARGET = 0.95
log = logging.getLogger("recfunnel")


@dataclass
class IndexConfig:
    kind: str = "auto"
    nlist: int | None = None  # IVF lists; default about 4 * sqrt(n)
    nprobe: int = 8  # IVF lists scanned per query (tuned after the build)
    # re-score ``refine * k`` quantised hits with the exact vectors; 0: off; None: 2 for IVF-SQ8,
    # whose 8-bit codes alone stay under recall 0.95 on clustered vectors (BENCHMARKS.md), else 0
    refine: int | None = None
    hnsw_m: int = 32
    ef_search: int = 128
    train_sample: int = 200_000  # vectors used to train the IVF centroids

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"index kind {self.kind!r}: choose one of {', '.join(KINDS)}")

    def to_dict(self) -> dict:
        return asdict(self)


def choose_kind(n_items: int) -> str:
    if n_items <= 100_000:
        return "flat"
    return "ivf-flat" if n_items <= 2_000_000 else "ivf-sq8"


class ItemIndex:
    """FAISS index whose ids are item indices (0..n-1, in the order vectors were added)."""

    def __init__(self, index: faiss.Index, config: IndexConfig):
        self.index, self.config = index, config
        self._apply_search_params()
        self._view_vectors()

    def _view_vectors(self) -> None:
        """An exact index's vectors, transposed into a contiguous [d, n] copy for
        :meth:`_exact_search` (a few queries times the transposed view costs NumPy's BLAS 6x
        more: 49 against 8 us for 3 queries over 1,682 items); taken again after every
        :meth:`add`."""
        self._columns = None
        if isinstance(self.index, faiss.IndexFlat):
            n = self.index.ntotal
            view = faiss.rev_swig_ptr(self.index.get_xb(), n * self.index.d).reshape(n, -1)
            self._columns = np.ascontiguousarray(view.T)

    @classmethod
    def build(cls, vectors: np.ndarray, config: IndexConfig | None = None,
              seed: int = 0) -> ItemIndex:
        config = IndexConfig(**(config or IndexConfig()).to_dict())
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = vectors.shape
        if config.kind == "auto":
            config.kind = choose_kind(n)
        if config.refine is None:
            config.refine = 2 if config.kind == "ivf-sq8" else 0
        if config.kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif config.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        else:
            config.nlist = config.nlist or max(1, min(n // 39, int(4 * np.sqrt(n))))
            # a graph over the centroids keeps the coarse step cheap when there are many lists
            quantizer = (faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
                         if config.nlist > 4096 else faiss.IndexFlatIP(d))
            if config.kind == "ivf-flat":
                index = faiss.IndexIVFFlat(quantizer, d, config.nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexIVFScalarQuantizer(
                    quantizer, d, config.nlist, faiss.ScalarQuantizer.QT_8bit,
                    faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(seed).choice(n, min(n, config.train_sample),
                                                        replace=False)
            index.train(vectors[np.sort(sample)])
            if config.refine:
                index = faiss.IndexRefineFlat(index)
        index.add(vectors)
        return cls(index, config)

    def _apply_search_params(self) -> None:
        base = faiss.downcast_index(self.index.base_index) if self.config.refine else self.index
        if isinstance(base, faiss.IndexIVF):
            base.nprobe = self.config.nprobe
            quantizer = faiss.downcast_index(base.quantizer)  # the attribute is a plain Index
            if isinstance(quantizer, faiss.IndexHNSW):
                quantizer.hnsw.efSearch = max(64, 2 * self.config.nprobe)
        if isinstance(base, faiss.IndexHNSW):
            base.hnsw.efSearch = self.config.ef_search
        if self.config.refine:
            self.index.k_factor = float(self.config.refine)

    @property
    def size(self) -> int:
        return self.index.ntotal

    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Item indices [n, k] (-1 where fewer exist) and inner products, best first, leaving out
        the items in ``exclude`` (for every query)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        exclude = np.zeros(0, dtype=np.int64) if exclude is None else np.asarray(exclude)
        if self._columns is not None:
            return self._exact_search(queries, k, exclude)
        scores, ids = self.index.search(queries, min(self.size, k + len(exclude)))
        if len(exclude):
            keep = ~contained(ids, exclude)
            order = np.argsort(~keep, axis=1, kind="stable")  # kept hits first, still best first
            ids = np.where(np.take_along_axis(keep, order, 1), np.take_along_axis(ids, order, 1), -1)
            scores = np.take_along_axis(scores, order, 1)
        return _pad(ids[:, :k], scores[:, :k], k)

    def _exact_search(self, queries: np.ndarray, k: int, exclude: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
        # excluded items are masked before the selection instead of over-fetched and filtered
        # out, all in one compiled call: k=70 over 1,682 items, 100 excluded, takes 13 us,
        # FAISS's search alone 17 (bench/request_kernels.py)
        ids, scores = _exact_top_k(queries, self._columns, exclude.astype(np.int64, copy=False),
                                   min(k, self._columns.shape[1]))
        return _pad(ids, scores, k)

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Append items; returns their indices."""
        start = self.size
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._view_vectors()
        return np.arange(start, self.size)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, config: IndexConfig) -> ItemIndex:
        return cls(faiss.read_index(str(path)), config)


@compiled()
def _exact_top_k(queries: np.ndarray, columns: np.ndarray, exclude: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ columns
    for row in range(scores.shape[0]):
        for item in exclude:
            if 0 <= item < scores.shape[1]:  # no bounds checks in compiled code
                scores[row, item] = -np.inf
    return best_per_row(scores, k)


def _pad(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to ``k`` columns with id -1 (score -inf) where fewer items were found."""
    missing = k - ids.shape[1]
    if missing <= 0:
        return ids, scores
    return (np.pad(ids, ((0, 0), (0, missing)), constant_values=-1),
            np.pad(scores, ((0, 0), (0, missing)), constant_values=-np.inf))


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact inner-product top-``k`` item indices, the reference for recall."""
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)[1]


def recall_at_k(index: ItemIndex, queries: np.ndarray, exact: np.ndarray, k: int = 100) -> float:
    """Share of the exact top-``k`` that the index returns, averaged over queries."""
    found = index.search(queries, k)[0]
    return float(np.mean([len(np.intersect1d(f, e)) / k for f, e in zip(found, exact[:, :k])]))


def tune(index: ItemIndex, queries: np.ndarray, exact: np.ndarray, k: int = 100,
         target: float = RECALL_TARGET) -> float:
    """The cheapest search setting reaching ``target`` recall@``k``: ``nprobe`` for IVF,
    ``ef_search`` for HNSW, tried in steps of x1.5 and x4/3 (1, 2, 3, 4, 6, 8, ...; a flat index
    is exact). Returns the recall it measured."""
    kind = index.config.kind
    if kind.startswith("ivf") or kind == "hnsw":
        field, start, limit = (("nprobe", 1, index.config.nlist) if kind.startswith("ivf")
                               else ("ef_search", k, 8192))
        for value in _ladder(start, limit):
            setattr(index.config, field, value)
            index._apply_search_params()
            recall = recall_at_k(index, queries, exact, k)
            if recall >= target:
                break
    else:
        recall = recall_at_k(index, queries, exact, k)
    if recall < target:
        log.warning("index recall@%d is %.3f, under %.2f: retrieval will miss items exact search "
                    "finds; use a flat index or a larger nlist", k, recall, target)
    return recall


def _ladder(start: int, limit: int) -> list[int]:
    """``start`` times powers of two and their midpoints (x1.5), up to ``limit``, which ends it."""
    steps = {value for i in range(64) for value in (start << i, (3 * start << i) // 2)
             if value < limit}
    return sorted(steps) + [limit]
