"""The ranking network: target attention over the history (DIN-style) plus an MLP over the
candidate's embedding, its interaction with the user vector and the dense features. Two heads:
"interacted" (softmax over the user's candidates) and "liked" (rating >= 4, given interacted)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recfunnel.ranking.features import DENSE


class RankerNet(nn.Module):
    def __init__(self, dim: int, hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.dim = dim
        self.attention = nn.Linear(dim, dim, bias=False)
        self.register_buffer("dense_mean", torch.zeros(len(DENSE)))
        self.register_buffer("dense_std", torch.ones(len(DENSE)))
        self.mlp = nn.Sequential(nn.Linear(4 * dim + len(DENSE) + 1, hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, hidden // 2), nn.ReLU(),
                                 nn.Linear(hidden // 2, 2))

    def forward(self, user: torch.Tensor, items: torch.Tensor, history: torch.Tensor,
                history_mask: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """Logits [B, C, 2]: interacted, liked (inputs: ``candidate_features``)."""
        mask, keys = history_mask.unsqueeze(1), history.transpose(1, 2)  # [B, 1, L], [B, d, L]
        # the candidate asks which past items speak for it
        logits = self.attention(items) @ keys / self.dim ** 0.5  # [B, C, L]
        weights = torch.softmax(logits.masked_fill(~mask, -1e9), -1) * mask
        attended = weights @ history
        closest = (items @ keys).masked_fill(~mask, -1).max(-1, keepdim=True).values
        user = user.unsqueeze(1).expand_as(items)
        dense = (dense - self.dense_mean) / self.dense_std
        x = torch.cat([items, user * items, attended, attended * items, dense, closest], dim=-1)
        return self.mlp(x)


def ranking_score(logits: np.ndarray, liked_weight: float) -> np.ndarray:
    """log P(interacted) + liked_weight * log P(liked | interacted), per candidate."""
    interacted = logits[..., 0]
    shifted = interacted - interacted.max(axis=-1, keepdims=True)
    scores = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # log softmax
    if liked_weight:
        scores += liked_weight * -np.logaddexp(0.0, -logits[..., 1])  # log sigmoid
    return scores
