"""Array helpers shared by the stages' request paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recfunnel.compiled import compiled


def contained(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` (integers, any shape) is in ``among``: ``np.isin``'s answer,
    by binary search in the sorted ``among``. At a request's sizes (a hundred candidates, a
    hundred seen items) it takes 6 microseconds where ``np.isin`` takes 55."""
    values = np.asarray(values)
    among = np.sort(np.asarray(among).ravel())
    if not len(among):
        return np.zeros(values.shape, dtype=bool)
    position = np.searchsorted(among, values)
    position[position == len(among)] = 0
    return among[position] == values


def distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted: ``np.unique``'s answer in a quarter of its time at a
    request's sizes (5 against 19 microseconds for 300 item indices, NumPy 2.4)."""
    ordered = np.sort(np.asarray(values).ravel())
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def column_counts(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """How many of ``rows`` (repeats count again) hold an entry in each column of a CSR matrix:
    ``np.bincount(matrix[rows].indices)``, compiled, without SciPy's row indexing (a tenth of a
    millisecond for a request's twenty rows)."""
    return _column_counts(matrix.indptr, matrix.indices, np.asarray(rows, dtype=np.int64),
                          matrix.shape[1])


@compiled()
def _column_counts(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray,
                   n_columns: int) -> np.ndarray:
    counts = np.zeros(n_columns, dtype=np.int64)
    for row in rows:
        for position in range(indptr[row], indptr[row + 1]):
            counts[indices[position]] += 1
    return counts


@dataclass(frozen=True)
class Int16Rows:
    """A dense float matrix kept as 16-bit integers and one scale, for sums of its rows: such a
    sum reads half the memory (a request's co-occurrence row reads a row per seen item, 670 KB
    of float32 for a hundred items of ML-100K's 1,682), and each entry is within half a step
    (the largest magnitude / 32,767) of its float value."""

    values: np.ndarray  # int16, the float matrix / scale, rounded
    scale: float

    @classmethod
    def of(cls, matrix: np.ndarray, block: int = 1024) -> Int16Rows:
        """Quantised ``block`` rows at a time: no catalog-sized float temporaries (40,000 items
        of dense weights are 6.4 GB in float32)."""
        largest = max(float(matrix.max()), -float(matrix.min())) if matrix.size else 0.0
        scale = largest / np.iinfo(np.int16).max or 1.0
        values = np.empty(matrix.shape, dtype=np.int16)
        for lo in range(0, len(matrix), block):
            values[lo:lo + block] = np.round(matrix[lo:lo + block] / scale)
        return cls(values, scale)

    def save(self, path: Path) -> float:
        """The values as an ``.npy`` file; returns the scale, which :meth:`load` needs."""
        np.save(path, self.values)
        return self.scale

    @classmethod
    def load(cls, path: Path, scale: float) -> Int16Rows:
        """Memory-mapped, read only: processes that load the same file share its pages."""
        return cls(np.load(path, mmap_mode="r"), float(scale))

    def sum_rows(self, rows: np.ndarray) -> np.ndarray:
        """The rows at ``rows`` added up, float32, compiled and without gathering them first."""
        return _sum_rows(self.values, np.asarray(rows, dtype=np.int64), np.float32(self.scale))


@compiled()
def _sum_rows(values: np.ndarray, rows: np.ndarray, scale: np.float32) -> np.ndarray:
    # exact, no rounding adds up; int32 holds the sum of up to 65,538 rows (distinct items of
    # a catalog small enough for dense weights: 40,000 at most)
    total = np.zeros(values.shape[1], dtype=np.int32)
    for row in rows:
        for column in range(values.shape[1]):
            total[column] += values[row, column]
    return total.astype(np.float32) * scale
