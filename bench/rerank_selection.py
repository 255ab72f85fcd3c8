"""What the re-ranker's selection (``Reranker.select``: the greedy pick and its notes) and the
whole re-ranking of a list cost inside live requests, in process: medians over the requests
after a warm-up. Run it with the code of another commit on ``PYTHONPATH`` to compare.

    python bench/rerank_selection.py --artifacts artifacts/tt4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from recfunnel.rerank.chain import Reranker
from recfunnel.serving.service import Service, StoreConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    service = Service.load(args.artifacts, StoreConfig())
    seconds: dict[str, list[float]] = {"select": [], "rerank": []}
    for name in seconds:
        timed = getattr(Reranker, name)

        def wrapper(*call, _timed=timed, _name=name):
            start = time.perf_counter()
            result = _timed(*call)
            seconds[_name].append(time.perf_counter() - start)
            return result
        setattr(Reranker, name, wrapper)
    users = np.random.default_rng(0).choice(
        service.system.dataset.users["user_id"].astype(str), args.requests + 300)
    for user in users:
        service.recommend(user, 10, {})
    print(", ".join(f"{name} p50 {np.median(values[300:]) * 1e3:.3f} ms"
                    for name, values in seconds.items()))
    service.close()


if __name__ == "__main__":
    main()
