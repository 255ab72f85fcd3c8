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


def indicator_rows(rows: list[np.ndarray], n: int) -> sp.csr_matrix:
    """Each of ``rows`` (item indices, any order, repeats allowed, all below ``n``) as one
    binary row of a sparse [len(rows), n] matrix. A row times a dense item x item matrix adds up
    those items' rows without gathering them first: 3x faster than ``matrix[items].sum(0)`` for a
    history of 300 items."""
    unique = [np.unique(row) for row in rows]
    indptr = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum([len(u) for u in unique], out=indptr[1:])
    # int32 indices: SciPy checks and converts int64 ones
    indices = np.concatenate(unique).astype(np.int32) if rows else np.zeros(0, np.int32)
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr),
                         shape=(len(rows), n))
