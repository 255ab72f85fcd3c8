"""Array helpers shared by the stages' request paths."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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


def row_indices(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """The column indices of ``rows`` of a CSR matrix, row after row: what
    ``matrix[rows].indices`` holds, without SciPy's row indexing (a tenth of a millisecond for
    a request's twenty rows) or a Python loop over the rows."""
    starts = matrix.indptr[rows]
    counts = matrix.indptr[np.asarray(rows) + 1] - starts
    first = np.cumsum(counts) - counts  # where each row's run begins in the output
    return matrix.indices[np.repeat(starts - first, counts) + np.arange(counts.sum())]


def indicator_row(items: np.ndarray, n: int) -> sp.csr_matrix:
    """``items`` (any order, repeats allowed, all below ``n``) as a sparse binary 1 x ``n`` row.
    Times a dense item x item matrix, it adds up those items' rows without gathering them first:
    3x faster than ``matrix[items].sum(0)`` for a history of 300 items."""
    unique = np.unique(items).astype(np.int32)  # int32: SciPy checks and converts int64 ones
    return sp.csr_matrix((np.ones(len(unique), np.float32), unique,
                          np.array([0, len(unique)], dtype=np.int32)), shape=(1, n))
