"""`recfunnel serve` as a real process on loopback: an acknowledged event survives SIGKILL, a
new artifact version is swapped in under load with no failed request, and several worker
processes serve one catalog, one version and one set of metrics."""

import os
import shutil
import signal
import sqlite3
import threading
import time

import httpx
import pytest

from server_processes import eventually, free_port, start


@pytest.fixture()
def served(tmp_path, small_funnel_dir):
    path = tmp_path / "served"
    shutil.copytree(small_funnel_dir, path)
    return path


def test_acknowledged_events_survive_sigkill(served):
    port = free_port()
    proc = start(served, port)
    acked, stop = [], threading.Event()

    def stream():
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            for n in range(100_000):
                if stop.is_set():
                    return
                event = {"user_id": str(1 + n % 50), "item_id": str(1 + n % 200),
                         "timestamp": 10**9 + n}
                try:
                    if client.post("/events", json=event).status_code == 201:
                        acked.append(event)
                except httpx.TransportError:
                    return  # the server is gone; whatever was in flight was never acknowledged

    writer = threading.Thread(target=stream)
    writer.start()
    while len(acked) < 200:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream, no chance to flush anything
    proc.wait()
    stop.set()
    writer.join()

    with sqlite3.connect(served / "store.sqlite") as db:
        stored = set(db.execute("SELECT timestamp FROM events WHERE timestamp >= ?", (10**9,)))
    missing = [e for e in acked if (e["timestamp"],) not in stored]
    assert len(acked) >= 200 and not missing

    proc = start(served, port)  # and the restarted server serves the users it knew
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/users/1/history?n=1")
        assert response.json()["items"]
        assert "server" not in response.headers  # uvicorn's per-request extras are off
    finally:
        proc.kill()
        proc.wait()


def test_new_version_swaps_in_without_a_failed_request(served, tmp_path):
    second = tmp_path / "second"
    shutil.copytree(served, second)
    port = free_port()
    proc = start(served, port)
    statuses, stop = [], threading.Event()

    def load():
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            while not stop.is_set():
                statuses.append(client.get("/users/3/recommendations?k=10").status_code)

    reader = threading.Thread(target=load)
    reader.start()
    try:
        time.sleep(0.5)
        answer = httpx.post(f"http://127.0.0.1:{port}/admin/reload",
                            json={"artifacts": str(second)}, timeout=60)
        assert answer.status_code == 200, answer.text
        time.sleep(0.5)
        stop.set()
        reader.join()
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["artifacts"] == str(second)
    finally:
        stop.set()
        proc.kill()
        proc.wait()
    assert len(statuses) > 20 and set(statuses) == {200}


def by_process(port, path, n=40):
    """``path``'s answer from each worker process: a new connection per request."""
    answers = {}
    for _ in range(n):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            answers[client.get("/health").json()["process"]] = client.get(path)
    return answers


def test_workers_share_the_catalog_the_version_and_the_metrics(served, tmp_path):
    second = shutil.copytree(served, tmp_path / "second")
    port = free_port()
    proc = start(served, port, workers=2)
    base = f"http://127.0.0.1:{port}"
    try:
        statuses = []

        def add(n):  # four clients at once, new connections: the workers race each other
            for item in range(900000 + n, 900008, 4):
                statuses.append(httpx.post(f"{base}/items", json={"item_id": str(item)},
                                           timeout=60).status_code)
        adders = [threading.Thread(target=add, args=(n,)) for n in range(4)]
        for t in adders:
            t.start()
        for t in adders:
            t.join()
        assert statuses == [201] * 8
        eventually(lambda: {a.json()["items"] for a in by_process(port, "/health").values()}
                   == {200 + 8})
        answers = by_process(port, "/items/900007/similar?k=3")
        assert len(answers) == 2 and {a.status_code for a in answers.values()} == {200}
        assert not any("server" in a.headers for a in answers.values())  # the workers' too

        assert httpx.post(f"{base}/events", json={"user_id": "1", "item_id": "900003"}
                          ).status_code == 201
        histories = by_process(port, "/users/1/history?n=1").values()
        assert {h.json()["items"][0]["item_id"] for h in histories} == {"900003"}

        metrics = httpx.get(f"{base}/metrics").text  # summed over both processes
        assert 'recfunnel_request_seconds_count{endpoint="/items",status="201"} 8.0' in metrics

        assert httpx.post(f"{base}/admin/reload", json={"artifacts": str(second)},
                          timeout=60).status_code == 200
        eventually(lambda: {a.json()["artifacts"] for a in by_process(port, "/health").values()}
                   == {str(second)})

        crashed = httpx.get(f"{base}/health").json()["process"]
        os.kill(crashed, signal.SIGKILL)  # uvicorn starts another: on the version now served

        def replaced():
            try:
                answers = by_process(port, "/health")
            except httpx.TransportError:  # a connection that waited on the dead worker's socket
                return False
            return (len(answers) == 2 and crashed not in answers
                    and {a.json()["artifacts"] for a in answers.values()} == {str(second)})
        eventually(replaced, seconds=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
