"""How `serve --workers` listens: one socket per worker that the kernel spreads connections over,
a port in use refused even when its server shares ports itself, and a dead worker replaced on a
socket of its own."""

import socket
import sys
import time

import pytest
import uvicorn

from recfunnel.serving import workers
from recfunnel.serving.workers import _listeners, _Supervisor

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing")


@linux
def test_connections_opened_one_after_another_spread_over_the_workers():
    listeners = _listeners("127.0.0.1", 0, 2)
    try:
        assert len({s.getsockname() for s in listeners}) == 1  # one port
        for s in listeners:
            s.listen()
            s.setblocking(False)
        # on one shared socket, connections opened apart went 31 or 32 of 32 to one worker
        clients = []
        for _ in range(32):
            clients.append(socket.create_connection(listeners[0].getsockname(), timeout=5))
            time.sleep(0.002)
        accepted = [0, 0]
        for i, s in enumerate(listeners):
            while True:
                try:
                    s.accept()[0].close()
                except BlockingIOError:
                    break
                accepted[i] += 1
        assert sum(accepted) == 32 and min(accepted) >= 6, accepted
    finally:
        for s in listeners + clients:
            s.close()


def test_a_port_in_use_is_a_clear_error():
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):  # as another recfunnel server's socket: it would share
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(("127.0.0.1", 0))
    other.listen()
    try:
        with pytest.raises(SystemExit, match=r"cannot listen on 127\.0\.0\.1:\d+: Address already"):
            _listeners("127.0.0.1", other.getsockname()[1], 2)
    finally:
        other.close()


@linux
def test_a_dead_worker_is_replaced_on_a_new_socket_of_its_own(monkeypatch):
    started = []

    class FakeProcess:  # uvicorn's worker process, without a process
        def __init__(self, config, sockets):
            self.sockets, self.alive, self.pid, self.exitcode = sockets, True, len(started), -9
            started.append(self)

        def start(self):
            pass

        def is_alive(self, timeout):
            return self.alive

        def kill(self):
            pass

        def join(self):
            pass

    monkeypatch.setattr(workers, "Process", FakeProcess)
    listeners = _listeners("127.0.0.1", 0, 2)
    port = listeners[0].getsockname()
    supervisor = _Supervisor(uvicorn.Config("x:app", workers=2), listeners)
    try:
        supervisor.init_processes()
        assert [p.sockets for p in started] == [[listeners[0]], [listeners[1]]]
        first, second = listeners
        started[1].alive = False
        supervisor.keep_subprocess_alive()
        assert len(started) == 3 and supervisor.processes == [started[0], started[2]]
        assert started[2].sockets == [listeners[1]] and listeners[1] is not second
        assert second.fileno() == -1  # closed: the kernel sends new connections elsewhere
        assert listeners[1].getsockname() == port and listeners[0] is first
    finally:
        for s in listeners:
            s.close()
