"""Array helpers shared by the stages' request paths."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit


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


@njit(cache=True, nogil=True)
def sum_rows(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The rows of a dense 2-D ``matrix`` at ``rows``, added up, compiled and without gathering
    them first: for a hundred rows of a 1,682 x 1,682 matrix, 12 microseconds, where a sparse
    indicator row times the matrix takes 38 with SciPy, building the row included."""
    out = np.zeros(matrix.shape[1], dtype=matrix.dtype)
    for row in rows:
        for column in range(matrix.shape[1]):
            out[column] += matrix[row, column]
    return out
