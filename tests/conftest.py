from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from server_processes import free_port

from recfunnel.data.synth import SynthConfig, generate, write

SHARED_DATA = Path(os.environ.get("RECFUNNEL_DATA_DIR") or
                   Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    path = SHARED_DATA / "ml-100k"
    if not (path / "u.data").is_file():
        pytest.skip(f"real MovieLens-100K not found at {path} (set RECFUNNEL_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def ml1m_dir() -> Path:
    path = SHARED_DATA / "ml-1m"
    if not (path / "movies.dat").is_file():
        pytest.skip(f"real MovieLens-1M users/movies not found at {path}")
    return path


@pytest.fixture(scope="session")
def small_synth():
    """Small data with strong cluster structure: 300 users, 200 items, 6000 interactions."""
    return generate(SynthConfig(users=300, items=200, interactions=6000, clusters=8, seed=1))


@pytest.fixture(scope="session")
def small_ml1m_dir(tmp_path_factory, small_synth) -> Path:
    out = tmp_path_factory.mktemp("synth-ml1m")
    write(small_synth, out, "ml-1m")
    return out


@pytest.fixture(scope="session")
def small_funnel_dir(tmp_path_factory, small_ml1m_dir) -> Path:
    """A small two-tower funnel fit through the CLI: retrieval, ranking model, index, store, and
    re-ranking rules from a JSON file (MMR 0.5, no Horror)."""
    from typer.testing import CliRunner

    from recfunnel.cli import app

    out = tmp_path_factory.mktemp("funnel") / "tt"
    rules = out.parent / "rules.json"
    rules.write_text('{"mmr_weight": 0.5, "exclude_genres": ["Horror"]}')
    small = ["--param", "epochs=3", "--param", "dim=16", "--param", "hidden=32",
             "--param", "history_length=10"]
    result = CliRunner().invoke(app, ["fit", "--data", str(small_ml1m_dir), "--out", str(out),
                                      "--model", "two-tower", "--rerank", str(rules), *small])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """URL of a redis-server started for the tests: append-only file, fsync on every write."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (`apt-get install redis-server`; .ci/run does)")
    port, workdir = free_port(), tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)
