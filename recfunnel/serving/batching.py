"""Requests that arrive together are answered together.

A request's coroutine hands its work to a :class:`Batcher` and waits; the batcher runs on the
event loop's next turn, after every request already read off the sockets has joined it, and
answers them with one call. An idle server answers each request alone, as before; a busy one
reads several between two turns and pays less per request (``OnlineFunnel.recommend_many``:
0.94 ms each for two, 0.76 ms for four, against 1.14 ms alone on ML-100K: ``bench/serve_load.py
--batches``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


class Batcher(Generic[Job, Result]):
    """``answer`` turns a list of jobs into their results, in order; at most ``max_size`` jobs
    go into one call. When a call fails, its jobs are answered one by one, so one job's error
    reaches that job's caller alone."""

    def __init__(self, answer: Callable[[list[Job]], list[Result]], max_size: int = 16):
        self.answer, self.max_size = answer, max_size
        self._waiting: list[tuple[Job, asyncio.Future[Result]]] = []
        self._scheduled = False

    async def submit(self, job: Job) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((job, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run)
        return await future

    def _run(self) -> None:
        batch, self._waiting = self._waiting[:self.max_size], self._waiting[self.max_size:]
        self._scheduled = bool(self._waiting)
        if self._scheduled:
            asyncio.get_running_loop().call_soon(self._run)
        batch = [(job, future) for job, future in batch if not future.cancelled()]
        if not batch:
            return
        try:
            results = self.answer([job for job, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            for job, future in batch:
                try:
                    _settle(future, self.answer([job])[0])
                except Exception as alone:
                    _settle(future, error=alone)
            return
        for (_, future), result in zip(batch, results):
            _settle(future, result)


def _settle(future: asyncio.Future, result: object = None,
            error: BaseException | None = None) -> None:
    """The result or the error, unless the caller has gone (cancelled)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
