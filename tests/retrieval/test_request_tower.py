"""The compiled request tower gives the PyTorch user tower's vectors, in every configuration."""

import numpy as np
import pytest
import torch

from recfunnel.retrieval.request_tower import RequestTower
from recfunnel.retrieval.two_tower import POOLINGS, TowerConfig, TwoTowerModel

N_ITEMS, N_USERS, LENGTH = 50, 30, 8


def model(pooling: str, use_user_id: bool, fields: list[int]) -> TwoTowerModel:
    torch.manual_seed(0)
    net = TwoTowerModel(TowerConfig(n_items=N_ITEMS, n_users=N_USERS, n_genres=4,
                                    user_field_sizes=fields, dim=16, hidden=24, pooling=pooling,
                                    history_length=LENGTH, use_user_id=use_user_id))
    with torch.no_grad():  # away from the initial values, which leave some terms at zero
        for parameter in net.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    net.items.known[::7] = False  # items never seen in training embed as zero
    return net.eval()


def windows(rng: np.random.Generator) -> list[np.ndarray]:
    """Empty, partial, full, and with items added after training (indices past the model's)."""
    full = rng.integers(0, N_ITEMS, LENGTH)
    partial = np.full(LENGTH, -1)
    partial[-3:] = rng.integers(0, N_ITEMS, 3)
    added = full.copy()
    added[[2, -1]] = [N_ITEMS, N_ITEMS + 4]
    return [np.full(LENGTH, -1), partial, full, added, np.where(full % 7 == 0, 0, full)]


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("use_user_id", [False, True])
@pytest.mark.parametrize("fields", [[3, 5], []])
def test_compiled_tower_equals_the_module(pooling, use_user_id, fields):
    net = model(pooling, use_user_id, fields)
    tower = RequestTower.of(net)
    rng = np.random.default_rng(1)
    for window in windows(rng):
        for user in (-1, 0, N_USERS - 1):
            categories = np.array([rng.integers(0, size + 1) for size in fields], dtype=np.int64)
            with torch.inference_mode():
                expected = net(torch.from_numpy(window[None]), torch.from_numpy(categories[None]),
                               torch.tensor([user]))[0].numpy()
            got = tower(window.astype(np.int64), categories, user)
            assert got.dtype == np.float32 and got.shape == expected.shape
            np.testing.assert_allclose(got, expected, atol=2e-6)
            assert abs(np.linalg.norm(got) - 1) < 1e-5


def test_the_user_id_changes_the_vector_only_when_embedded():
    rng = np.random.default_rng(2)
    window, categories = rng.integers(0, N_ITEMS, LENGTH), np.array([1, 2], dtype=np.int64)
    with_id = RequestTower.of(model("attention", True, [3, 5]))
    without = RequestTower.of(model("attention", False, [3, 5]))
    assert not np.allclose(with_id(window, categories, 0), with_id(window, categories, 1))
    assert np.array_equal(without(window, categories, 0), without(window, categories, 1))
