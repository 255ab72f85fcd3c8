"""The ranking stage on generated data: one feature path, training examples that never leak the
label into retrieval, and a ranker that learns a signal the retrieval scores do not carry."""

import numpy as np
import pandas as pd
import pytest

from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out
from recfunnel.index.ann import IndexConfig, ItemIndex
from recfunnel.index.candidates import SOURCES, CandidateGenerator
from recfunnel.ranking.examples import hold_out_last, ranking_queries
from recfunnel.ranking.features import DENSE, ItemTable, candidate_features
from recfunnel.ranking.ranker import Queries, Ranker
from recfunnel.retrieval.two_tower_recommender import TwoTower

FAST = dict(epochs=3, batch_size=256, dim=32, hidden=64, patience=3)


@pytest.fixture(scope="module")
def fitted(small_ml1m_dir):
    dataset = load(small_ml1m_dir)
    split = temporal_leave_one_out(dataset.interactions)
    history = dataset.history(split.train)
    model = TwoTower(**FAST).fit(history, dataset, split.valid)
    table = ItemTable.build(dataset, history, model.item_vectors_)
    index = ItemIndex.build(model.item_vectors_, IndexConfig(kind="flat"))
    generator = CandidateGenerator.over(index, model.item_vectors_, history, dataset.genre_matrix(),
                                        cooccurrence=table.cooccurrence)
    queries = Queries.generate(generator, model, history, split.valid["user"].to_numpy(), 50,
                               split.valid)
    return dataset, split, model, table, queries


def test_single_request_features_equal_the_batch_rows(fitted):
    """No training/serving skew: one user's features, built alone, are that user's batch row."""
    dataset, split, model, table, queries = fitted
    batch = queries.features(table)
    row = 7
    alone = candidate_features(table, queries.user_vectors[row:row + 1], queries.recent[row:row + 1],
                               queries.activity[row:row + 1], queries.candidates[row:row + 1],
                               queries.retrieval_scores[row:row + 1],
                               queries.cooccurrence[row:row + 1])
    for name, value in alone.items():
        np.testing.assert_allclose(value[0], batch[name][row], err_msg=name, rtol=1e-6)


def test_features_of_a_hand_made_request():
    """Each input and dense feature where it is expected, on four items: vectors, genres (item 3
    in both), popularity and age."""
    vectors = np.arange(8, dtype=np.float32).reshape(4, 2)
    genres = np.array([[1, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    table = ItemTable(vectors, np.array([0.5, 1.0, 1.5, 2.0], dtype=np.float32),
                      np.array([0, 10, 20, 30], dtype=np.float32), genres, None)
    recent = np.array([[-1, 0, 1, 2]])  # one empty slot; history genres: 2 x genre 0, 1 x genre 1
    candidates = np.array([[3, 1]])
    out = candidate_features(table, np.ones((1, 2), dtype=np.float32), recent, np.array([9]),
                             candidates, np.array([[0.2, 0.7]], dtype=np.float32),
                             np.array([[0.05, 0.0]], dtype=np.float32))
    assert out["items"].tolist() == [[[6.0, 7.0], [2.0, 3.0]]]
    assert out["history"].tolist() == [[[0.0, 0.0], [0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]]
    assert out["history_mask"].tolist() == [[False, True, True, True]]
    dense = dict(zip(DENSE, out["dense"][0].T.tolist()))
    assert dense["retrieval_score"] == pytest.approx([0.2, 0.7])
    assert dense["retrieval_rank"] == pytest.approx([np.log1p(1), np.log1p(0)])  # 0.7 is first
    assert dense["cooccurrence"] == pytest.approx([0.05, 0.0])
    assert dense["popularity"] == pytest.approx([2.0, 1.0])
    assert dense["age"] == pytest.approx([3.0, 1.0])  # in decades
    # genre shares 2/3 and 1/3; item 3 has both genres (each counted at half), item 1 genre 1
    assert dense["genre_affinity"] == pytest.approx([(2 / 3 + 1 / 3) / 2, 1 / 3])
    assert dense["activity"] == pytest.approx([np.log1p(9)] * 2)


def test_cooccurrence_feature_is_the_ease_score(fitted):
    dataset, split, model, table, queries = fitted
    user_row = dataset.history(split.train).matrix[queries.users[3]].toarray()[0]
    expected = user_row @ table.cooccurrence[:, queries.candidates[3]]
    got = queries.features(table, slice(3, 4))["dense"][0, :, 2]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_ranker_learns_what_retrieval_misses(fitted):
    """Targets are planted as each user's least popular candidate: the ranker must move them up
    from wherever retrieval put them, using the popularity feature."""
    dataset, split, model, table, queries = fitted
    least = table.popularity[queries.candidates].argmin(1)
    queries.targets = queries.candidates[np.arange(len(queries)), least]
    queries.ratings = np.full(len(queries), 5.0)
    before = least.mean()
    ranker = Ranker(epochs=30, patience=30, hidden=32, train_candidates=32).fit(table, queries)
    order = np.argsort(-ranker.score(table, queries), axis=1)
    after = (order == least[:, None]).argmax(1).mean()
    assert before > 10 and after < 3


def test_positions_mark_unretrieved_targets(fitted):
    dataset, split, model, table, queries = fitted
    labelled = Queries.concat([queries])
    labelled.targets = queries.candidates[:, 4]
    assert labelled.positions().tolist() == [4] * len(queries)
    labelled.targets = np.full(len(queries), -5)
    assert labelled.positions().tolist() == [-1] * len(queries)


def test_padding_slots_are_never_ranked_above_real_candidates(fitted):
    dataset, split, model, table, queries = fitted
    padded = Queries.concat([queries])
    padded.real = padded.real.copy()
    padded.real[:, -5:] = False
    ranker = Ranker(epochs=1, hidden=16).fit(table, queries)
    scores = ranker.score(table, padded)
    assert np.isneginf(scores[:, -5:]).all() and np.isfinite(scores[:, :-5]).all()


def test_training_moments_see_only_their_past():
    """Each held-out moment's history is everything before it and nothing after."""
    frame = pd.DataFrame({"user": [0] * 6 + [1] * 2, "item": [0, 1, 2, 3, 4, 5, 0, 1],
                          "timestamp": [1, 2, 3, 4, 5, 6, 1, 2]})
    rest, position = hold_out_last(frame, 3)
    assert position.tolist() == [-1, -1, -1, 2, 1, 0, -1, -1]  # user 1 is too short
    assert rest["item"].tolist() == [0, 1, 2, 0, 1]


def test_ranking_queries_label_each_moment(fitted):
    dataset, split, model, table, queries = fitted
    rest, position = hold_out_last(split.train, 2)
    labelled = ranking_queries(model, dataset, split.train, position, 30, table.cooccurrence)
    assert len(labelled) == (position >= 0).sum()
    # each query is built from the history before its moment, which never holds the target
    activity = []
    for k in range(2):
        before = dataset.history(split.train[(position < 0) | (position > k)]).matrix
        moment = split.train[position == k].sort_values("user", kind="stable")
        assert not before[moment["user"].to_numpy(), moment["item"].to_numpy()].any()
        activity.append(np.diff(before.indptr)[moment["user"].to_numpy()])
    assert labelled.activity.tolist() == np.concatenate(activity).tolist()
    # the candidates come from every source, as a live request's do
    assert set(labelled.sources[labelled.real].tolist()) == set(range(len(SOURCES)))


def test_added_items_extend_the_cooccurrence_weights_with_zeros(fitted):
    """What an EASE refit gives items without interactions, without solving it again."""
    from recfunnel.data.dataset import Dataset

    dataset, split, model, table, queries = fitted
    extra = dataset.items.iloc[:2].assign(item_id=[10**6, 10**6 + 1])
    bigger = Dataset(dataset.name, dataset.interactions, dataset.users,
                     pd.concat([dataset.items, extra], ignore_index=True))
    vectors = np.vstack([model.item_vectors_, model.item_vectors_[:2]])
    grown = ItemTable.build(bigger, bigger.history(split.train), vectors, table.cooccurrence)
    refit = ItemTable.build(bigger, bigger.history(split.train), vectors)
    np.testing.assert_allclose(grown.cooccurrence, refit.cooccurrence, atol=1e-5)


def test_served_scores_equal_the_network_and_survive_saving(fitted):
    dataset, split, model, table, queries = fitted
    ranker = Ranker(epochs=1, hidden=32).fit(table, queries)
    served = ranker.score(table, queries)  # the compiled network (recfunnel.ranking.scoring_net)
    ranker.training_ = True  # what training scores with: the PyTorch network itself
    eager = ranker.score(table, queries)
    ranker.training_ = False
    assert np.array_equal(np.isinf(served), ~queries.real)
    np.testing.assert_allclose(served, eager, rtol=1e-4, atol=1e-4)
    state = ranker.state()
    loaded = Ranker(epochs=1, hidden=32).load_state(state, model.model_.config.dim)
    np.testing.assert_array_equal(loaded.score(table, queries), served)
    # an artifact written before serving was compiled also holds an onnxruntime graph
    older = Ranker(epochs=1, hidden=32).load_state(
        state | {"scoring_onnx": np.zeros(8, np.uint8)}, model.model_.config.dim)
    np.testing.assert_array_equal(older.score(table, queries), served)
