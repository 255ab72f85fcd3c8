"""``serve --workers N``: N server processes on one port, sharing the feature store, one artifact
version (``recfunnel.serving.versions``) and their Prometheus metrics.

One process answers one request at a time (the funnel runs single-threaded on the event loop), so
throughput grows with processes, about one per core.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from recfunnel.serving.service import StoreConfig
from recfunnel.serving.versions import Pointer

# the settings reach the worker processes through the environment
ENV_ARTIFACTS, ENV_STORE, ENV_REDIS_URL, ENV_SHARED = (
    "RECFUNNEL_SERVE_ARTIFACTS", "RECFUNNEL_SERVE_STORE", "RECFUNNEL_SERVE_REDIS_URL",
    "RECFUNNEL_SERVE_SHARED")


def serve_workers(artifacts: Path, store: StoreConfig, host: str, port: int,
                  workers: int) -> None:
    """Run ``workers`` processes on ``host:port`` until interrupted."""
    shared = Path(tempfile.mkdtemp(prefix="recfunnel-serve-"))
    (shared / "metrics").mkdir()
    os.environ.update({ENV_ARTIFACTS: str(artifacts.resolve()), ENV_STORE: store.kind,
                       ENV_REDIS_URL: store.redis_url, ENV_SHARED: str(shared),
                       # read when a worker first imports prometheus_client: metrics kept in files
                       "PROMETHEUS_MULTIPROC_DIR": str(shared / "metrics")})
    settings = uvicorn.Config(f"{__name__}:app_from_environment", factory=True, workers=workers,
                              host=host, port=port, log_level="warning")
    listener = settings.bind_socket()
    # accepted connections inherit this on Linux; uvicorn's own listener for workers leaves
    # Nagle on, and every keep-alive response then waits ~40 ms for a delayed ACK (its #3149)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        Multiprocess(settings, sockets=[listener]).run()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def app_from_environment() -> FastAPI:
    """One worker process: the app, from the settings :func:`serve_workers` left in the
    environment, over the version the others serve (a worker started again after a crash may
    come up after a reload)."""
    from recfunnel.serving.app import create_app  # after PROMETHEUS_MULTIPROC_DIR is read

    shared = Path(os.environ[ENV_SHARED])
    return create_app(Pointer(shared).read() or Path(os.environ[ENV_ARTIFACTS]),
                      StoreConfig(os.environ[ENV_STORE], os.environ[ENV_REDIS_URL]), shared)
