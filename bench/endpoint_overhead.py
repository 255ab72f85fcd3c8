"""What the recommendations endpoint costs on top of the funnel, with the funnel's answers
replayed from a cache so that only the routing, validation, middleware, metrics and JSON remain.

In process (the ASGI app called directly: no sockets, no HTTP parsing), best of five runs:

    python bench/endpoint_overhead.py --artifacts artifacts/tt

Over HTTP (``--http``): the same app served by uvicorn as ``recfunnel serve`` serves it, one
process, under an open loop from ``bench/loadgen.c``; the server's CPU time per request (which
also holds uvicorn, the event loop and the kernel's loopback TCP), and the client's.
``--uvicorn-defaults`` serves with uvicorn's own defaults instead of ``recfunnel serve``'s
options, to see what those save:

    python bench/endpoint_overhead.py --artifacts artifacts/tt --http \
        --server-cpus 0 --client-cpus 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi import FastAPI

from recfunnel.serving.app import create_app
from serve_load import CompiledClient, cpu_seconds, wait_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--http", action="store_true",
                        help="served by uvicorn and measured under load instead of in process")
    parser.add_argument("--uvicorn-defaults", action="store_true",
                        help="with --http: uvicorn's default options, not recfunnel serve's")
    parser.add_argument("--rate", type=float, default=500.0, help="with --http: requests/s")
    parser.add_argument("--seconds", type=float, default=8.0, help="with --http: counted seconds")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--server-cpus", default="", help="with --http: as taskset -c")
    parser.add_argument("--client-cpus", default="", help="with --http: as taskset -c")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server
    args = parser.parse_args()
    users = np.random.default_rng(0).choice(
        pd.read_parquet(args.artifacts / "users.parquet")["user_id"].astype(str), 50,
        replace=False).tolist()
    if args.serve:
        import uvicorn

        from recfunnel.serving.workers import SERVER_OPTIONS
        options = {"log_level": "warning"} if args.uvicorn_defaults else SERVER_OPTIONS
        uvicorn.run(replaying(args.artifacts, users), host="127.0.0.1", port=args.port, **options)
    elif args.http:
        over_http(args, users)
    else:
        asyncio.run(_time(replaying(args.artifacts, users), users, args.requests))


def replaying(artifacts: Path, users: list[str]) -> FastAPI:
    """The service's app, its funnel replaced by the answers it gave ``users``."""
    app = create_app(artifacts)
    service = app.state.service
    answers = {user: service.recommend_many([(user, 10, {})])[0] for user in users}
    service.recommend_many = lambda jobs: [answers[user] for user, _, _ in jobs]
    return app


def over_http(args: argparse.Namespace, users: list[str]) -> None:
    def pinned(listed: str) -> set[int]:
        return {int(cpu) for cpu in listed.split(",") if cpu}

    server_cpus, client_cpus = pinned(args.server_cpus), pinned(args.client_cpus)
    command = [sys.executable, __file__, "--serve", "--artifacts", str(args.artifacts),
               "--port", str(args.port)] + (["--uvicorn-defaults"] if args.uvicorn_defaults
                                            else [])
    server = subprocess.Popen(command, preexec_fn=(lambda: os.sched_setaffinity(0, server_cpus))
                              if server_cpus else None)
    try:
        (pid,) = wait_for(args.port, 1)
        if client_cpus:
            os.sched_setaffinity(0, client_cpus)  # the C client inherits it
        with tempfile.TemporaryDirectory() as tmp:
            client = CompiledClient(args.port, 16, np.array(users), Path(tmp))
            client.open_loop(args.rate, 1.0, 1.0)  # warm-up
            before = cpu_seconds(pid)
            result, _, client_cpu = client.open_loop(args.rate, args.seconds, 0.0)
            used = cpu_seconds(pid) - before
        print(f"recommendations endpoint without the funnel, over HTTP "
              f"({'uvicorn defaults' if args.uvicorn_defaults else 'recfunnel serve options'}), "
              f"{args.rate:g} req/s for {args.seconds:g} s: {used / result['sent'] * 1e6:.0f} us "
              f"of server CPU a request ({client_cpu / result['sent'] * 1e6:.0f} of the client's); "
              f"{result['ok']} of {result['sent']} answered 200, "
              f"p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms")
    finally:
        server.terminate()
        server.wait()


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
