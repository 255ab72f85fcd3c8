"""Two-tower specifics: training lowers the loss, each loss variant learns, cold items get content embeddings."""

import numpy as np
import pytest
import torch

from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out
from recfunnel.data.synth import SynthConfig, generate, write
from recfunnel.eval.evaluate import evaluate_model
from recfunnel.pipeline import catalog_stats
from recfunnel.retrieval.two_tower import UserTower
from recfunnel.retrieval.two_tower_recommender import TwoTower

FAST = dict(epochs=5, batch_size=256, dim=32, hidden=64, patience=5, history_length=20)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    write(generate(SynthConfig(users=150, items=100, interactions=3000, clusters=5, seed=2)), out)
    dataset = load(out)
    return dataset, temporal_leave_one_out(dataset.interactions)


@pytest.mark.parametrize("variant", [
    dict(logq="none"),
    dict(logq="counts", mixed_negatives=64),
    dict(logq="streaming"),
    dict(hard_negatives=4, hard_mode="epoch"),
    dict(hard_negatives=4, hard_mode="batch"),
    dict(loss="bce"),
])
def test_each_variant_lowers_loss_and_beats_random(synth, variant):
    dataset, split = synth
    model = TwoTower(**FAST, **variant).fit(dataset.history(split.train), dataset, split.valid)
    losses = [r["loss"] for r in model.history_log_]
    assert losses[-1] < losses[0]
    report = evaluate_model(model, split.test, dataset.history(split.train_valid),
                            catalog_stats(dataset, split.train_valid), ks=(10,), n_bootstrap=0)
    assert report["HR@10"] > 2 * 10 / dataset.n_items


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none)")
@pytest.mark.parametrize("variant", [dict(), dict(logq="streaming", hard_negatives=4,
                                                  hard_mode="batch"), dict(loss="bce")])
def test_training_on_a_gpu_gives_a_cpu_model(synth, variant):
    """Steps run on the GPU; what comes out scores on the CPU as a CPU-trained model does."""
    dataset, split = synth
    model = TwoTower(**FAST, **variant, device="cuda").fit(dataset.history(split.train), dataset,
                                                           split.valid)
    assert all(p.device.type == "cpu" for p in model.model_.parameters())
    report = evaluate_model(model, split.test, dataset.history(split.train_valid),
                            catalog_stats(dataset, split.train_valid), ks=(10,), n_bootstrap=0)
    assert report["HR@10"] > 2 * 10 / dataset.n_items


def test_same_seed_same_model(synth):
    dataset, split = synth
    a, b = (TwoTower(**FAST).fit(dataset.history(split.train), dataset) for _ in range(2))
    assert np.allclose(a.item_vectors_, b.item_vectors_)


def test_live_user_vectors_survive_saving_also_from_an_older_state(synth):
    """Loaded, the model serves the same vector; a state written when the tower was served from
    onnxruntime also holds its graph, which loading ignores."""
    dataset, split = synth
    model = TwoTower(**FAST).fit(dataset.history(split.train), dataset)
    window = model.window(split.train["item"].to_numpy()[:5])
    features = dataset.users.iloc[0].to_dict()
    expected = model.user_vector(window, features, 0)
    for extra in ({}, {"request_tower_onnx": np.zeros(8, np.uint8)}):
        loaded = TwoTower(**FAST)
        loaded.load_state(model.state() | extra)
        np.testing.assert_array_equal(loaded.user_vector(window, features, 0), expected)


def test_cold_item_is_embedded_from_content(synth):
    dataset, split = synth
    cold = int(split.train["item"].value_counts().index[-1])
    train = split.train[split.train["item"] != cold]
    model = TwoTower(**FAST).fit(dataset.history(train), dataset)
    assert not model.model_.items.known[cold]
    before = model.item_vectors_[cold].copy()
    with torch.no_grad():  # the id embedding of a cold item must play no part
        model.model_.items.id_embedding.weight[cold] += 10.0
    model._precompute_items()
    assert np.allclose(model.item_vectors_[cold], before, atol=1e-6)

    genres = dataset.items["genres"]
    same = [i for i in range(dataset.n_items) if i != cold and set(genres[i]) & set(genres[cold])]
    other = [i for i in range(dataset.n_items) if not set(genres[i]) & set(genres[cold])]
    vectors = model.item_vectors_
    assert same and other
    same_sim, other_sim = vectors[same] @ vectors[cold], vectors[other] @ vectors[cold]
    # AUC: how often an item sharing a genre is closer to the cold item than one sharing none
    assert (same_sim[:, None] > other_sim[None, :]).mean() > 0.8


def test_id_dropout_hides_that_share_of_user_ids_in_training(synth, monkeypatch):
    """With a user id embedding, ``id_dropout`` of the training examples go in as unknown users
    (-1), so the tower also learns to serve users it has never seen; scoring never hides them."""
    dataset, split = synth
    ids = {True: [], False: []}  # by training mode
    forward = UserTower.forward

    def spy(self, history_vectors, history, categories, users):
        ids[self.training].append(users.clone())
        return forward(self, history_vectors, history, categories, users)

    monkeypatch.setattr(UserTower, "forward", spy)
    short = FAST | dict(epochs=2)
    model = TwoTower(**short, use_user_id=True, id_dropout=0.3).fit(
        dataset.history(split.train), dataset, split.valid)
    model.user_vectors(split.test["user"].to_numpy(), dataset.history(split.train_valid))
    hidden = (torch.cat(ids[True]) < 0).float().mean()
    assert 0.25 < hidden < 0.35
    assert ids[False] and not (torch.cat(ids[False]) < 0).any()

    ids[True].clear()
    TwoTower(**short, use_user_id=True, id_dropout=0.0).fit(dataset.history(split.train),
                                                            dataset)
    assert not (torch.cat(ids[True]) < 0).any()
