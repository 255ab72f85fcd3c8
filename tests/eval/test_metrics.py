import math

import numpy as np
import pytest
import scipy.sparse as sp

from recfunnel.eval.metrics import CatalogStats, bootstrap_ci, evaluate_lists, intra_list_diversity
from recfunnel.retrieval.topk import PAD


def catalog(n_items=6, genres=None):
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0]], dtype=np.float32))
    return CatalogStats.from_train(train[:, :n_items], genres)


def test_hand_computed_hit_rate_ndcg_mrr():
    lists = np.array([[3, 1, 2], [0, 4, 5], [5, 4, 3]])
    targets = np.array([1, 0, 2])  # ranks 2, 1, miss
    r = evaluate_lists(lists, targets, catalog(), ks=(1, 3), n_bootstrap=0)
    assert r["HR@1"] == pytest.approx(1 / 3)
    assert r["HR@3"] == pytest.approx(2 / 3)
    assert r["NDCG@1"] == pytest.approx(1 / 3)
    assert r["NDCG@3"] == pytest.approx((1 / math.log2(3) + 1) / 3)
    assert r["MRR"] == pytest.approx((1 / 2 + 1) / 3)


def test_coverage_popularity_tail():
    lists = np.array([[0, 1], [0, 2]])
    r = evaluate_lists(lists, np.array([9, 9]), catalog(), ks=(1, 2), n_bootstrap=0)
    assert r["coverage@1"] == pytest.approx(1 / 6) and r["coverage@2"] == pytest.approx(3 / 6)
    # item 0 was seen by both training users, items 1 and 2 by one each
    assert r["popularity@1"] == pytest.approx(1.0)
    assert r["popularity@2"] == pytest.approx((1 + 0.5 + 1 + 0.5) / 4)
    # head = the ceil(0.2 * 6) = 2 most popular: items 0 and 1 (ties broken by index)
    assert r["tail_share@2"] == pytest.approx(1 / 4)


def test_novelty_is_self_information_with_unseen_items_floored_at_one_user():
    lists = np.array([[0, 1], [0, 5]])
    r = evaluate_lists(lists, np.array([9, 9]), catalog(), ks=(1, 2), n_bootstrap=0)
    # item 0: both users -> 0 bits; item 1: one of two -> 1 bit; item 5: never seen -> as one user
    assert r["novelty@1"] == pytest.approx(0.0)
    assert r["novelty@2"] == pytest.approx((0 + 1 + 0 + 1) / 4)


def test_padding_is_not_an_item():
    r = evaluate_lists(np.array([[0, PAD]]), np.array([5]), catalog(), ks=(2,), n_bootstrap=0)
    assert r["coverage@2"] == pytest.approx(1 / 6) and r["popularity@2"] == pytest.approx(1.0)


def test_genre_diversity():
    genres = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32))
    assert intra_list_diversity(np.array([[0, 1]]), genres) == pytest.approx(0.0)
    assert intra_list_diversity(np.array([[0, 2]]), genres) == pytest.approx(1.0)
    # pairs: (0,1)=0, (0,2)=1, (1,2)=1 dissimilarity -> 2/3
    assert intra_list_diversity(np.array([[0, 1, 2]]), genres) == pytest.approx(2 / 3)
    assert intra_list_diversity(np.array([[0, 3]]), genres) == pytest.approx(1 - 1 / math.sqrt(2))


def test_bootstrap_interval_brackets_the_mean():
    values = np.random.default_rng(0).random(500)
    low, high = bootstrap_ci(values, 500)
    assert low < values.mean() < high
    assert high - low < 0.1


def test_paired_gain_compares_the_same_users():
    from recfunnel.eval.funnel import paired_gain

    targets = np.array([1, 2, 3, 4])
    before = np.array([[9, 1], [9, 2], [9, 8], [9, 8]])  # two hits at rank 2
    after = np.array([[1, 9], [2, 9], [9, 8], [9, 8]])  # the same two hits at rank 1
    gain, (low, high) = paired_gain(before, after, targets, n_bootstrap=200)
    assert gain == pytest.approx(2 * (1 - 1 / math.log2(3)) / 4)
    assert 0 <= low <= gain <= high
