"""Trained networks on the request path run in onnxruntime, exported once from PyTorch.

At batch size 1 a network of a few dozen small operators spends its time dispatching operators,
not computing, and onnxruntime dispatches far less per operator than PyTorch (the tower's stage
of a request: 0.50 -> 0.20 ms p50 against TorchScript, BENCHMARKS.md). The graph is kept as
bytes, so a saved model carries it and a server never exports again.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn


class ExportedModel:
    """An ONNX graph run by onnxruntime on one thread; called with the keyword inputs the
    PyTorch module takes, it returns the module's (single) output as a NumPy array."""

    def __init__(self, graph: bytes):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one request, one thread (as for FAISS)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.graph = graph
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    @classmethod
    def export(cls, module: nn.Module, example: dict[str, torch.Tensor],
               dynamic: dict[str, dict[int, str]] | None = None,
               int8: bool = False) -> ExportedModel:
        """Export ``module`` (called as ``module(**example)``) in eval mode. ``dynamic`` names the
        axes whose size varies (input -> {axis: name}; axes sharing a name share a size).
        ``int8``: matrix products with 8-bit weights, and activations quantised as they come
        (onnxruntime's dynamic quantisation)."""
        dims: dict[str, torch.export.Dim] = {}
        shapes = None
        if dynamic:
            shapes = {name: {axis: dims.setdefault(label, torch.export.Dim(label))
                             for axis, label in dynamic.get(name, {}).items()}
                      for name in example}
            example = _widen(example, dynamic)
        module.eval()
        # the exporter reports its steps on stdout and, through logging, operators of packages
        # that are not installed (torchvision); neither concerns the user
        exporter_log = logging.getLogger("torch.onnx")
        level = exporter_log.level
        exporter_log.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(module, (), kwargs=example, dynamo=True,
                                            dynamic_shapes=shapes, optimize=True, verbose=False)
        finally:
            exporter_log.setLevel(level)
        return cls(_int8(program.model_proto) if int8 else program.model_proto.SerializeToString())

    def __call__(self, **inputs: torch.Tensor | np.ndarray) -> np.ndarray:
        feed = {name: np.asarray(inputs[name]) for name in self.inputs}
        return self.session.run(None, feed)[0]

    def to_array(self) -> np.ndarray:
        """The graph as a uint8 array, to be saved beside the weights."""
        return np.frombuffer(self.graph, dtype=np.uint8).copy()

    @classmethod
    def from_array(cls, array: np.ndarray) -> ExportedModel:
        return cls(np.asarray(array, dtype=np.uint8).tobytes())


def _int8(graph: Any) -> bytes:
    """``graph`` (an ONNX ``ModelProto``) with 8-bit weights in its matrix products, as bytes."""
    # imported here: it imports onnx, 0.7 s that a server loading saved graphs does not need
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the quantiser advises, on the root logger, a pre-processing pass that changes nothing here
    quantizer_log = logging.getLogger()
    level = quantizer_log.level
    quantizer_log.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "int8.onnx"
            quantize_dynamic(graph, path, op_types_to_quantize=["MatMul", "Gemm"],
                             weight_type=QuantType.QInt8)
            return path.read_bytes()
    finally:
        quantizer_log.setLevel(level)


def _widen(example: dict[str, torch.Tensor],
           dynamic: dict[str, dict[int, str]]) -> dict[str, torch.Tensor]:
    """The example repeated along dynamic axes of size 1: the exporter would otherwise fix
    them to 1."""
    wide = {}
    for name, value in example.items():
        for axis in dynamic.get(name, {}):
            if value.shape[axis] < 2:
                value = torch.cat([value, value], dim=axis)
        wide[name] = value
    return wide
