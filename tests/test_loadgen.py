"""bench/loadgen.c, the open-loop client of bench/serve_load.py: statuses and latencies per
request, latency counted from when a request was due (a slow server cannot hide its queue), split
into the client's delays and the server's part, and the server process behind each
connection."""

import json
import os
import shutil
import signal
import sys
import sysconfig
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from serve_load import CompiledClient  # noqa: E402

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or
    shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None,
    reason="needs Linux and a C compiler")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the recfunnel server
    delay = 0.0

    def do_GET(self):
        time.sleep(self.delay)
        known = self.path.startswith("/users/known/")
        body = json.dumps({"process": 4242} if self.path == "/health" else {}).encode()
        self.send_response(200 if known or self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    Handler.delay = 0.0


def test_each_request_gets_its_status_and_each_connection_its_process(server, tmp_path):
    client = CompiledClient(server.server_address[1], 4, np.array(["known", "unknown"]), tmp_path)
    result, processes, cpu = client.open_loop(rate=200, seconds=0.5, warmup=0.1)
    assert result["sent"] == 100 and result["ok"] == 50  # the paths are used in turn
    assert np.isfinite(result["latencies"]).all() and result["p50"] > 0
    assert processes == [4242] * 4 and cpu >= 0


def test_latency_counts_from_when_the_request_was_due(server, tmp_path):
    Handler.delay = 0.02  # 50 requests/s at most on the one connection, asked for 100
    client = CompiledClient(server.server_address[1], 1, np.array(["known"]), tmp_path)
    result, _, _ = client.open_loop(rate=100, seconds=0.3, warmup=0.0)
    latencies = result["latencies"]
    assert result["ok"] == 30
    # request i is due at 10 ms * i and answered near 20 ms * (i + 1): the queue shows
    assert latencies[-1] > 0.2 and latencies[-1] > latencies[0] + 0.15


def test_latency_splits_into_the_clients_delays_and_the_servers_part(server, tmp_path):
    Handler.delay = 0.03  # the server's part: at least 30 ms a request
    client = CompiledClient(server.server_address[1], 4, np.array(["known"]), tmp_path)
    result, _, _ = client.open_loop(rate=50, seconds=0.4, warmup=0.0)
    written, arrived, latencies = result["written"], result["arrived"], result["latencies"]
    assert result["ok"] == 20
    # written after it was due (no connection busy: only the client's delay), answered at
    # least 30 ms after it was written, read after that; neither of the client's parts holds
    # the server's 30 ms (the kernel's timestamps and the client's clock: allow them 0.1 ms)
    assert (written >= 0).all() and (written < 0.02).all()
    assert (arrived - written >= 0.0299).all()
    assert (latencies - arrived >= -1e-4).all() and (latencies - arrived < 0.02).all()


def test_answers_that_wait_for_a_stopped_client_are_counted_from_their_arrival(server, tmp_path):
    Handler.delay = 0.03
    client = CompiledClient(server.server_address[1], 4, np.array(["known"]), tmp_path)

    def pause_the_client() -> None:  # as when the client waits for a CPU the server holds
        time.sleep(0.3)
        binary = str(client.binary).encode()
        pid = next(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                   and (p / "cmdline").read_bytes().startswith(binary))
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.1)
        os.kill(pid, signal.SIGCONT)

    pausing = threading.Thread(target=pause_the_client)
    pausing.start()
    result, _, _ = client.open_loop(rate=50, seconds=0.6, warmup=0.0)
    pausing.join()
    written, arrived, latencies = result["written"], result["arrived"], result["latencies"]
    assert result["ok"] == 30
    # the answers that came in while it was stopped were read late, and that is the client's
    assert (latencies - arrived > 0.04).any()
    assert (arrived - written >= 0.0299).all()
