"""Latency of the recommendations endpoint: in-process funnel, then `recfunnel serve` over
loopback, one request at a time and under an open-loop load (requests sent on a fixed schedule;
latency counted from the moment each request was due, so a slow server cannot hide its queue).

    python bench/serve_load.py --artifacts artifacts/tt --rates 50,100,200,300,400 --seconds 5
    python bench/serve_load.py --artifacts artifacts/tt --workers 2 --rates 200,400,600 --seconds 5
    python bench/serve_load.py --artifacts artifacts/tt --workers 2 --rates 1000 --connections 32

The load generator runs on the same machine as the server and takes CPU from it; on the 2-core
reference machine that is part of the measurement. The open loop is therefore sent by
``bench/loadgen.c``, compiled on the spot as wrk would be (about 0.10 ms of CPU a request, nearly
all of it the kernel's loopback TCP, against 0.14-0.20 ms for this script's own asyncio client,
which ``--client python`` keeps, and which is used when no C compiler is found). After each
rate it prints how many of its connections each server process holds (a keep-alive connection
stays with the process that accepted it). ``--timeline`` shows when the slow requests came, with
the server's CPU per request at the time (read from ``/proc``), and how much of the latency was
the C client's own delay (its kernel's receive timestamps): on two shared cores the client is
not always running when an answer arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

try:  # the client's own event loop takes less of the CPU it shares with the server
    from uvloop import run
except ImportError:  # Windows
    from asyncio import run

from recfunnel.serving.service import Service, StoreConfig


def in_process(artifacts: Path, requests: int, seed: int, batches: list[int],
               idle_gaps: list[float], sweep_mb: float = 0.0) -> None:
    service = Service.load(artifacts, StoreConfig())
    users = np.random.default_rng(seed).choice(service.system.dataset.users["user_id"].astype(str),
                                               requests + 100)
    for user in users[:100]:
        service.recommend(user, 10, {})
    total, stages = timed(service, users[100:])
    print(f"in-process funnel, {requests} requests, one thread:")
    for name, values in [("total", total), *stages.items()]:
        print(f"  {name:10s} p50 {np.percentile(values, 50) * 1e3:.3f} ms  "
              f"p99 {np.percentile(values, 99) * 1e3:.3f} ms")
    for size in batches:  # what the server pays when requests arrive together
        jobs = [(user, 10, {}) for user in users[100:]]
        start = time.perf_counter()
        for lo in range(0, len(jobs), size):
            service.recommend_many(jobs[lo:lo + size])
        print(f"  batches of {size}: {(time.perf_counter() - start) / len(jobs) * 1e3:.3f} ms "
              "a request")
    for gap in idle_gaps:  # requests one by one, as a server that is not saturated gets them
        times, _ = timed(service, users[100:], lambda: time.sleep(gap / 1e3))
        print(f"  {gap:g} ms idle before each request: p50 {np.percentile(times, 50) * 1e3:.3f} "
              f"ms  p99 {np.percentile(times, 99) * 1e3:.3f} ms")
    if sweep_mb:  # every request finding the CPU's caches holding other data
        junk = np.ones(int(sweep_mb * 2**20) // 8)
        times, by_stage = timed(service, users[100:], junk.sum)
        print(f"  {sweep_mb:g} MB swept through the caches before each request: p50 "
              f"{np.percentile(times, 50) * 1e3:.3f} ms ("
              + ", ".join(f"{name} {np.percentile(values, 50) * 1e3:.3f}"
                          for name, values in by_stage.items()) + ")")
    service.close()


def timed(service: Service, users: np.ndarray, before: Callable[[], object] | None = None
          ) -> tuple[list[float], dict[str, list[float]]]:
    """Seconds per request for ``users`` one by one, in total and by stage; ``before`` runs
    untimed before each request."""
    total, stages = [], {}
    for user in users:
        if before is not None:
            before()
        start = time.perf_counter()
        answer = service.recommend(user, 10, {})
        total.append(time.perf_counter() - start)
        for stage, seconds in answer.seconds.items():
            stages.setdefault(stage, []).append(seconds)
    return total, stages


class Connections:
    """Keep-alive HTTP/1.1 connections to the server, each carrying one request at a time: by
    default taken in turn (the one idle longest first, as many independent clients would), with
    ``newest`` the most recently used first. Without a ``limit`` a new one opens when all are
    busy; with one, ``limit`` connections open at once up front (as wrk does) and a request
    waits for one of them (its wait counted as latency). The client shares the two cores with
    the server, so it spends as little CPU as it can: requests are written and responses parsed
    as bytes by an asyncio protocol (a full HTTP client library, httpx, spends more CPU per
    request than the server's own funnel, which would be measured as server latency)."""

    def __init__(self, port: int, newest: bool = False, limit: int | None = None):
        self.port, self.newest, self.limit = port, newest, limit
        self.idle: deque[_Connection] = deque()
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.opened = 0

    async def open(self) -> None:
        """Open the ``limit`` connections together."""
        if self.limit:
            self.idle.extend(await asyncio.gather(*(self._connect()
                                                    for _ in range(self.limit - self.opened))))

    async def get(self, path: str) -> int:
        """The response's status code, after reading its whole body."""
        connection = await self._take()
        try:
            return await connection.get(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        finally:
            self._give_back(connection)

    async def processes(self) -> list[int]:
        """The server process behind each connection (its ``/health``), one entry per
        connection."""
        connections = [c for c in self.idle if not c.transport.is_closing()]
        for connection in connections:
            await connection.get(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        return [json.loads(c.body)["process"] for c in connections]

    async def _take(self) -> _Connection:
        while True:
            while self.idle:
                connection = self.idle.pop() if self.newest else self.idle.popleft()
                if not connection.transport.is_closing():  # not closed by the server
                    return connection
                self.opened -= 1
            if self.limit is None or self.opened < self.limit:
                return await self._connect()
            self.waiting.append(turn := asyncio.get_running_loop().create_future())
            await turn

    def _give_back(self, connection: _Connection) -> None:
        if connection.transport.is_closing():
            self.opened -= 1
        else:
            self.idle.append(connection)
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                break

    async def _connect(self) -> _Connection:
        self.opened += 1
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                _Connection, "127.0.0.1", self.port)
        except OSError:
            self.opened -= 1
            raise
        return connection

    def close(self) -> None:
        for connection in self.idle:
            connection.transport.close()


class _Connection(asyncio.Protocol):
    """One connection: a request written, its response's status once the whole body is in."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.received = bytearray()
        self.body = b""
        self.waiting: asyncio.Future[int] | None = None

    def get(self, request: bytes) -> asyncio.Future[int]:
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiting

    def data_received(self, data: bytes) -> None:
        self.received += data
        end = self.received.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.received[:end]).lower()
        at = head.find(b"content-length:")
        if at < 0:
            self._fail(ConnectionError("response without Content-Length"))
            return
        line_end = head.find(b"\r\n", at)
        length = int(head[at + 15:line_end if line_end >= 0 else len(head)])
        if len(self.received) < end + 4 + length:
            return
        self.body = bytes(self.received[end + 4:end + 4 + length])
        del self.received[:end + 4 + length]
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("the server closed the connection"))

    def _fail(self, error: Exception) -> None:
        self.transport.close()
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(error)


async def open_loop(connections: Connections, users: np.ndarray, rate: float,
                    seconds: float, warmup: float = 0.0) -> dict:
    """Requests sent at ``rate`` per second whether or not earlier ones were answered, each
    started when it is due (not all created up front, which would itself delay the first
    ones); the first ``warmup`` seconds are not counted: the connection pool grows to what the
    rate needs, each new connection accepted by whichever worker process is free then."""
    skip, n = int(rate * warmup), int(rate * (warmup + seconds))
    latencies = np.full(n, np.nan)
    statuses = np.zeros(n, dtype=np.int64)

    async def one(i: int, due: float) -> None:
        try:
            statuses[i] = await connections.get(
                f"/users/{users[i % len(users)]}/recommendations?k=10")
        except OSError:
            statuses[i] = -1
        latencies[i] = time.perf_counter() - due

    start = time.perf_counter() + 0.1
    running = []
    for i in range(n):
        due = start + i / rate
        if due > time.perf_counter():
            await asyncio.sleep(due - time.perf_counter())
        running.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*running)
    elapsed = time.perf_counter() - (start + warmup)
    return summary(rate, latencies[skip:], statuses[skip:], elapsed, start + warmup)


async def one_at_a_time(connections: Connections, users: np.ndarray, n: int) -> np.ndarray:
    """Latencies (seconds) of ``n`` requests sent one after another on one connection."""
    latencies = []
    for user in users[np.arange(n) % len(users)]:
        start = time.perf_counter()
        status = await connections.get(f"/users/{user}/recommendations?k=10")
        if status != 200:
            raise SystemExit(f"the server answered {status} for user {user}")
        latencies.append(time.perf_counter() - start)
    return np.array(latencies)


class CompiledClient:
    """The open loop sent by ``bench/loadgen.c`` (compiled into ``folder``) over ``limit``
    connections opened up front; its results read as :func:`open_loop` returns them."""

    def __init__(self, port: int, limit: int, users: np.ndarray, folder: Path):
        self.port, self.limit = port, limit
        self.binary, self.paths = folder / "loadgen", folder / "paths.txt"
        compiler = sysconfig.get_config_var("CC") or "cc"
        subprocess.run([*compiler.split(), "-O2", "-o", str(self.binary),
                        str(Path(__file__).with_name("loadgen.c")), "-lm"], check=True)
        self.paths.write_text("".join(f"/users/{user}/recommendations?k=10\n" for user in users))

    def open_loop(self, rate: float, seconds: float, warmup: float
                  ) -> tuple[dict, list[int], float]:
        """One rate, as :func:`open_loop`; also the server process behind each connection and
        the CPU seconds the client took."""
        out = self.paths.with_name("latencies.bin")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([str(self.binary), str(self.port), str(rate), str(warmup + seconds),
                               str(self.limit), str(self.paths), str(out)],
                              capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode:
            raise SystemExit(f"loadgen failed: {done.stderr.strip()}")
        n = int(rate * (warmup + seconds))
        raw = np.fromfile(out, dtype=np.float64)
        latencies, statuses, written, arrived = raw[:4 * n].reshape(4, n)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        skip = int(rate * warmup)
        # the last answer counted, in seconds after the counted requests began to be due
        elapsed = np.nanmax(np.arange(skip, n) / rate + latencies[skip:]) - warmup
        result = summary(rate, latencies[skip:], statuses[skip:].view(np.int64), elapsed,
                         raw[4 * n] + warmup)
        result.update(written=written[skip:], arrived=arrived[skip:])
        return result, [int(p) for p in done.stdout.split()], cpu


def summary(rate: float, latencies: np.ndarray, statuses: np.ndarray, elapsed: float,
            start: float) -> dict:
    """A rate's counted requests: latencies (seconds), how many were sent and answered 200,
    the throughput over ``elapsed`` seconds, p50 and p99 (ms) of those answered, and when the
    first was due (``time.perf_counter`` seconds)."""
    ok = statuses == 200
    return {"rate": rate, "latencies": latencies, "statuses": statuses, "start": start,
            "sent": len(latencies), "ok": int(ok.sum()), "throughput": ok.sum() / elapsed,
            "p50": np.percentile(latencies[ok], 50) * 1e3 if ok.any() else np.nan,
            "p99": np.percentile(latencies[ok], 99) * 1e3 if ok.any() else np.nan}


def stage_seconds(port: int) -> tuple[dict[str, float], float]:
    """The funnel's time so far inside the server by stage, all processes together, and the
    number of requests it was counted over (from ``/metrics``)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    spent: dict[str, float] = {}
    counted = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "recfunnel_stage_seconds":
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage")
            if sample.name.endswith("_sum"):
                spent[stage] = spent.get(stage, 0.0) + sample.value
            elif sample.name.endswith("_count") and stage == "store":
                counted += sample.value
    return spent, counted


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux: NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(port: int, users: np.ndarray, sequential: int, rates: list[float],
               seconds: float, warmup: float, workers: list[int], newest: bool,
               limit: int | None, timeline: bool = False,
               compiled: CompiledClient | None = None) -> None:
    """One request at a time, then each rate in open loop: over one pool of connections, or
    with ``compiled`` over its own (then ``limit`` sizes that one, and the asyncio pool, for the
    warm-up and the one-at-a-time part, opens connections as they are needed)."""
    connections = Connections(port, newest, None if compiled else limit)
    # the client's own garbage collection would stop every request in flight for tens of
    # milliseconds (its thousands of tasks), and the pause be counted as server latency
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        await connections.open()
        await open_loop(connections, users, 50, 2)  # warm-up
        times = await one_at_a_time(connections, users, sequential)
        print(f"\nHTTP, one request at a time on one connection, {len(times)} requests: "
              f"p50 {np.percentile(times, 50) * 1e3:.3f} ms  "
              f"p99 {np.percentile(times, 99) * 1e3:.3f} ms")
        pool = (f"{compiled.limit} connections opened at once by bench/loadgen.c" if compiled
                else f"{limit} connections opened at once" if limit
                else "connections opened on demand")
        print(f"\nHTTP, open loop, k=10, {len(workers)} server process(es), {pool}, {seconds:g} "
              f"s per rate counted after {warmup:g} s at that rate; CPU per request over both, "
              "the mean time of the funnel call that answered a request, as the server timed "
              "it (a batch's when requests were answered together; wall clock: a process "
              "waiting for a core counts), the connections after the "
              "rate, by server process; CPU for this client:")
        print("| offered req/s | sent | ok | achieved req/s | p50 ms | p99 ms | server CPU ms "
              "| funnel in the server ms | connections | client CPU ms |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        by_stage = []
        for rate in rates:
            before, mine = [cpu_seconds(w) for w in workers], time.process_time()
            stages_before, counted_before = stage_seconds(port)
            with CpuSamples(workers if timeline else []) as cpu:
                if compiled:
                    r, behind, client = compiled.open_loop(rate, seconds, warmup)
                else:
                    r = await open_loop(connections, users, rate, seconds, warmup)
                    client = time.process_time() - mine
                    behind = await connections.processes()
            sent = rate * (seconds + warmup) / 1e3
            server = " + ".join(f"{(cpu_seconds(w) - b) / sent:.2f}"
                                for w, b in zip(workers, before))
            client /= sent
            split = " + ".join(str(behind.count(w)) for w in workers)
            stages, counted = stage_seconds(port)
            answered = (counted - counted_before) or float("nan")  # none: NaN, not a crash
            per_request = {stage: (spent - stages_before.get(stage, 0.0)) * 1e3 / answered
                           for stage, spent in stages.items()}
            by_stage.append(f"{rate:g} req/s: " + ", ".join(
                f"{stage} {ms:.3f}" for stage, ms in per_request.items()))
            print(f"| {r['rate']:.0f} | {r['sent']} | {r['ok']} | {r['throughput']:.0f} | "
                  f"{r['p50']:.2f} | {r['p99']:.2f} | {server} | "
                  f"{sum(per_request.values()):.2f} | {split} | {client:.2f} |", flush=True)
            if timeline:
                print_timeline(r, seconds, cpu)
        if by_stage:
            print("\nThe funnel in the server by stage, ms a request: " + "; ".join(by_stage))
    finally:
        gc.enable()
        connections.close()


class CpuSamples:
    """The CPU time of some processes, all together, read from ``/proc/PID/schedstat`` every
    10 ms by a thread while the ``with`` block runs (none where Linux's file is missing). In
    nanoseconds there, where ``/proc/PID/stat`` (:func:`cpu_seconds`, enough for a whole rate)
    counts in 10 ms ticks, a tenth of a 100 ms window."""

    def __init__(self, pids: list[int]):
        self.files = [Path(f"/proc/{pid}/schedstat") for pid in pids]
        self.times: list[float] = []
        self.seconds: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> CpuSamples:
        if self.files:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            try:
                spent = sum(int(f.read_text().split()[0]) for f in self.files) / 1e9
            except (OSError, IndexError, ValueError):
                return
            self.times.append(time.perf_counter())
            self.seconds.append(spent)

    def between(self, edges: np.ndarray) -> np.ndarray | None:
        """CPU seconds in each interval between consecutive ``edges`` (``time.perf_counter``
        seconds); None without samples over them."""
        if len(self.times) < 2 or self.times[0] > edges[0] or self.times[-1] < edges[-1]:
            return None
        return np.diff(np.interp(edges, self.times, self.seconds))


def print_timeline(r: dict, seconds: float, cpu: CpuSamples) -> None:
    """Where one rate's slow requests (over 5 ms) were: per 100 ms window of when they were
    due, with the server's CPU per request answered in each window (do the slow ones come
    with dearer requests, or with the same requests waiting?); and, from the C client, the part
    of the latency that is the client's own delay."""
    rate, latencies = r["rate"], r["latencies"]
    late = np.flatnonzero(latencies > 0.005)
    windows = np.bincount(late * 10 // int(rate), minlength=int(seconds * 10))
    print(f"requests over 5 ms per 100 ms window at {rate:g} req/s: "
          f"{' '.join(map(str, windows))}")
    edges = r["start"] + np.arange(len(windows) + 1) / 10
    answered_at = (r["start"] + np.arange(len(latencies)) / rate + latencies)[
        np.isfinite(latencies)]
    answered = np.histogram(answered_at, edges)[0]
    spent = cpu.between(edges)
    if spent is not None:
        print("the server's CPU per request answered, ms, per 100 ms window: "
              + " ".join(f"{v:.2f}" for v in spent * 1e3 / np.maximum(answered, 1)))
        slow = windows >= 5
        parts = [f"{label} {spent[m].sum() * 1e3 / max(answered[m].sum(), 1):.2f} ms a request"
                 for label, m in ((f"in the {slow.sum()} windows with 5 or more over 5 ms", slow),
                                  ("in the others", ~slow)) if m.any()]
        print("the server's CPU " + "; ".join(parts))
    if "written" in r:  # the C client's own timestamps
        ok = r["statuses"] == 200
        written, arrived = r["written"][ok], r["arrived"][ok]

        def spread(values: np.ndarray) -> str:
            return f"{np.percentile(values, 50) * 1e3:.2f}/{np.percentile(values, 99) * 1e3:.2f}"

        print("the latency's parts, ms p50/p99: due to written (the client's delay, or a "
              f"wait for a free connection) {spread(written)}; written to arrived at the "
              f"client's socket (the server's part) {spread(arrived - written)}; arrived to "
              f"read (the client's delay) {spread(latencies[ok] - arrived)}; the latency "
              f"counted at arrival {spread(arrived)}")
    sys.stdout.flush()


def wait_for(port: int, workers: int, seconds: float = 60.0) -> list[int]:
    """The process ids of the server's ``workers`` processes, once each has answered (a new
    connection per call: the kernel hands it to any of them)."""
    deadline, seen = time.time() + seconds, set()
    while time.time() < deadline:
        try:
            seen.add(httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()["process"])
            if len(seen) == workers:
                return sorted(seen)
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{len(seen)} of {workers} server processes answered on port {port} "
                     f"within {seconds:.0f} s")


def compiled_client(args: argparse.Namespace, users: np.ndarray,
                    folder: Path) -> CompiledClient | None:
    """The C client that ``--client`` asks for, or None for the asyncio one."""
    if args.client == "python":
        return None
    try:
        return CompiledClient(args.port, args.connections or 32, users, folder)
    except (OSError, subprocess.CalledProcessError) as err:
        if args.client == "c":
            raise SystemExit(f"cannot compile bench/loadgen.c: {err}") from None
        print(f"bench/loadgen.c not compiled ({err}): the asyncio client sends the load, and "
              "its CPU is the server's loss", file=sys.stderr)
        return None


def _cpus(listed: str) -> set[int]:
    return {int(cpu) for cpu in listed.split(",") if cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--rates", default="50,100,200",
                        help="requests per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--in-process-requests", type=int, default=2000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="server processes (serve --workers)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds at each rate before the counted ones")
    parser.add_argument("--batches", default="1,2,4",
                        help="in process, also the mean cost of requests answered N at a time")
    parser.add_argument("--reuse", choices=("oldest", "newest"), default="oldest",
                        help="which idle connection a request takes: the one idle longest, or "
                             "the most recently used (as urllib3's pool)")
    parser.add_argument("--idle-gaps", default="",
                        help="in process, also the latency of requests each after this many "
                             "milliseconds idle, comma-separated")
    parser.add_argument("--sweep-mb", type=float, default=0.0,
                        help="in process, also the latency of requests each after this many MB "
                             "were read through the CPU's caches (none: 0)")
    parser.add_argument("--connections", type=int, default=None,
                        help="a fixed pool of this many connections, opened at once before the "
                             "load (default: a pool that grows while every connection is busy)")
    parser.add_argument("--client", choices=("auto", "c", "python"), default="auto",
                        help="what sends the open loop: bench/loadgen.c (with --connections, "
                             "default 32), this script's asyncio client, or the C one when a "
                             "compiler is found")
    parser.add_argument("--server-cpus", default="",
                        help="CPUs the server's processes run on, comma-separated (as taskset -c; "
                             "Linux): on a machine with more cores, the server on two of them and "
                             "the client on others")
    parser.add_argument("--client-cpus", default="",
                        help="CPUs the load generator runs on once the in-process part is done")
    parser.add_argument("--timeline", action="store_true",
                        help="after each rate: how many requests took over 5 ms in each 100 ms "
                        "window, the server's CPU per request in each, and (C client) how much "
                        "of the latency was the client's own delay")
    parser.add_argument("--no-http", action="store_true",
                        help="time the in-process funnel only (no server, no load)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        served = Path(tmp) / "served"  # events and reads must not touch the user's artifact
        shutil.copytree(args.artifacts, served)
        in_process(served, args.in_process_requests, args.seed,
                   [int(b) for b in args.batches.split(",") if b],
                   [float(g) for g in args.idle_gaps.split(",") if g], args.sweep_mb)
        if args.no_http:
            return
        server_cpus, client_cpus = (_cpus(c) for c in (args.server_cpus, args.client_cpus))
        if client_cpus:
            os.sched_setaffinity(0, client_cpus)  # the C client inherits it
        server = subprocess.Popen([sys.executable, "-m", "recfunnel", "serve", "--artifacts",
                                   str(served), "--port", str(args.port),
                                   "--workers", str(args.workers)],
                                  preexec_fn=(lambda: os.sched_setaffinity(0, server_cpus))
                                  if server_cpus else None)
        try:
            processes = wait_for(args.port, args.workers)
            known = pd.read_parquet(served / "users.parquet")["user_id"].astype(str).to_numpy()
            users = np.random.default_rng(args.seed).permutation(known)
            compiled = compiled_client(args, users, Path(tmp))
            run(load(args.port, users, args.in_process_requests,
                     [float(r) for r in args.rates.split(",")], args.seconds, args.warmup,
                     processes, args.reuse == "newest", args.connections, args.timeline,
                     compiled))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
