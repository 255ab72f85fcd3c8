from __future__ import annotations

import os
from pathlib import Path

import pytest

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
