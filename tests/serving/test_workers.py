"""How `serve --workers` listens: the supervisor accepts and hands each connection to the next
worker that serves, a port in use is refused even when its server shares ports itself, and a
dead worker is replaced with a channel of its own."""

import socket
import time

import pytest
import uvicorn

from recfunnel.serving import workers
from recfunnel.serving.handoff import READY
from recfunnel.serving.workers import _listener, _Supervisor

handed = pytest.mark.skipif(not workers.HANDED, reason="no file descriptor passing")


class FakeWorker:  # uvicorn's worker process, without a process: its channel end kept
    started: list["FakeWorker"] = []

    def __init__(self, config, sockets):
        self.channel = sockets[0].dup()
        self.alive, self.pid, self.exitcode = True, len(self.started), -9
        self.started.append(self)

    def start(self):
        pass

    def is_alive(self, timeout):
        return self.alive

    def kill(self):
        self.channel.close()

    def join(self):
        pass

    def served(self) -> list[socket.socket]:
        """The connections handed to it so far."""
        self.channel.setblocking(False)
        taken = []
        while True:
            try:
                _, fds, _, _ = socket.recv_fds(self.channel, 16, 16)
            except BlockingIOError:
                return taken
            taken += [socket.socket(fileno=fd) for fd in fds]


@pytest.fixture
def supervisor(monkeypatch):
    FakeWorker.started = []
    monkeypatch.setattr(workers, "Worker", FakeWorker)
    listener = _listener("127.0.0.1", 0)
    supervisor = _Supervisor(uvicorn.Config("x:app", workers=2), listener)
    supervisor.init_processes()  # also starts accepting
    yield supervisor
    supervisor.close()
    assert not supervisor.accepting.is_alive()  # woken from accept() and gone
    for worker in FakeWorker.started:
        worker.channel.close()


def connect(supervisor, n):
    return [socket.create_connection(supervisor.listener.getsockname(), timeout=5)
            for _ in range(n)]


def echo(client: socket.socket, server_side: socket.socket) -> bool:
    """Whether ``server_side`` is the other end of ``client``."""
    client.sendall(b"ping")
    server_side.settimeout(5)
    return server_side.recv(4) == b"ping"


def handed_over(workers_: list[FakeWorker], n: int) -> list[list[socket.socket]]:
    """The connections handed to each of ``workers_``, once ``n`` have been in all."""
    taken: list[list[socket.socket]] = [[] for _ in workers_]
    deadline = time.monotonic() + 10
    while sum(map(len, taken)) < n and time.monotonic() < deadline:
        for mine, worker in zip(taken, workers_):
            mine += worker.served()
        time.sleep(0.01)
    return taken


@handed
def test_connections_go_to_the_workers_in_turn(supervisor):
    first, second = FakeWorker.started
    for worker in (first, second):
        worker.channel.send(READY)
    clients = connect(supervisor, 32)
    # on one socket shared by the workers 32 connections went 31 or 32 to one of them; with a
    # socket each, spread by the kernel, splits such as 13 + 19
    taken = handed_over([first, second], 32)
    assert [len(t) for t in taken] == [16, 16]
    assert all(echo(c, s) for c, s in zip(clients[0::2], taken[0]))  # each a client's own
    assert all(echo(c, s) for c, s in zip(clients[1::2], taken[1]))
    for s in clients + taken[0] + taken[1]:
        s.close()


@handed
def test_connections_wait_for_a_worker_that_serves_and_skip_a_dead_one(supervisor):
    first, second = FakeWorker.started
    clients = connect(supervisor, 1)
    time.sleep(0.2)
    assert first.served() == [] and second.served() == []  # neither has loaded its app yet
    second.channel.send(READY)
    taken = handed_over([first, second], 1)
    assert taken[0] == [] and echo(clients[0], taken[1][0])

    first.channel.send(READY)
    second.alive = False
    supervisor.keep_subprocess_alive()
    third = FakeWorker.started[2]
    assert supervisor.channels[1] not in supervisor.serving  # the replacement has not loaded
    clients += connect(supervisor, 4)
    taken = handed_over([first, third], 4)
    assert [len(t) for t in taken] == [4, 0]  # all to the one that serves
    third.channel.send(READY)
    clients += connect(supervisor, 4)
    taken = handed_over([first, third], 4)
    assert [len(t) for t in taken] == [2, 2]
    for s in clients + taken[0] + taken[1]:
        s.close()


def test_a_port_in_use_is_a_clear_error():
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):  # as a server that shares its port would
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(("127.0.0.1", 0))
    other.listen()
    try:
        with pytest.raises(SystemExit, match=r"cannot listen on 127\.0\.0\.1:\d+: Address already"):
            _listener("127.0.0.1", other.getsockname()[1])
    finally:
        other.close()
