"""``serve --workers N``: N server processes on one port, sharing the feature store, one artifact
version (``recfunnel.serving.versions``) and their Prometheus metrics.

One process answers one request at a time (the funnel runs single-threaded on the event loop), so
throughput grows with processes, about one per core. A keep-alive connection stays with the process
that accepted it, so how connections fall on processes is how the load falls on them. On Linux each
process accepts on a socket of its own (``SO_REUSEPORT``) and the kernel spreads new connections
over the sockets by hash. On one socket shared by all, 32 connections opened together went 31 or
32 to one process, which then answered nearly alone: on two cores it fell behind from about 700
requests/s in one run and gave p99 26-63 ms from 600 requests/s in the other, against 8-60 ms
with a socket each (``bench/serve_load.py --connections 32``, BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

from recfunnel.serving.service import StoreConfig
from recfunnel.serving.versions import Pointer

# the settings reach the worker processes through the environment
ENV_ARTIFACTS, ENV_STORE, ENV_REDIS_URL, ENV_SHARED = (
    "RECFUNNEL_SERVE_ARTIFACTS", "RECFUNNEL_SERVE_STORE", "RECFUNNEL_SERVE_REDIS_URL",
    "RECFUNNEL_SERVE_SHARED")
log = logging.getLogger(__name__)


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
    listeners = _listeners(host, port, workers)
    try:
        _Supervisor(settings, listeners).run()
    finally:
        for listener in listeners:
            listener.close()
        shutil.rmtree(shared, ignore_errors=True)


def _listeners(host: str, port: int, workers: int) -> list[socket.socket]:
    """One socket per worker on Linux (``SO_REUSEPORT``, which there balances new connections
    over the sockets), else one for all; bound here, in the supervisor, so that a port in use is
    reported once. Each worker listens on its socket once its app has loaded."""
    balanced = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
    # SO_REUSEPORT would also let these join another server's port: a socket bound without it
    # first fails if anything listens there (and chooses the port when ``port`` is 0)
    listeners: list[socket.socket] = []
    try:
        with _socket(host, reuse_port=False) as probe:
            probe.bind((host, port))
            port = probe.getsockname()[1]
            if not balanced:
                return [probe.dup()]
            for _ in range(workers):
                listeners.append(_bound(host, port))
            return listeners
    except OSError as err:
        for listener in listeners:
            listener.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {err.strerror}") from None


def _bound(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` beside the others of its server (``SO_REUSEPORT``)."""
    listener = _socket(host, reuse_port=True)
    try:
        listener.bind((host, port))
    except OSError:
        listener.close()
        raise
    return listener


def _socket(host: str, reuse_port: bool) -> socket.socket:
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # accepted connections inherit this on Linux; without it every keep-alive response waits
    # ~40 ms for a delayed ACK (uvicorn's listener for workers leaves Nagle on: #3149)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener


class _Supervisor(Multiprocess):
    """uvicorn's supervisor (signals, health checks, a dead worker replaced), with worker ``i``
    accepting on ``sockets[i]`` when there is one socket per worker. A dead worker's socket is
    closed with it: connections waiting there are reset (a client sees a closed connection, as
    when a shared socket's worker dies in the middle of a request), and new ones go to the
    others until its replacement has loaded and listens on a new socket. Adding, removing or
    restarting workers by signal (SIGTTIN, SIGTTOU, SIGHUP) is not offered."""

    def _slot(self, index: int) -> list[socket.socket]:
        return self.sockets if len(self.sockets) == 1 else [self.sockets[index]]

    def init_processes(self) -> None:
        for index in range(self.processes_num):
            self.processes.append(process := Process(self.config, self._slot(index)))
            process.start()

    def keep_subprocess_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or already dead
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # the app cannot start: it would not again
                log.error("worker process %s failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            log.warning("worker process %s died; starting another", process.pid)
            if len(self.sockets) > 1:
                old = self.sockets[index]
                try:
                    self.sockets[index] = _bound(*old.getsockname()[:2])
                except OSError as err:
                    log.error("cannot listen again on %s: %s; stopping", old.getsockname(), err)
                    self.should_exit.set()
                    return
                old.close()
            self.processes[index] = replacement = Process(self.config, self._slot(index))
            replacement.start()

    def handle_hup(self) -> None:
        log.warning("SIGHUP ignored: to load a new version, POST /admin/reload")

    def handle_ttin(self) -> None:
        log.warning("SIGTTIN ignored: the number of workers is fixed (--workers)")

    handle_ttou = handle_ttin


def app_from_environment() -> FastAPI:
    """One worker process: the app, from the settings :func:`serve_workers` left in the
    environment, over the version the others serve (a worker started again after a crash may
    come up after a reload)."""
    from recfunnel.serving.app import create_app  # after PROMETHEUS_MULTIPROC_DIR is read

    shared = Path(os.environ[ENV_SHARED])
    return create_app(Pointer(shared).read() or Path(os.environ[ENV_ARTIFACTS]),
                      StoreConfig(os.environ[ENV_STORE], os.environ[ENV_REDIS_URL]), shared)
