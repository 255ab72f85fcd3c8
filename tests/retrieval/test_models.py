"""One behaviour test, run against every registered retrieval model (as the `implicit` library does)."""

import numpy as np
import pytest

from recfunnel.data.split import temporal_leave_one_out
from recfunnel.eval.evaluate import evaluate_model
from recfunnel.pipeline import catalog_stats
from recfunnel.retrieval.registry import MODELS


@pytest.fixture(scope="module")
def synth_dataset(small_ml1m_dir):
    from recfunnel.data.loading import load

    dataset = load(small_ml1m_dir)
    return dataset, temporal_leave_one_out(dataset.interactions)


FAST_PARAMS = {"two-tower": dict(epochs=4, batch_size=256, dim=32, hidden=64, history_length=20)}


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, synth_dataset):
    dataset, split = synth_dataset
    model = MODELS[request.param](**FAST_PARAMS.get(request.param, {}))
    return model.fit(dataset.history(split.train), dataset, split.valid), dataset, split


def test_scores_cover_the_catalog(fitted):
    model, dataset, split = fitted
    history = dataset.history(split.train)
    scores = np.asarray(model.score(np.array([0, 5, 7]), history))
    assert scores.shape == (3, dataset.n_items)
    assert np.isfinite(scores).all()


def test_state_round_trip_gives_identical_scores(fitted):
    model, dataset, split = fitted
    history = dataset.history(split.train)
    clone = type(model)(**model.get_params())
    clone.load_state({k: np.array(v) for k, v in model.state().items()})
    users = np.arange(dataset.n_users)
    assert np.array_equal(model.score(users, history), clone.score(users, history))


def test_beats_random_on_structured_data(fitted):
    model, dataset, split = fitted
    history = dataset.history(split.train)
    report = evaluate_model(model, split.valid, history, catalog_stats(dataset, split.train),
                            ks=(10,), n_bootstrap=0)
    random_hr = 10 / dataset.n_items
    assert report["HR@10"] > 2.5 * random_hr


def test_unknown_model_is_a_clear_error():
    from recfunnel.errors import RecfunnelError
    from recfunnel.retrieval.registry import model_class

    with pytest.raises(RecfunnelError, match="unknown model 'svd'; choose one of"):
        model_class("svd")
