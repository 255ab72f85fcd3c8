"""What the recommendations endpoint costs on top of the funnel: the ASGI app called in process
(no sockets, no HTTP parsing) with the funnel's answers replayed from a cache, so that only the
routing, validation, middleware, metrics and JSON remain. Best of five runs:

    python bench/endpoint_overhead.py --artifacts artifacts/tt
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import numpy as np
from fastapi import FastAPI

from recfunnel.serving.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    app = create_app(args.artifacts)
    service = app.state.service
    users = np.random.default_rng(0).choice(
        service.system.dataset.users["user_id"].astype(str), 50, replace=False).tolist()
    answers = {user: service.recommend_many([(user, 10, {})])[0] for user in users}
    service.recommend_many = lambda jobs: [answers[user] for user, _, _ in jobs]
    asyncio.run(_time(app, users, args.requests))


async def _time(app: FastAPI, users: list[str], n: int) -> None:
    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    scopes = [{"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
               "method": "GET", "scheme": "http", "path": f"/users/{user}/recommendations",
               "raw_path": f"/users/{user}/recommendations".encode(), "query_string": b"k=10",
               "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
               "server": ("127.0.0.1", 8000)} for user in users]
    requests = [scopes[i % len(scopes)] for i in range(n)]
    async with app.router.lifespan_context(app):
        for scope in requests[:300]:
            await app(scope, receive, send)
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            for scope in requests:
                await app(scope, receive, send)
            runs.append((time.perf_counter() - start) / n)
    print(f"recommendations endpoint without the funnel: {min(runs) * 1e6:.1f} us a request "
          f"(best of 5 runs of {n}; runs: {', '.join(f'{r * 1e6:.0f}' for r in runs)})")


if __name__ == "__main__":
    main()
