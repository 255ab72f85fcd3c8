"""The user tower for one live request, compiled with Numba from the trained weights.

The same arithmetic as ``UserTower.forward`` on one user (``recfunnel.retrieval.two_tower``):
pooled history, last item, demographic embeddings and the optional user id, then the MLP and a
unit vector. onnxruntime ran it kernel by kernel, each a dispatch of its own; in a server whose
caches go cold between requests, this one call costs less: the tower's stage took 0.11 against
0.18-0.25 ms a request with the caches swept (BENCHMARKS.md). The tests hold it to the PyTorch
module's output in every pooling mode, with and without the user id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recfunnel.compiled import compiled, float32
from recfunnel.retrieval.two_tower import POOLINGS, TwoTowerModel


@dataclass(frozen=True)
class RequestTower:
    """The user tower's weights as float32 arrays, laid out for :func:`_user_vector`."""

    id_embedding: np.ndarray  # [n_items + 1, d]; the last row is the zero vector
    known: np.ndarray  # [n_items] seen in training (others get the zero vector)
    fields: np.ndarray  # every demographic field's embedding table, stacked
    field_starts: np.ndarray  # [F] where each field's table starts in ``fields``
    user_id: np.ndarray  # [n_users, d]; [0, d] without user id embeddings
    position: np.ndarray  # [L, d]
    query: np.ndarray  # [d, d] (out, in)
    query_bias: np.ndarray
    decay: float  # the recency pooling's softplus(decay)
    pooling: int  # index into POOLINGS
    hidden: np.ndarray  # [hidden, parts * d] (out, in)
    hidden_bias: np.ndarray
    output: np.ndarray  # [d, hidden]
    output_bias: np.ndarray

    @classmethod
    def of(cls, model: TwoTowerModel) -> RequestTower:
        users, items, c = model.users, model.items, model.config
        tables = [float32(embedding.weight) for embedding in users.fields]
        return cls(
            float32(items.id_embedding.weight), items.known.numpy().copy(),
            np.concatenate(tables) if tables else np.zeros((0, c.dim), np.float32),
            np.cumsum([0] + [len(t) for t in tables[:-1]]).astype(np.int64),
            float32(users.user_id.weight) if users.user_id is not None
            else np.zeros((0, c.dim), np.float32),
            float32(users.position.weight), float32(users.query.weight),
            float32(users.query.bias), float(np.logaddexp(0.0, users.decay.item())),
            POOLINGS.index(c.pooling), float32(users.mlp[0].weight), float32(users.mlp[0].bias),
            float32(users.mlp[3].weight), float32(users.mlp[3].bias))

    def __call__(self, window: np.ndarray, categories: np.ndarray, user: int) -> np.ndarray:
        """The unit vector [d] of one user: ``window`` [L] their last items, right-aligned and -1
        padded; ``categories`` [F] their demographic codes; ``user`` their training index (-1
        for a user the model never saw)."""
        return _user_vector(window, categories, user, self.id_embedding, self.known,
                            self.fields, self.field_starts, self.user_id, self.position,
                            self.query, self.query_bias, self.decay, self.pooling, self.hidden,
                            self.hidden_bias, self.output, self.output_bias)


@compiled()
def _user_vector(window: np.ndarray, categories: np.ndarray, user: int, id_embedding: np.ndarray,
                 known: np.ndarray, fields: np.ndarray, field_starts: np.ndarray,
                 user_id: np.ndarray, position: np.ndarray, query: np.ndarray,
                 query_bias: np.ndarray, decay: float, pooling: int, hidden: np.ndarray,
                 hidden_bias: np.ndarray, output: np.ndarray,
                 output_bias: np.ndarray) -> np.ndarray:
    length, d = len(window), id_embedding.shape[1]
    n_items = len(known)
    history = np.empty((length, d), dtype=np.float32)
    weights = np.zeros(length, dtype=np.float32)
    for slot in range(length):
        item = window[slot]
        history[slot] = id_embedding[item if 0 <= item < n_items and known[item] else n_items]
        weights[slot] = 1.0 if item >= 0 else 0.0
    if pooling == 1:  # recency: older items count exponentially less
        for slot in range(length):
            weights[slot] *= np.float32(math.exp(-decay * (length - 1 - slot)))
    elif pooling == 2:  # attention: the last item asks which earlier ones matter now
        asked = query @ history[length - 1] + query_bias
        logits = (history @ asked + position @ asked) / np.float32(math.sqrt(d))
        for slot in range(length):
            if window[slot] < 0:
                logits[slot] = -1e9
        logits = np.exp(logits - logits.max())
        weights *= logits / logits.sum()
    weights /= max(weights.sum(), np.float32(1e-6))
    x = np.empty(hidden.shape[1], dtype=np.float32)
    x[:d] = weights @ history
    x[d:2 * d] = history[length - 1]
    for field in range(len(categories)):
        x[(2 + field) * d:(3 + field) * d] = fields[field_starts[field] + categories[field]]
    if len(user_id):
        start = (2 + len(categories)) * d
        x[start:start + d] = user_id[user] if user >= 0 else np.zeros(d, dtype=np.float32)
    h = hidden @ x + hidden_bias
    for unit in range(len(h)):  # GELU, exact (erf), as torch.nn.GELU()
        h[unit] = np.float32(0.5) * h[unit] * np.float32(1.0 + math.erf(h[unit] / math.sqrt(2.0)))
    vector = output @ h + output_bias
    return vector / max(np.float32(np.sqrt((vector * vector).sum())), np.float32(1e-12))
