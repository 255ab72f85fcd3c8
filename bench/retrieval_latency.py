"""Single-request latency of online retrieval (store -> user tower -> ANN), one thread.

    recfunnel fit --data ../shared/data/ml-100k --model two-tower --out artifacts/tt
    python bench/retrieval_latency.py --artifacts artifacts/tt

Prints p50/p99 of the user tower, the ANN search, the whole request (store reads included) and the
tower plus the search alone (as `ann_scale.py` times them at 1M and 10M items),
the index's recall@100 against exact search as recorded at build time, and HR@k of the held-out
item for the two-tower alone and for the merged candidate sources.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from recfunnel.artifacts import load_system
from recfunnel.serving.retrieval import OnlineRetriever, single_thread
from recfunnel.store.sqlite_store import SQLiteStore


def percentiles(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--k", type=int, default=500)
    args = parser.parse_args()
    single_thread()
    system = load_system(args.artifacts)
    online = OnlineRetriever.of(system, SQLiteStore(system.store_path))
    users = np.random.default_rng(0).integers(0, system.dataset.n_users, args.requests)
    tower, search, ann, merged, no_store = [], [], [], [], []
    states = {u: online.store.user_state(u, system.retrieval.history_length)
              for u in map(int, np.unique(users))}
    for u in users[:200]:  # warm-up
        online.ann(int(u), args.k)
    for u in users:
        u = int(u)
        t0 = time.perf_counter()
        vector, _, _ = online.user_vector(u)
        t1 = time.perf_counter()
        online.index.search(vector[None, :], args.k)
        t2 = time.perf_counter()
        online.ann(u, args.k)
        t3 = time.perf_counter()
        online.retrieve(u, args.k)
        t4 = time.perf_counter()
        state = states[u]  # read before the clock: the tower and the search alone, as at 1M/10M
        vector = system.retrieval.user_vector(system.retrieval.window(state.recent),
                                              state.features, u)
        online.index.search(vector[None, :], args.k, exclude=state.seen)
        t5 = time.perf_counter()
        no_store.append(t5 - t4)
        tower.append(t1 - t0)
        search.append(t2 - t1)
        ann.append(t3 - t2)
        merged.append(t4 - t3)
    info = system.manifest["index"]
    print(f"{system.dataset.n_items:,} items, index {info['config']['kind']}, "
          f"recall@100 {info['recall@100']}, {args.requests} requests, k={args.k}, one thread")
    print(f"store reads + user tower: {percentiles(tower)}")
    print(f"ANN search alone:         {percentiles(search)}")
    print(f"two-tower retrieval:      {percentiles(ann)}  (store + tower + ANN + exclusion)")
    print(f"user tower + ANN:         {percentiles(no_store)}  (store reads excluded)")
    print(f"merged candidate sources: {percentiles(merged)}")
    if system.heldout is not None and len(system.heldout):
        pairs = list(zip(system.heldout["user"].tolist(), system.heldout["item"].tolist()))
        alone = np.mean([i in online.ann(u, args.k)[0] for u, i in pairs])
        mixed = np.mean([i in online.retrieve(u, args.k).items for u, i in pairs])
        print(f"held-out HR@{args.k}: two-tower alone {alone:.4f}, merged sources {mixed:.4f} "
              f"({len(pairs)} users)")


if __name__ == "__main__":
    main()
