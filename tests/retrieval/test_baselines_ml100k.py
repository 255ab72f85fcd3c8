"""EASE and ALS through recfunnel land where independent implementations do on real ML-100K."""

import math

import numpy as np
import pytest
from implicit.cpu.als import AlternatingLeastSquares

from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out
from recfunnel.pipeline import select_and_fit
from recfunnel.retrieval.als import ALS
from recfunnel.retrieval.ease import EASE


@pytest.fixture(scope="module")
def ml100k(ml100k_dir):
    dataset = load(ml100k_dir)
    return dataset, temporal_leave_one_out(dataset.interactions)


def naive_hr_ndcg(scores, history, test):
    """Full argsort per user, written independently of recfunnel's top-k and metric code."""
    hits, gains = [], []
    for user, target in zip(test["user"], test["item"]):
        s = scores[user].astype(np.float64).copy()
        s[history[user].indices] = -np.inf
        rank = int(np.sum(s > s[target]))
        hits.append(rank < 10)
        gains.append(1 / math.log2(rank + 2) if rank < 10 else 0.0)
    return np.mean(hits), np.mean(gains)


def test_ease_matches_a_naive_reference_and_the_literature(ml100k):
    dataset, split = ml100k
    fitted = select_and_fit(EASE, dataset, split)
    l2 = fitted.model.l2
    X = dataset.matrix(fitted.history).toarray().astype(np.float64)
    G = X.T @ X + l2 * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    hr, ndcg = naive_hr_ndcg(X @ B, dataset.matrix(fitted.history), split.test)
    assert fitted.test["HR@10"] == pytest.approx(hr, abs=1e-9)
    assert fitted.test["NDCG@10"] == pytest.approx(ndcg, abs=1e-6)
    # Published ML-100K leave-last-out full-ranking EASE: NDCG@10 about 0.07, HR@10 about 0.14
    assert 0.065 <= fitted.test["NDCG@10"] <= 0.085
    assert 0.13 <= fitted.test["HR@10"] <= 0.17


def test_als_matches_implicits_own_recommend(ml100k):
    dataset, split = ml100k
    model = ALS(factors=64, regularization=0.05, alpha=1.0).fit(dataset.history(split.train_valid), dataset)
    history = dataset.history(split.train_valid)
    from recfunnel.eval.evaluate import evaluate_model
    from recfunnel.pipeline import catalog_stats

    ours = evaluate_model(model, split.test, history, catalog_stats(dataset, split.train_valid),
                          ks=(10,), n_bootstrap=0)
    reference = AlternatingLeastSquares(factors=64)
    reference.user_factors, reference.item_factors = model.user_factors_, model.item_factors_
    users = split.test["user"].to_numpy()
    ids, _ = reference.recommend(users, history.matrix[users], N=10,
                                 filter_already_liked_items=True)
    hr = np.mean([t in row for t, row in zip(split.test["item"], ids)])
    assert ours["HR@10"] == pytest.approx(hr, abs=2 / len(users))
    assert 0.09 <= ours["HR@10"] <= 0.16
