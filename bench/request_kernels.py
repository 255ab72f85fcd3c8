"""The request path's small kernels against what NumPy, SciPy or FAISS take for the same answer,
at ML-100K's sizes (1,682 items, 64 dimensions, a hundred seen items) and at a large catalog's,
one thread, best of five repeats:

    python bench/request_kernels.py

- top-k of one row with excluded items, and of batches (``recfunnel.retrieval.topk.top_k``,
  compiled, against ``np.argpartition`` and a sort of the part kept);
- exact search for one and three queries (``ItemIndex.search``) against FAISS's flat index,
  which returns the excluded items too;
- the seen items' rows of the co-occurrence weights, summed as 16-bit integers
  (``Int16Rows.sum_rows``) against a sparse indicator row times the float weights (SciPy);
- the ranking network for one request (100 candidates, a 20-item history) and the user tower for
  one request, compiled (``ScoringNet``, ``RequestTower``) against the PyTorch modules they are
  taken from (random weights: the time does not depend on them).
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from recfunnel.data.arrays import Int16Rows
from recfunnel.index.ann import ItemIndex
from recfunnel.ranking.model import RankerNet
from recfunnel.ranking.scoring_net import ScoringNet
from recfunnel.retrieval.request_tower import RequestTower
from recfunnel.retrieval.topk import top_k
from recfunnel.retrieval.two_tower import TowerConfig, TwoTowerModel
from recfunnel.serving.retrieval import single_thread


def best(run: Callable[[], object], number: int) -> float:
    """Seconds per call, best of five repeats of ``number`` calls."""
    run()
    return min(timeit.repeat(run, number=number, repeat=5)) / number


def numpy_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1)


def row(name: str, ours: float, theirs: float, unit: float = 1e6, label: str = "us") -> None:
    print(f"| {name} | {ours * unit:.1f} {label} | {theirs * unit:.1f} {label} |")


def main() -> None:
    single_thread()
    rng = np.random.default_rng(0)
    n, d = 1682, 64
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    seen = np.sort(rng.choice(n, 100, replace=False))
    print("| kernel | recfunnel | NumPy / SciPy / FAISS |\n| --- | --- | --- |")

    scores = rng.standard_normal((1, n)).astype(np.float32)
    scores[:, seen] = -np.inf
    row("top-70 of one row of 1,682 (100 excluded)", best(lambda: top_k(scores.copy(), 70), 3000),
        best(lambda: numpy_top_k(scores.copy(), 70), 3000))

    index = ItemIndex.build(vectors)
    one, three = (rng.standard_normal((q, d)).astype(np.float32) for q in (1, 3))
    for queries, k in ((one, 70), (three, 10)):
        row(f"exact search, {len(queries)} quer{'y' if len(queries) == 1 else 'ies'}, k={k}, "
            "100 excluded (FAISS: k + 100, not filtered)",
            best(lambda: index.search(queries, k, exclude=seen), 3000),
            best(lambda: index.index.search(queries, k + len(seen)), 3000))

    weights = rng.standard_normal((n, n)).astype(np.float32)
    quantised = Int16Rows.of(weights)
    indicator = sp.csr_matrix((np.ones(len(seen), np.float32), seen.astype(np.int32),
                               np.array([0, len(seen)], np.int32)), shape=(1, n))
    row("co-occurrence row of 100 seen items (SciPy: building the row included)",
        best(lambda: quantised.sum_rows(seen), 3000),
        best(lambda: sp.csr_matrix((indicator.data, indicator.indices, indicator.indptr),
                                   shape=(1, n)) @ weights, 3000))

    for users, items, k in ((1024, n, 500), (256, 100_000, 100)):
        batch = rng.standard_normal((users, items)).astype(np.float32)
        row(f"top-{k} of {users:,} rows of {items:,}", best(lambda: top_k(batch.copy(), k), 3),
            best(lambda: numpy_top_k(batch.copy(), k), 3), 1e3, "ms")

    torch.manual_seed(0)
    ranker = RankerNet(d, 128).eval()
    request = {"user": np.ones((1, d), np.float32),
               "items": rng.standard_normal((1, 100, d)).astype(np.float32),
               "history": rng.standard_normal((1, 20, d)).astype(np.float32),
               "history_mask": np.ones((1, 20), bool),
               "dense": rng.standard_normal((1, 100, 7)).astype(np.float32)}
    tensors = {name: torch.from_numpy(value) for name, value in request.items()}
    # ML-100K's shapes: four demographic fields, a 256-unit MLP, a 20-item history
    tower = TwoTowerModel(TowerConfig(n_items=n, n_users=943, n_genres=19,
                                      user_field_sizes=[7, 2, 21, 10], hidden=256)).eval()
    window, categories = rng.integers(0, n, 20), np.array([3, 1, 5, 2])
    inputs = (torch.from_numpy(window[None]), torch.from_numpy(categories[None]),
              torch.tensor([-1]))
    print("\n| network, one request | compiled | PyTorch |\n| --- | --- | --- |")
    with torch.inference_mode():
        row("ranking network, 100 candidates, a 20-item history",
            best(lambda s=ScoringNet.of(ranker): s(**request), 2000),
            best(lambda: ranker(**tensors), 2000))
        row("user tower, attention over 20 items, 256-unit MLP",
            best(lambda t=RequestTower.of(tower): t(window, categories, -1), 5000),
            best(lambda: tower(*inputs), 5000))


if __name__ == "__main__":
    main()
