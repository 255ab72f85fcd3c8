"""A worker of ``serve --workers`` that serves the connections its supervisor accepted and handed
to it (``recfunnel.serving.workers``). Kept apart from that module, with light imports: the
worker process unpickles this class first and answers the supervisor's health checks only after,
and a worker silent for 5 s is killed as hung (importing the app's modules takes 3 s on the
reference machine, more on a cold start with the cores busy)."""

from __future__ import annotations

import asyncio
import functools
import socket

import uvicorn
from uvicorn.supervisors.multiprocess import Process

HANDED = hasattr(socket, "send_fds")  # connections handed to the workers by the supervisor
READY = b"r"  # what a worker says on its channel once it serves


class Worker(Process):
    """A worker process that serves the connections handed to it over a channel (the one socket
    uvicorn passes it) instead of accepting its own."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = _HandedServer(self.config)
        return self._server

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # in the worker
        self.server.channel = sockets[0]
        super().target([])  # no listening socket of its own


class _HandedServer(uvicorn.Server):
    channel: socket.socket

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        if self.should_exit:
            return
        config = self.config
        # the protocol uvicorn's own listeners make, for each connection handed over
        protocol = functools.partial(config.http_protocol_class, config=config,
                                     server_state=self.server_state,
                                     app_state=self.lifespan.state)
        loop = asyncio.get_running_loop()
        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), self._take, loop, protocol)
        self.channel.send(READY)

    def _take(self, loop: asyncio.AbstractEventLoop, protocol: functools.partial) -> None:
        try:
            message, descriptors, _, _ = socket.recv_fds(self.channel, 64, 64)
        except BlockingIOError:
            return
        if not message:  # the supervisor is gone
            loop.remove_reader(self.channel.fileno())
            self.should_exit = True
            return
        for descriptor in descriptors:
            loop.create_task(loop.connect_accepted_socket(
                protocol, socket.socket(fileno=descriptor)))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets)
