"""ANN retrieval at catalog scale: build time, memory per item, recall@100 against exact search
and single-request latency (one thread), on synthetic clustered item vectors.

    python bench/ann_scale.py --items 1000000 --artifacts artifacts/tt
    python bench/ann_scale.py --items 10000000 --artifacts artifacts/tt

Items are unit vectors around sqrt(n) topic centres; queries lean on one topic and a little on
another, like a user's taste. ``tune`` picks the search setting on half of the queries and recall is
reported on the other half. With ``--artifacts`` (a fitted two-tower system of the same dimension),
each timed request also runs that model's user tower on a real user's features and history, so the
latency is the whole request minus the store reads.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from tqdm import tqdm

from recfunnel.artifacts import load_system
from recfunnel.index.ann import IndexConfig, ItemIndex, exact_top_k, recall_at_k, tune
from recfunnel.serving.retrieval import single_thread


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def catalog(n: int, d: int, noise: float, seed: int = 0, chunk: int = 1_000_000
            ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(int(np.sqrt(n)), d)))
    vectors = np.empty((n, d), dtype=np.float32)
    for lo in tqdm(range(0, n, chunk), desc="vectors", unit="M"):
        m = min(chunk, n - lo)
        topic = centres[rng.integers(0, len(centres), m)]
        vectors[lo:lo + m] = unit(topic + noise * rng.standard_normal((m, d), dtype=np.float32))
    return vectors, centres


def queries(centres: np.ndarray, n: int, noise: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = (centres[rng.integers(0, len(centres), n)] for _ in range(2))
    return unit(0.8 * a + 0.2 * b + noise * rng.standard_normal(a.shape))


def index_bytes(index: ItemIndex) -> int:
    with tempfile.NamedTemporaryFile(suffix=".faiss") as f:
        index.save(Path(f.name))
        return os.path.getsize(f.name)


def request_tower(artifacts: Path | None, dim: int):
    """A function running the fitted user tower for a random real user, or None."""
    if artifacts is None:
        return None
    system = load_system(artifacts)
    model, history = system.retrieval, system.dataset.history(system.dataset.interactions)
    if model.model_.config.dim != dim:
        raise SystemExit(f"--dim {dim} differs from the model's {model.model_.config.dim}")
    items, offsets = history.sequences
    lengths = history.lengths()
    users = system.dataset.users.to_dict(orient="records")
    rng = np.random.default_rng(2)

    def run() -> None:
        u = int(rng.integers(0, len(lengths)))
        recent = items[offsets[u]:offsets[u] + lengths[u]][-model.history_length:]
        model.user_vector(model.window(recent), users[u], u)
    return run


def percentiles(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--noise", type=float, default=0.1, help="per-dimension spread around a topic")
    parser.add_argument("--kind", default="auto")
    parser.add_argument("--nlist", type=int, default=None)
    parser.add_argument("--refine", type=int, default=None,
                        help="default: the index's (2 for IVF-SQ8, else 0)")
    parser.add_argument("--train-sample", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--artifacts", type=Path, default=None)
    args = parser.parse_args()

    vectors, centres = catalog(args.items, args.dim, args.noise)
    qs = queries(centres, args.queries, args.noise)
    config = IndexConfig(kind=args.kind, nlist=args.nlist, refine=args.refine,
                         train_sample=args.train_sample)
    start = time.perf_counter()
    index = ItemIndex.build(vectors, config)
    build = time.perf_counter() - start
    exact = exact_top_k(vectors, qs, 100)
    half = len(qs) // 2
    tune(index, qs[:half], exact[:half], 100)
    recall = recall_at_k(index, qs[half:], exact[half:], 100)
    size = index_bytes(index)
    setting = (f"nprobe {index.config.nprobe}" if index.config.kind.startswith("ivf")
               else f"ef_search {index.config.ef_search}" if index.config.kind == "hnsw" else "exact")

    single_thread()
    tower = request_tower(args.artifacts, args.dim)
    ann, whole = [], []
    for q in qs[:200]:  # warm-up
        index.search(q[None, :], args.k)
    for q in qs:
        t0 = time.perf_counter()
        if tower is not None:
            tower()
        t1 = time.perf_counter()
        index.search(q[None, :], args.k)
        t2 = time.perf_counter()
        ann.append(t2 - t1)
        whole.append(t2 - t0)
    print(f"{args.items:,} items, d={args.dim}, index {index.config.kind} "
          f"(nlist {index.config.nlist}, refine {index.config.refine}), {setting}, "
          f"faiss {faiss.__version__}")
    print(f"build {build:.1f} s (2 threads), {size / args.items:.1f} bytes/item in the index file, "
          f"recall@100 {recall:.4f} on {len(qs) - half} held-out queries")
    print(f"ANN search alone, k={args.k}, one thread: {percentiles(ann)}")
    if tower is not None:
        print(f"user tower + ANN search, k={args.k}:       {percentiles(whole)}")


if __name__ == "__main__":
    main()
