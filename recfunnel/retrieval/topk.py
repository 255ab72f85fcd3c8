"""Top-K selection over a full catalog, with each user's visible history excluded."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

PAD = -1  # item slot left empty when a user has seen nearly the whole catalog


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` items per row, ordered by score then item index (ties are broken the same way
    everywhere, so a list and a rank computed from it agree). Excluded items never appear: their
    slots hold :data:`PAD` with score ``-inf`` when fewer than ``k`` items remain.

    ``scores`` is modified in place where ``exclude`` is set.
    """
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    if exclude is not None:
        rows, cols = exclude.nonzero()
        scores[rows, cols] = -np.inf
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    threshold = np.take_along_axis(scores, top, axis=1).min(axis=1)
    at_least = (scores >= threshold[:, None]).sum(axis=1)
    for r in np.flatnonzero(at_least > k):  # ties straddle the cut: take the lowest item indices
        tied = np.flatnonzero(scores[r] >= threshold[r])
        top[r] = tied[np.argsort(-scores[r, tied], kind="stable")[:k]]
    values = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -values), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    top[np.isneginf(values)] = PAD
    return top, values


def rank_users(
    score: Callable[[np.ndarray], np.ndarray],
    users: np.ndarray,
    exclude: sp.csr_matrix,
    k: int,
    *,
    batch_size: int = 1024,
    desc: str = "ranking",
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` lists for ``users`` in batches; ``score(batch)`` returns a [batch, n_items] array and
    ``exclude`` is the user x item matrix of what each user has already seen."""
    items = np.empty((len(users), k), dtype=np.int64)
    values = np.empty((len(users), k), dtype=np.float32)
    for start in tqdm(range(0, len(users), batch_size), desc=desc, disable=None, leave=False):
        batch = users[start:start + batch_size]
        scores = np.array(score(batch), dtype=np.float32)
        top, top_values = top_k(scores, k, exclude[batch])
        width = top.shape[1]
        items[start:start + len(batch), :width] = top
        values[start:start + len(batch), :width] = top_values
        items[start:start + len(batch), width:] = PAD
        values[start:start + len(batch), width:] = -np.inf
    return items, values
