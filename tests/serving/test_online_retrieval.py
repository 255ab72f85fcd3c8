"""The online path (store -> user tower -> index) against the batch path used in training."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from recfunnel.artifacts import add_items, load_system, save_system
from recfunnel.cli import app
from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out
from recfunnel.errors import RecfunnelError
from recfunnel.pipeline import select_and_fit
from recfunnel.retrieval.topk import rank_users
from recfunnel.retrieval.two_tower_recommender import TwoTower
from recfunnel.serving.retrieval import OnlineRetriever, single_thread
from recfunnel.store.sqlite_store import SQLiteStore

FAST = dict(epochs=4, batch_size=256, dim=32, hidden=64, patience=4)


@pytest.fixture(scope="module")
def system_dir(small_ml1m_dir, tmp_path_factory):
    dataset = load(small_ml1m_dir)
    split = temporal_leave_one_out(dataset.interactions)
    fitted = select_and_fit(TwoTower, dataset, split, grid={k: [v] for k, v in FAST.items()})
    out = tmp_path_factory.mktemp("system") / "tt"
    return save_system(out, dataset, fitted.history, split.test, fitted.model, {})


def retriever(system):
    return OnlineRetriever.of(system, SQLiteStore(system.store_path))


def test_fit_writes_an_index_with_measured_recall(system_dir):
    system = load_system(system_dir)
    info = system.manifest["index"]
    assert info["config"]["kind"] == "flat" and info["recall@100"] == 1.0
    assert system.index.size == system.dataset.n_items


def test_online_user_vector_equals_the_training_path(system_dir):
    """No training/serving skew: store-fed single requests give the batch path's vectors."""
    system = load_system(system_dir)
    online = retriever(system)
    users = np.arange(0, system.dataset.n_users, 17)
    with torch.inference_mode():
        batch = system.retrieval.user_vectors(users, system.history).numpy()
    live = np.stack([online.user_vector(int(u))[0] for u in users])
    assert np.allclose(live, batch, atol=1e-5)


def test_ann_candidates_match_exact_top_k_and_skip_seen(system_dir):
    system = load_system(system_dir)
    online = retriever(system)
    user = 3
    ids, _ = online.ann(user, 20)
    exact, _ = rank_users(lambda b: system.retrieval.score(b, system.history), np.array([user]),
                          system.history.matrix, 20)
    assert ids.tolist() == exact[0].tolist()
    merged = online.retrieve(user, 100)
    assert len(merged.items) == 100
    assert not set(merged.items.tolist()) & set(system.history.matrix[user].indices.tolist())


def test_batch_retrieval_stage_lists_what_a_live_request_gets(system_dir):
    """evaluate and export score the candidates a live request gets: every source, merged."""
    system = load_system(system_dir)
    online = retriever(system)
    users = np.arange(30)
    items, _ = system.recommend(users, 100)
    for user in users:
        live = online.retrieve(int(user), 100)
        assert items[user].tolist() == live.items.tolist()
        sources = set(live.sources.tolist())
        assert len(sources) >= 3  # not the two-tower list alone


def test_added_item_is_retrieved_for_a_user_of_its_genre(system_dir, tmp_path):
    system_dir = Path(shutil.copytree(system_dir, tmp_path / "copy"))
    system = load_system(system_dir)
    genres = system.dataset.items["genres"]
    # the user whose history is most concentrated on one genre
    history = system.history
    best = max(range(system.dataset.n_users), key=lambda u: max(
        pd.Series([g for i in history.matrix[u].indices for g in genres[i]]).value_counts(
            normalize=True).tolist() or [0]))
    favourite = pd.Series([g for i in history.matrix[best].indices for g in genres[i]]).mode()[0]
    typical = system.dataset.items[genres.map(lambda gs: favourite in gs)].iloc[0]
    with pytest.raises(RecfunnelError, match="already in the catalog"):
        add_items(system, system.dataset.items.iloc[:1])
    new = pd.DataFrame({"item_id": [system.dataset.items["item_id"].max() + 1], "title": [typical["title"] + " II"],
                        "genres": [[favourite]], "year": [typical["year"]]})
    added = add_items(system, new)
    reloaded = load_system(system_dir)  # what a server loading the artifact sees
    assert reloaded.dataset.n_items == system.dataset.n_items
    assert reloaded.index.size == reloaded.dataset.n_items
    ids, _ = retriever(reloaded).ann(best, 50)
    assert added[0] in ids


def test_adding_items_is_one_change_to_the_artifact(system_dir, tmp_path, monkeypatch):
    """A failure before the manifest is written leaves the artifact as it was (catalog, index and
    model agree, no new files); a completed add leaves no replaced files behind."""
    import recfunnel.artifacts as artifacts

    system_dir = Path(shutil.copytree(system_dir, tmp_path / "copy"))
    before = _files(system_dir)
    n = load_system(system_dir).dataset.n_items
    new = pd.DataFrame({"item_id": [10**6], "title": ["New (2001)"], "genres": [["Drama"]],
                        "year": [2001.0]})

    def crash(*args):
        raise OSError("disk full")
    monkeypatch.setattr(artifacts, "write_manifest", crash)
    with pytest.raises(OSError):
        add_items(load_system(system_dir), new)
    monkeypatch.undo()
    after_crash = load_system(system_dir)
    assert _files(system_dir) == before
    assert after_crash.dataset.n_items == after_crash.index.size == n
    assert len(after_crash.retrieval.item_vectors_) == n
    add_items(after_crash, new)
    done = load_system(system_dir)
    assert done.dataset.n_items == done.index.size == len(done.retrieval.item_vectors_) == n + 1
    files = _files(system_dir)
    assert len(files) == len(before)
    assert not {"items.parquet", "index.faiss", "retrieval.safetensors"} & set(files)


def _files(directory: Path) -> list[str]:
    """The artifact's files, without SQLite's write-ahead log and its index: SQLite creates and
    removes them as connections to the store open and close (the fixture's directory may be
    copied while another test holds one)."""
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(("-wal", "-shm")))


def test_cli_index_build_takes_the_re_scoring_factor(system_dir, tmp_path):
    system_dir = Path(shutil.copytree(system_dir, tmp_path / "copy"))
    runner = CliRunner()
    build = ["index", "build", "--artifacts", str(system_dir), "--kind", "ivf-sq8", "--nlist", "8"]
    result = runner.invoke(app, build + ["--refine", "3"])
    assert result.exit_code == 0, result.output
    system = load_system(system_dir)
    assert system.manifest["index"]["config"]["refine"] == 3
    assert system.index.search(system.retrieval.item_vectors_[:1], 5)[0][0, 0] == 0
    assert runner.invoke(app, build + ["--refine", "-1"]).exit_code == 2


def test_cli_index_build_and_items_add(system_dir, tmp_path):
    system_dir = Path(shutil.copytree(system_dir, tmp_path / "copy"))
    runner = CliRunner()
    result = runner.invoke(app, ["index", "build", "--artifacts", str(system_dir), "--kind", "hnsw"])
    assert result.exit_code == 0, result.output
    assert "index hnsw" in result.output and "ef_search" in result.output
    info = load_system(system_dir).manifest["index"]
    assert info["config"]["kind"] == "hnsw" and info["recall@100"] >= 0.95

    items = load_system(system_dir).dataset.items
    new = tmp_path / "new.csv"
    pd.DataFrame({"item_id": [items["item_id"].max() + 1], "title": ["Brand New (2001)"],
                  "genres": ["Comedy|Drama"], "year": [2001]}).to_csv(new, index=False)
    result = runner.invoke(app, ["items", "add", str(new), "--artifacts", str(system_dir)])
    assert result.exit_code == 0, result.output
    assert f"the catalog now has {len(items) + 1:,} items" in result.output
    assert load_system(system_dir).index.size == len(items) + 1

    result = runner.invoke(app, ["items", "add", str(new), "--artifacts", str(system_dir)])
    assert result.exit_code == 2 and "already in the catalog" in result.output
    assert "Traceback" not in result.output


def test_single_thread_sets_every_thread_pool_to_one():
    """FAISS's OpenMP, PyTorch's and NumPy's BLAS threads all slow one small request down."""
    import faiss
    from threadpoolctl import threadpool_info, threadpool_limits

    before = (faiss.omp_get_max_threads(), torch.get_num_threads())
    with threadpool_limits(2, "blas"):  # from two threads; as they were after the test
        faiss.omp_set_num_threads(2)
        torch.set_num_threads(2)
        single_thread()
        assert faiss.omp_get_max_threads() == 1 and torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    faiss.omp_set_num_threads(before[0])
    torch.set_num_threads(before[1])
