"""The ranking stage on generated data: one feature path, and a ranker that learns a signal the
retrieval scores do not carry."""

import numpy as np
import pandas as pd
import pytest
import torch

from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out
from recfunnel.ranking.features import ItemTable, candidate_features
from recfunnel.ranking.ranker import Queries, Ranker
from recfunnel.retrieval.two_tower_recommender import TwoTower

FAST = dict(epochs=3, batch_size=256, dim=32, hidden=64, patience=3)


@pytest.fixture(scope="module")
def fitted(small_ml1m_dir):
    dataset = load(small_ml1m_dir)
    split = temporal_leave_one_out(dataset.interactions)
    history = dataset.history(split.train)
    model = TwoTower(**FAST).fit(history, dataset, split.valid)
    counts = np.bincount(split.train["item"], minlength=dataset.n_items)
    table = ItemTable.build(dataset, counts, model.item_vectors_)
    queries = Queries.retrieve(model, history, split.valid["user"].to_numpy(), 50)
    return dataset, split, model, table, queries


def test_single_request_features_equal_the_batch_rows(fitted):
    """No training/serving skew: one user's features, built alone, are that user's batch row."""
    dataset, split, model, table, queries = fitted
    batch = queries.features(table)
    row = 7
    alone = candidate_features(table, queries.user_vectors[row:row + 1], queries.recent[row:row + 1],
                               queries.candidates[row:row + 1],
                               queries.retrieval_scores[row:row + 1], queries.n_seen[row:row + 1])
    for name, value in alone.items():
        assert torch.allclose(value[0], batch[name][row]), name


def test_ranker_learns_what_retrieval_misses(fitted):
    """Targets are planted as each user's least popular candidate: the ranker must move them up
    from wherever retrieval put them, using the popularity feature."""
    dataset, split, model, table, queries = fitted
    least = table.popularity[queries.candidates].argmin(1)
    items = queries.candidates[torch.arange(len(queries.users)), least]
    targets = pd.DataFrame({"user": queries.users, "item": items.numpy(), "rating": 5.0})
    before = least.float().mean().item()
    ranker = Ranker(epochs=30, patience=30, hidden=32).fit(table, queries, targets)
    lists, _ = ranker.rerank(table, queries)
    after = np.mean([list(row).index(i) for row, i in zip(lists, items.tolist())])
    assert before > 10 and after < 3


def test_positions_mark_unretrieved_targets(fitted):
    dataset, split, model, table, queries = fitted
    targets = pd.DataFrame({"user": queries.users, "item": queries.candidates[:, 4].numpy()})
    assert queries.positions(targets).tolist() == [4] * len(queries.users)
    targets["item"] = -5
    assert queries.positions(targets).tolist() == [-1] * len(queries.users)
