"""Real processes for the tests that need them: a free loopback port, `recfunnel serve`, and
waiting for what a server does in the background."""

import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(artifacts, port, workers=1):
    """`recfunnel serve` on ``port``, once each of its ``workers`` processes has answered (a
    new connection per request: the kernel hands each to any of them)."""
    proc = subprocess.Popen([sys.executable, "-m", "recfunnel", "serve", "--artifacts",
                             str(artifacts), "--port", str(port), "--workers", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, seen = time.time() + 90, set()
    while time.time() < deadline:
        try:
            seen.add(httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()["process"])
            if len(seen) == workers:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())
    proc.kill()
    raise AssertionError(f"{len(seen)} of {workers} server processes came up in 90 s")


def eventually(check, seconds=20, what="the condition"):
    """Until ``check()`` is true, or fail after ``seconds``."""
    deadline = time.time() + seconds
    while not check():
        assert time.time() < deadline, f"{what} did not happen in {seconds} s"
        time.sleep(0.1)
