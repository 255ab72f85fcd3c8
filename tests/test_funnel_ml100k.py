"""Issues 3 and 5's acceptance test, run the way a user would check it: remove each user's last
interaction from a copy of ML-100K, train on the rest with `fit --no-holdout`, export each
stage's lists, and score them on the removed interactions with code independent of recfunnel's
own evaluation (full ranking: the lists cover the whole catalog minus what the user has seen)."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recfunnel.cli import app

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def hits(lists: pd.DataFrame, removed: pd.DataFrame) -> pd.DataFrame:
    target = dict(zip(removed["user_id"], removed["item_id"]))
    return lists[lists["item_id"].to_numpy() == lists["user_id"].map(target).to_numpy()]


def ndcg_at_10(lists: pd.DataFrame, removed: pd.DataFrame) -> float:
    found = hits(lists, removed)
    found = found[found["rank"] <= 10]
    return float((1 / np.log2(found["rank"] + 1)).sum() / len(removed))


@pytest.fixture(scope="module")
def users_copy(tmp_path_factory, ml100k_dir):
    data = tmp_path_factory.mktemp("ml100k-copy")
    for name in ("u.user", "u.item"):
        (data / name).write_bytes((ml100k_dir / name).read_bytes())
    log = pd.read_csv(ml100k_dir / "u.data", sep="\t", names=["user_id", "item_id", "rating", "ts"])
    log = log.iloc[np.lexsort((np.arange(len(log)), log["ts"].to_numpy()))]
    last = log.groupby("user_id").tail(1)
    log.drop(index=last.index).sort_index().to_csv(data / "u.data", sep="\t", header=False,
                                                    index=False)
    return data, last


def test_final_list_beats_ease_and_ranking_beats_retrieval(users_copy, tmp_path):
    data, removed = users_copy
    run("fit", "--data", data, "--model", "two-tower", "--no-holdout", "--out", tmp_path / "tt")
    run("fit", "--data", data, "--model", "ease", "--no-holdout", "--out", tmp_path / "ease")
    ndcg = {}
    for stage, k in (("retrieval", 500), ("ranking", 10), ("final", 10)):
        run("export", "--artifacts", tmp_path / "tt", "--stage", stage, "--k", k,
            "--out", tmp_path / f"{stage}.csv")
        ndcg[stage] = ndcg_at_10(pd.read_csv(tmp_path / f"{stage}.csv"), removed)
    candidates = pd.read_csv(tmp_path / "retrieval.csv")
    assert candidates.groupby("user_id").size().min() == 500
    recall = len(hits(candidates, removed)) / len(removed)
    run("export", "--artifacts", tmp_path / "ease", "--k", "10", "--out", tmp_path / "ease.csv")
    ndcg["ease"] = ndcg_at_10(pd.read_csv(tmp_path / "ease.csv"), removed)
    print(ndcg, "retrieval HR@500", recall)
    assert recall >= 0.95 and ndcg["retrieval"] > ndcg["ease"]  # issue 3
    assert ndcg["final"] >= 0.11
    assert ndcg["final"] >= 1.5 * ndcg["ease"]
    assert ndcg["ranking"] >= 1.05 * ndcg["retrieval"]
