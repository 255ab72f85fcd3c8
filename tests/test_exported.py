"""Networks exported to onnxruntime compute what the PyTorch module computes, for any size along
the axes declared dynamic, and survive a round trip through the saved bytes."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from recfunnel.exported import ExportedModel


class Scorer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.linear = nn.Linear(4, 1)

    def forward(self, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.linear(self.embedding(items)).squeeze(-1) * weights


@pytest.fixture(scope="module")
def scorer():
    torch.manual_seed(0)
    module = Scorer()
    # an example of size 1 along both dynamic axes: the export must not fix them to 1
    example = {"items": torch.tensor([[3]]), "weights": torch.ones(1, 1)}
    axes = {"items": {0: "rows", 1: "cols"}, "weights": {0: "rows", 1: "cols"}}
    return module, ExportedModel.export(module, example, axes)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 3)])
def test_exported_model_equals_the_module_for_any_dynamic_size(scorer, shape):
    module, exported = scorer
    items = torch.randint(0, 10, shape)
    weights = torch.rand(shape)
    with torch.no_grad():
        expected = module(items, weights).numpy()
    got = exported(items=items, weights=weights.numpy())  # tensors or arrays alike
    assert got.shape == shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_saved_graph_loads_into_the_same_model(scorer):
    _, exported = scorer
    loaded = ExportedModel.from_array(exported.to_array())
    items, weights = np.array([[1, 2, 9]]), np.array([[1.0, 0.5, 2.0]], dtype=np.float32)
    np.testing.assert_array_equal(loaded(items=items, weights=weights),
                                  exported(items=items, weights=weights))


def test_int8_export_keeps_the_module_close_with_integer_products(scorer):
    module, _ = scorer
    example = {"items": torch.tensor([[3]]), "weights": torch.ones(1, 1)}
    axes = {"items": {0: "rows", 1: "cols"}, "weights": {0: "rows", 1: "cols"}}
    int8 = ExportedModel.export(module, example, axes, int8=True)
    ops = {node.op_type for node in onnx.load_from_string(int8.graph).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    items, weights = torch.randint(0, 10, (5, 3)), torch.rand(5, 3)
    with torch.no_grad():
        expected = module(items, weights).numpy()
    got = int8(items=items, weights=weights.numpy())
    np.testing.assert_allclose(got, expected, atol=0.02 * np.abs(expected).max())
