"""The CLI end to end, as a user runs it: generated data in, artifacts, metrics and lists out."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recfunnel.cli import app

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def fitted_dir(tmp_path_factory, small_ml1m_dir):
    out = tmp_path_factory.mktemp("art") / "system"
    result = run("fit", "--data", small_ml1m_dir, "--out", out)
    assert result.exit_code == 0, result.output
    assert "held-out test" in result.output
    return out


def test_fit_writes_a_versioned_artifact_directory(fitted_dir):
    manifest = json.loads((fitted_dir / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["holdout"] is True
    assert manifest["stages"]["retrieval"]["model"] == "ease"
    assert len(manifest["selection"]) == 6
    assert {p.name for p in fitted_dir.iterdir()} >= {
        "manifest.json", "users.parquet", "items.parquet", "history.parquet", "heldout.parquet",
        "retrieval.safetensors"}


def test_evaluate_reproduces_the_fit_report(fitted_dir):
    manifest = json.loads((fitted_dir / "manifest.json").read_text())
    result = run("evaluate", "--artifacts", fitted_dir)
    assert result.exit_code == 0, result.output
    assert set(manifest["test"]) == {"retrieval", "final", "ndcg10_gains"}  # EASE: no ranker
    assert list(manifest["test"]["ndcg10_gains"]) == ["final vs retrieval"]
    assert f"{manifest['test']['final']['metrics']['HR@10']:.4f}" in result.output
    assert f"{manifest['test']['retrieval']['metrics']['NDCG@500']:.4f}" in result.output


def test_recommend_prints_titles(fitted_dir):
    result = run("recommend", "--artifacts", fitted_dir, "--user", "7", "--k", "5")
    assert result.exit_code == 0, result.output
    assert "Top 5 for user 7" in result.output
    assert result.output.count("(19") + result.output.count("(20") >= 5  # titles end in a year


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_export_excludes_visible_history(tmp_path, fitted_dir, suffix):
    out = tmp_path / f"recs.{suffix}"
    result = run("export", "--artifacts", fitted_dir, "--k", "20", "--out", out)
    assert result.exit_code == 0, result.output
    recs = pd.read_csv(out) if suffix == "csv" else pd.read_parquet(out)
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    assert recs.groupby("user_id").size().eq(20).all() and recs["user_id"].nunique() == 300
    history = pd.read_parquet(fitted_dir / "history.parquet")
    users = pd.read_parquet(fitted_dir / "users.parquet")["user_id"].to_numpy()
    items = pd.read_parquet(fitted_dir / "items.parquet")["item_id"].to_numpy()
    seen = set(zip(users[history["user"]], items[history["item"]]))
    assert not any(pair in seen for pair in zip(recs["user_id"], recs["item_id"]))
    assert (recs.groupby("user_id")["score"].diff().dropna() <= 0).all()


def test_baselines_table(small_ml1m_dir):
    result = run("baselines", "--data", small_ml1m_dir, "--models", "most-popular,ease")
    assert result.exit_code == 0, result.output
    assert "most-popular" in result.output and "ease" in result.output


def test_synth_command(tmp_path):
    result = run("data", "synth", "--users", "40", "--items", "60", "--interactions", "300",
                 "--format", "ml-100k", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "u.data").read_text().count("\n") == 300


@pytest.mark.parametrize("args, message", [
    (["fit", "--data", "/nonexistent/data"], "no such file or directory"),
    (["recommend", "--artifacts", "/nonexistent", "--user", "1"], "not a recfunnel artifact directory"),
    (["fit", "--data", "ml-1m", "--model", "svd"], "unknown model 'svd'"),
])
def test_user_mistakes_exit_2_with_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("param, message", [
    ("dimension=16", "expected NAME=VALUE with NAME one of two-tower's parameters"),
    ("dim", "expected NAME=VALUE"),
    ("loss=hinge", "two-tower does not take {'loss': 'hinge'}"),
])
def test_bad_model_param_is_a_user_mistake(small_ml1m_dir, tmp_path, param, message):
    result = run("fit", "--data", small_ml1m_dir, "--model", "two-tower", "--out", tmp_path / "a",
                 "--param", param)
    assert result.exit_code == 2 and message in result.output, result.output


def test_model_param_reaches_a_baseline(small_ml1m_dir, tmp_path):
    result = run("fit", "--data", small_ml1m_dir, "--model", "ease", "--out", tmp_path / "e",
                 "--param", "l2=7.5")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert manifest["stages"]["retrieval"]["params"]["l2"] == 7.5
    assert [t["params"]["l2"] for t in manifest["selection"]] == [7.5]  # no grid search


def test_unknown_user_and_bad_export_suffix(fitted_dir, tmp_path):
    result = run("recommend", "--artifacts", fitted_dir, "--user", "nobody")
    assert result.exit_code == 2 and "unknown user 'nobody'" in result.output
    result = run("export", "--artifacts", fitted_dir, "--out", tmp_path / "recs.json")
    assert result.exit_code == 2 and "must end in .csv or .parquet" in result.output


def test_real_entry_point_malformed_file_no_traceback(tmp_path):
    bad = tmp_path / "log.csv"
    bad.write_text("user_id,item_id,timestamp\n1,2,3\n1,x,y\n")
    proc = subprocess.run([sys.executable, "-m", "recfunnel", "fit", "--data", str(bad),
                           "--out", str(tmp_path / "a")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "log.csv:3: timestamp 'y'" in proc.stderr


def test_ml100k_with_interactions_removed_never_recommends_visible_items(tmp_path, ml100k_dir):
    """A user's own copy of ML-100K, 10% of lines dropped: every exported list avoids every item
    the user was seen with (all but the held-out last interaction), for every user."""
    data = tmp_path / "ml-100k"
    data.mkdir()
    for name in ("u.user", "u.item"):
        (data / name).write_bytes((ml100k_dir / name).read_bytes())
    lines = (ml100k_dir / "u.data").read_text().splitlines()
    keep = np.random.default_rng(0).random(len(lines)) > 0.1
    (data / "u.data").write_text("\n".join(l for l, k in zip(lines, keep) if k) + "\n")
    result = run("fit", "--data", data, "--out", tmp_path / "art")
    assert result.exit_code == 0, result.output
    result = run("export", "--artifacts", tmp_path / "art", "--k", "500", "--out", tmp_path / "r.csv")
    assert result.exit_code == 0, result.output

    log = pd.read_csv(data / "u.data", sep="\t", names=["user_id", "item_id", "rating", "ts"])
    log["order"] = np.arange(len(log))
    log = log.sort_values(["ts", "order"], kind="stable")
    last = log.groupby("user_id").tail(1).index
    visible = set(zip(log.drop(index=last)["user_id"], log.drop(index=last)["item_id"]))
    recs = pd.read_csv(tmp_path / "r.csv")
    assert recs["user_id"].nunique() == log["user_id"].nunique()
    assert recs.groupby("user_id").size().eq(500).all()
    assert not any(pair in visible for pair in zip(recs["user_id"], recs["item_id"]))


@pytest.fixture(scope="module")
def funnel_dir(small_funnel_dir):
    return small_funnel_dir


def test_two_tower_funnel_through_fit_evaluate_recommend(funnel_dir):
    """The funnel saved and reloaded scores every stage exactly as it did when fit."""
    manifest = json.loads((funnel_dir / "manifest.json").read_text())
    assert set(manifest["test"]) == {"retrieval", "ranking", "final", "ndcg10_gains",
                                     "model_alone"}
    assert manifest["stages"]["rerank"]["mmr_weight"] == 0.5
    params = manifest["stages"]["retrieval"]["params"]  # from --param, over the defaults
    assert (params["dim"], params["epochs"], params["history_length"]) == (16, 3, 10)
    result = run("evaluate", "--artifacts", funnel_dir)
    assert result.exit_code == 0, result.output
    for stage, metric in (("retrieval", "HR@500"), ("ranking", "NDCG@10"), ("final", "NDCG@10"),
                          ("final", "novelty@10"), ("model_alone", "HR@500")):
        assert f"{manifest['test'][stage]['metrics'][metric]:.4f}" in result.output
    assert "two-tower alone" in result.output  # retrieval merges several sources; the model's share
    assert "NDCG@10 ranking vs retrieval" in result.output
    assert "by user activity" in result.output and "retrieval HR@500" in result.output
    result = run("recommend", "--artifacts", funnel_dir, "--user", "3", "--k", "5")
    assert result.exit_code == 0 and "Top 5 for user 3" in result.output
    assert "two-tower" in result.output and "ranked" in result.output  # the explanation column


def test_evaluate_at_another_rank_depth(funnel_dir):
    """Ranking reorders ``--rank-depth`` candidates, drawn from the sources as a live request
    with that depth draws them: at 10, the ten items the retrieval stage lists at 10."""
    from recfunnel.artifacts import load_system
    from recfunnel.report import evaluate_funnel

    system = load_system(funnel_dir)
    evaluation = evaluate_funnel(system, n_bootstrap=0, rank_depth=10)
    ranked = evaluation.output.lists["ranking"].items
    assert ranked.shape[1] == 10
    retrieved, _ = system.recommend(system.heldout.sort_values("user")["user"].to_numpy(), 10)
    assert (np.sort(ranked, 1) == np.sort(retrieved, 1)).all()
    assert (ranked != retrieved).any()  # reordered
    result = run("evaluate", "--artifacts", funnel_dir, "--rank-depth", "0")
    assert result.exit_code == 2 and "rank-depth" in result.output


def test_export_each_stage(funnel_dir, tmp_path):
    items = pd.read_parquet(funnel_dir / "items.parquet")
    horror = set(items.loc[items["genres"].apply(lambda g: "Horror" in list(g)), "item_id"])
    lists = {}
    for stage in ("retrieval", "ranking", "final"):
        out = tmp_path / f"{stage}.csv"
        result = run("export", "--artifacts", funnel_dir, "--stage", stage, "--k", "10",
                     "--out", out)
        assert result.exit_code == 0, result.output
        lists[stage] = pd.read_csv(out)
        assert lists[stage].groupby("user_id").size().eq(10).all()
    # ranking reorders retrieval's candidates; the final list obeys the genre filter
    assert not lists["ranking"].equals(lists["retrieval"])
    assert not set(lists["final"]["item_id"]) & horror
    assert set(lists["retrieval"]["item_id"]) & horror
    # retrieval at k is the stage's whole list cut at k, not a shorter list merged anew
    run("export", "--artifacts", funnel_dir, "--k", "50", "--out", tmp_path / "deep.csv")
    deep = pd.read_csv(tmp_path / "deep.csv")
    assert deep[deep["rank"] <= 10].reset_index(drop=True).equals(lists["retrieval"])


def test_report_writes_html_with_plots(funnel_dir, tmp_path):
    out = tmp_path / "report.html"
    result = run("report", "--artifacts", funnel_dir, "--out", out)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count("<svg") == 3 and "mmr_weight" in page
    assert "By user activity" in page and "<th>retrieval HR@500</th>" in page
    for stage in ("retrieval", "ranking", "final"):
        assert f"<td>{stage}</td>" in page


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a re-ranking configuration"),
    ('{"mmr_wieght": 1}', "not a re-ranking configuration"),
    ('{"exclude_genres": ["Nope"]}', "unknown genres ['Nope']"),
])
def test_bad_rerank_config_is_a_user_mistake(tmp_path, small_ml1m_dir, content, message):
    rules = tmp_path / "rules.json"
    rules.write_text(content)
    result = run("fit", "--data", small_ml1m_dir, "--out", tmp_path / "a", "--rerank", rules)
    assert result.exit_code == 2 and message in result.output, result.output


def test_ranking_export_needs_a_ranking_stage(fitted_dir, tmp_path):
    result = run("export", "--artifacts", fitted_dir, "--stage", "ranking",
                 "--out", tmp_path / "r.csv")
    assert result.exit_code == 2 and "no ranking stage" in result.output
