"""The compiled scoring network gives the PyTorch ranking network's logits."""

import numpy as np
import pytest
import torch

from recfunnel.ranking.features import DENSE
from recfunnel.ranking.model import RankerNet
from recfunnel.ranking.scoring_net import ScoringNet

DIM, HIDDEN, LENGTH, CANDIDATES = 16, 24, 6, 9


def network() -> RankerNet:
    torch.manual_seed(0)
    net = RankerNet(DIM, HIDDEN)
    with torch.no_grad():  # away from the initial values, which leave some terms at zero
        for parameter in net.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
        net.dense_mean.copy_(torch.randn(len(DENSE)))
        net.dense_std.copy_(torch.rand(len(DENSE)) + 0.5)
    return net.eval()


def inputs(rng: np.random.Generator, queries: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Queries with a full history, a partial one, none, and one history item."""
    mask = np.ones((queries, LENGTH), dtype=bool)
    mask[1 % queries, :3] = False
    mask[2 % queries] = False
    mask[3 % queries, :-1] = False
    return {"user": rng.standard_normal((queries, DIM)).astype(np.float32),
            "items": scale * rng.standard_normal((queries, CANDIDATES, DIM)).astype(np.float32),
            "history": scale * rng.standard_normal((queries, LENGTH, DIM)).astype(np.float32),
            "history_mask": mask,
            "dense": rng.standard_normal((queries, CANDIDATES, len(DENSE))).astype(np.float32)}


@pytest.mark.parametrize("queries", [1, 4])
@pytest.mark.parametrize("scale", [0.3, 2.0])  # scale 2: similarities below -1 beside masked slots
def test_compiled_network_equals_the_module(queries, scale):
    net = network()
    features = inputs(np.random.default_rng(queries), queries, scale)
    with torch.inference_mode():
        expected = net(**{k: torch.from_numpy(v) for k, v in features.items()}).numpy()
    got = ScoringNet.of(net)(**features)
    assert got.dtype == np.float32 and got.shape == (queries, CANDIDATES, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_a_query_scores_the_same_alone_and_with_others():
    net = ScoringNet.of(network())
    features = inputs(np.random.default_rng(5), 4)
    together = net(**features)
    for q in range(4):
        alone = net(**{k: v[q:q + 1] for k, v in features.items()})
        np.testing.assert_array_equal(alone[0], together[q])
