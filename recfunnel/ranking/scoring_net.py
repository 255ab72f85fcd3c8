"""The ranking network's forward pass for scoring, compiled with Numba from the trained weights.

It computes what ``RankerNet.forward`` computes (``recfunnel.ranking.model``), in float32, with
its first layer taken apart so that a query does less arithmetic: the layer's input is
``[item, user * item, attended, attended * item, dense, closest]``, and

- ``item @ W_item + (user * item) @ W_user`` is ``item @ (W_item + user[:, None] * W_user)``, one
  product with a matrix built once per query;
- ``attended @ W_attended`` is ``weights @ (history @ W_attended)``: the history has 20 rows, the
  candidates 100;
- the attention logits ``(item @ A.T) @ history.T`` are ``item @ (A.T @ history.T)``.

A query of 100 candidates and 20 history items then takes 3.4 million multiply-adds against 5.1,
in one call. onnxruntime ran the network kernel by kernel, with 8-bit matrix products; in a
server whose caches go cold between requests, this call costs less, and it scores with the
network's own float weights (BENCHMARKS.md). ``tests/ranking/test_scoring_net.py`` holds it to
the PyTorch module's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recfunnel.compiled import compiled, float32
from recfunnel.ranking.model import RankerNet


@dataclass(frozen=True)
class ScoringNet:
    """The network's weights as float32 arrays, laid out (input, output) for :func:`_logits`."""

    attention: np.ndarray  # [d, d]: A.T
    dense_mean: np.ndarray
    dense_std: np.ndarray
    item: np.ndarray  # [d, hidden]: the first layer's rows for each part of its input
    user_item: np.ndarray
    attended: np.ndarray
    attended_item: np.ndarray
    extra: np.ndarray  # [len(DENSE) + 1, hidden]: dense features, then "closest"
    bias: np.ndarray
    second: np.ndarray  # [hidden, hidden // 2]
    second_bias: np.ndarray
    output: np.ndarray  # [hidden // 2, 2]
    output_bias: np.ndarray

    @classmethod
    def of(cls, net: RankerNet) -> ScoringNet:
        d = net.dim
        first = float32(net.mlp[0].weight).T  # [4d + len(DENSE) + 1, hidden]
        part = [np.ascontiguousarray(first[i * d:(i + 1) * d]) for i in range(4)]
        return cls(float32(net.attention.weight).T.copy(), float32(net.dense_mean),
                   float32(net.dense_std), *part, np.ascontiguousarray(first[4 * d:]),
                   float32(net.mlp[0].bias), float32(net.mlp[3].weight).T.copy(),
                   float32(net.mlp[3].bias), float32(net.mlp[5].weight).T.copy(),
                   float32(net.mlp[5].bias))

    def __call__(self, user: np.ndarray, items: np.ndarray, history: np.ndarray,
                 history_mask: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """Logits [Q, C, 2] (interacted, liked) from ``candidate_features``' inputs."""
        def f32(x: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(x, dtype=np.float32)

        return _logits(f32(user), f32(items), f32(history), np.ascontiguousarray(history_mask),
                       f32(dense), self.attention, self.dense_mean, self.dense_std, self.item,
                       self.user_item, self.attended, self.attended_item, self.extra,
                       self.bias, self.second, self.second_bias, self.output, self.output_bias)


@compiled()
def _logits(user: np.ndarray, items: np.ndarray, history: np.ndarray, mask: np.ndarray,
            dense: np.ndarray, attention: np.ndarray, dense_mean: np.ndarray,
            dense_std: np.ndarray, w_item: np.ndarray, w_user_item: np.ndarray,
            w_attended: np.ndarray, w_attended_item: np.ndarray, w_extra: np.ndarray,
            bias: np.ndarray, second: np.ndarray, second_bias: np.ndarray, output: np.ndarray,
            output_bias: np.ndarray) -> np.ndarray:
    n_queries, n_candidates, d = items.shape
    length, n_dense = history.shape[1], dense.shape[2]
    out = np.empty((n_queries, n_candidates, output.shape[1]), dtype=np.float32)
    weights = np.empty((n_candidates, length), dtype=np.float32)
    extra = np.empty((n_candidates, n_dense + 1), dtype=np.float32)
    keys = np.empty((d, 2 * length), dtype=np.float32)
    for q in range(n_queries):
        past, candidates = history[q], items[q]
        # one product gives each candidate's attention logits and its similarities to the past
        keys[:, length:] = past.T
        keys[:, :length] = (attention @ np.ascontiguousarray(past.T)) / np.float32(math.sqrt(d))
        products = candidates @ keys
        for c in range(n_candidates):
            top, closest = np.float32(-np.inf), np.float32(-np.inf)
            for slot in range(length):
                if mask[q, slot]:
                    top = max(top, products[c, slot])
                    closest = max(closest, products[c, length + slot])
                else:  # as the module's masked_fill(~mask, -1) before its max
                    closest = max(closest, np.float32(-1.0))
            total = np.float32(0.0)
            for slot in range(length):
                weight = (np.float32(math.exp(products[c, slot] - top)) if mask[q, slot]
                          else np.float32(0.0))
                weights[c, slot] = weight
                total += weight
            if total > 0:  # no history: the module's softmax times an all-False mask, zeros
                weights[c] /= total
            extra[c, :n_dense] = (dense[q, c] - dense_mean) / dense_std
            extra[c, n_dense] = closest
        attended = weights @ past
        hidden = (candidates @ (w_item + user[q].reshape(-1, 1) * w_user_item)
                  + weights @ (past @ w_attended) + (attended * candidates) @ w_attended_item
                  + extra @ w_extra + bias)
        hidden = np.maximum(hidden, np.float32(0.0))
        hidden = np.maximum(hidden @ second + second_bias, np.float32(0.0))
        out[q] = hidden @ output + output_bias
    return out
