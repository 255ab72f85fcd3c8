"""Every retrieval loss in one place.

- Sampled softmax over in-batch negatives with a temperature; a candidate that is the same item as
  the row's positive (an "accidental hit") is masked out.
- logQ correction (Yi et al., RecSys 2019): each candidate's logit is lowered by the log of how often
  it is expected among the candidates, so popular items are not punished for being sampled often.
  The sampling probability comes from counts or from :class:`StreamingFrequency`.
- Mixed negatives (Yang et al., WWW 2020): uniformly sampled catalog items join the in-batch ones.
- Hard negatives: extra candidates chosen as the highest-scoring non-positives.
- Binary cross-entropy ("interacted or not", the seed's formulation) with sampled negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEG_INF = -1e9


def sampled_softmax_loss(
    users: torch.Tensor,
    candidates: torch.Tensor,
    candidate_ids: torch.Tensor,
    positive_ids: torch.Tensor,
    *,
    temperature: float = 0.05,
    log_q: torch.Tensor | None = None,
    row_negatives: torch.Tensor | None = None,
    row_negative_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of each user against candidate items where row ``i``'s positive is column ``i``.

    ``users`` [B, d]; ``candidates`` [C, d] shared by all rows, C >= B, the first B being the
    batch's positives, then any extra (e.g. uniformly sampled) negatives; ``candidate_ids`` [C];
    ``positive_ids`` [B]; ``log_q`` [C] log of each candidate's expected count in the candidate set
    (None: no correction). ``row_negatives`` [B, H, d] are each row's own hard negatives; one that
    is the row's positive is masked, the false-negative guard's last line.
    """
    logits = users @ candidates.T / temperature
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)
    batch = torch.arange(len(users), device=users.device)
    accidental = candidate_ids.unsqueeze(0) == positive_ids.unsqueeze(1)
    accidental[batch, batch] = False
    logits = logits.masked_fill(accidental, NEG_INF)
    if row_negatives is not None:
        own = torch.einsum("bd,bhd->bh", users, row_negatives) / temperature
        own = own.masked_fill(row_negative_ids == positive_ids.unsqueeze(1), NEG_INF)
        logits = torch.cat([logits, own], dim=1)
    return F.cross_entropy(logits, batch)


def binary_loss(users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                temperature: float = 0.05) -> torch.Tensor:
    """BCE: each (user, positive) pair is labelled 1, each (user, sampled negative) 0.
    ``negatives`` [B, N, d] per row."""
    pos = (users * positives).sum(-1) / temperature
    neg = torch.einsum("bd,bnd->bn", users, negatives) / temperature
    return (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) +
            F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="none")
            .sum(-1).mean())


def mine_hard_negatives(scores: torch.Tensor, positives: torch.Tensor, k: int,
                        skip_top: int = 0) -> torch.Tensor:
    """The ``k`` highest-scoring items per row that are not positives, after skipping the
    ``skip_top`` best of those (the likeliest false negatives: unlabelled items the user would like).

    ``scores`` [B, N]; ``positives`` [B, N] bool marks every item known to be positive for the row.
    """
    masked = scores.masked_fill(positives, float("-inf"))
    top = masked.topk(skip_top + k, dim=1).indices
    return top[:, skip_top:]


class StreamingFrequency:
    """Sampling probability of items in a stream, without knowing the vocabulary in advance
    (Yi et al., RecSys 2019): per hashed id, the last step it was seen (A) and a moving average of the
    gap between sightings (B); the item's probability per step is estimated as 1 / B."""

    def __init__(self, buckets: int = 1 << 20, alpha: float = 0.01):
        self.buckets = buckets
        self.alpha = alpha
        self.last_seen = torch.zeros(buckets)
        self.gap = torch.full((buckets,), float(buckets))

    def update(self, ids: torch.Tensor, step: int) -> None:
        """Record the items of batch number ``step`` (counting from 1)."""
        h = torch.unique(ids % self.buckets)
        seen = self.last_seen[h]
        gap = torch.where(seen > 0, step - seen, self.gap[h])
        self.gap[h] = (1 - self.alpha) * self.gap[h] + self.alpha * gap
        self.last_seen[h] = float(step)

    def probability(self, ids: torch.Tensor) -> torch.Tensor:
        """Estimated probability that an item appears in one batch."""
        return 1.0 / self.gap[ids % self.buckets].clamp(min=1.0)
