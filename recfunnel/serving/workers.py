"""``serve --workers N``: N server processes on one port, sharing the feature store, one artifact
version (``recfunnel.serving.versions``) and their Prometheus metrics.

One process answers one request at a time (the funnel runs single-threaded on the event loop), so
throughput grows with processes, about one per core. A keep-alive connection stays with the process
that accepted it, so how connections fall on processes is how the load falls on them. The
supervisor therefore accepts every connection itself and hands it to the workers in turn, over a
Unix socket per worker (``SCM_RIGHTS``): 32 connections opened at once go 16 to each of two
workers. Left to the kernel they were not even. On one socket shared by all, 32 connections went
31 or 32 to one process. With a socket per process (``SO_REUSEPORT``, spread by a hash of the
client's address and port), splits of 13 + 19 and 12 + 20 were common: on a 16-core machine with
the server on two cores, the busier worker saturated at 800 requests/s while the other had room
(``bench/serve_load.py --timeline``, BENCHMARKS.md). Where file descriptors cannot be passed
(Windows), the workers share one socket.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

from recfunnel.serving.handoff import HANDED, Worker
from recfunnel.serving.service import StoreConfig
from recfunnel.serving.versions import Pointer

# the settings reach the worker processes through the environment
ENV_ARTIFACTS, ENV_STORE, ENV_REDIS_URL, ENV_SHARED = (
    "RECFUNNEL_SERVE_ARTIFACTS", "RECFUNNEL_SERVE_STORE", "RECFUNNEL_SERVE_REDIS_URL",
    "RECFUNNEL_SERVE_SHARED")
# uvicorn's per-request work that this service has no use for, left out: an access log line
# (formatted, then dropped at level "warning"), X-Forwarded-* handling (no handler reads the
# client address) and a "server: uvicorn" header: 7-105 us (median 25) of the ~300 us of CPU a
# request spends outside the funnel (bench/endpoint_overhead.py --http, BENCHMARKS.md)
SERVER_OPTIONS = {"log_level": "warning", "access_log": False, "proxy_headers": False,
                  "server_header": False}
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
                              host=host, port=port, **SERVER_OPTIONS)
    supervisor = _Supervisor(settings, _listener(host, port))
    try:
        supervisor.run()
    finally:
        supervisor.close()
        shutil.rmtree(shared, ignore_errors=True)


def _listener(host: str, port: int) -> socket.socket:
    """The server's socket, bound here, in the supervisor, so that a port in use is reported
    once (and the port chosen when ``port`` is 0)."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit this on Linux; without it every keep-alive response waits
    # ~40 ms for a delayed ACK (uvicorn's listener for workers leaves Nagle on: #3149)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        listener.bind((host, port))
    except OSError as err:
        listener.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {err.strerror}") from None
    return listener


class _Supervisor(Multiprocess):
    """uvicorn's supervisor (signals, health checks, a dead worker replaced) that also accepts
    the server's connections and hands each to the next worker that serves (see the module's
    docstring). A dead worker's channel is closed with it: connections handed to it and not yet
    taken are reset, as when a worker dies with connections in its socket's queue, and new ones
    go to the others until its replacement has loaded. Adding, removing or restarting workers by
    signal (SIGTTIN, SIGTTOU, SIGHUP) is not offered."""

    def __init__(self, config: uvicorn.Config, listener: socket.socket):
        super().__init__(config, [] if HANDED else [listener])
        self.listener = listener
        self.channels: list[socket.socket | None] = []  # the supervisor's end, per worker
        self.serving: set[socket.socket] = set()  # channels whose worker said it is ready
        self.accepting: threading.Thread | None = None
        self._turn = 0

    def _start(self) -> tuple[Process, socket.socket | None]:
        if not HANDED:
            process = Process(self.config, self.sockets)
            process.start()
            return process, None
        ours, theirs = socket.socketpair()
        process = Worker(self.config, [theirs])
        process.start()
        theirs.close()  # the worker holds its end: a dead worker's channel is closed
        return process, ours

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process, channel = self._start()
            self.processes.append(process)
            self.channels.append(channel)
        if HANDED:
            self.listener.listen(self.config.backlog)
            self.accepting = threading.Thread(target=self._hand_out, daemon=True)
            self.accepting.start()

    def _hand_out(self) -> None:
        """Accept connections and hand each to the next worker that serves, in turn."""
        while not self.should_exit.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError as err:
                if self.should_exit.is_set():  # close() shut the socket down
                    return
                log.warning("accepting a connection failed: %s", err)
                self.should_exit.wait(0.1)  # out of file descriptors, say: let some close
                continue
            with connection:  # the worker that takes it holds its own descriptor
                self._hand(connection)

    def _hand(self, connection: socket.socket) -> None:
        while not self.should_exit.is_set():
            self._hear_ready()
            for _ in range(len(self.channels)):
                channel = self.channels[self._turn % len(self.channels)]
                self._turn += 1
                if channel not in self.serving:
                    continue
                try:
                    socket.send_fds(channel, [b"c"], [connection.fileno()])
                    return
                except OSError:  # the worker died; its replacement gets a new channel
                    self.serving.discard(channel)
            self.should_exit.wait(0.05)  # no worker serves yet: the client waits

    def _hear_ready(self) -> None:
        """Note the workers that have said they serve."""
        for channel in self.channels:
            if channel is None or channel in self.serving:
                continue
            try:
                if channel.recv(16, socket.MSG_DONTWAIT):
                    self.serving.add(channel)
            except OSError:  # nothing said yet, or closed meanwhile by the main thread
                pass

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
            old = self.channels[index]
            self.processes[index], self.channels[index] = self._start()
            if old is not None:
                self.serving.discard(old)
                old.close()

    def close(self) -> None:
        """Stop accepting (a thread blocked in ``accept`` wakes only on ``shutdown``) and close
        the socket and the channels."""
        self.should_exit.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:  # not listening
            pass
        if self.accepting is not None:
            self.accepting.join(timeout=5)
        self.listener.close()
        for channel in self.channels:
            if channel is not None:
                channel.close()

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
