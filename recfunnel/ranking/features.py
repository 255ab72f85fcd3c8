"""Ranking features of (user, candidate) pairs: one function for a training batch and a live
request alike.

Per candidate: its two-tower item vector, the user vector, the history's item vectors (for target
attention in the model), and dense features: retrieval score and rank within the slate, item
popularity and age, the user's genre affinity for it, and how much history the user has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recfunnel.data.dataset import Dataset

DENSE = ("retrieval_score", "retrieval_rank", "popularity", "age", "genre_affinity", "activity")


@dataclass
class ItemTable:
    """Per-item inputs of the ranking features; row ``i`` is item ``i``."""

    vectors: torch.Tensor  # [n, d] two-tower item vectors
    popularity: torch.Tensor  # [n] log(1 + interactions in the visible history)
    age: torch.Tensor  # [n] years before the newest release, 0 where unknown
    genres: torch.Tensor  # [n, G] multi-hot

    @classmethod
    def build(cls, dataset: Dataset, counts: np.ndarray, vectors: np.ndarray) -> ItemTable:
        year = dataset.items["year"].to_numpy(dtype=np.float64) if "year" in dataset.items \
            else np.full(dataset.n_items, np.nan)
        age = np.nan_to_num(np.nanmax(year) - year, nan=0.0) if np.isfinite(year).any() \
            else np.zeros(len(year))
        return cls(torch.from_numpy(np.asarray(vectors, dtype=np.float32)),
                   torch.from_numpy(np.log1p(counts).astype(np.float32)),
                   torch.from_numpy(age.astype(np.float32)),
                   torch.from_numpy(dataset.genre_matrix().toarray().astype(np.float32)))


def candidate_features(table: ItemTable, user_vectors: torch.Tensor, recent: torch.Tensor,
                       candidates: torch.Tensor, retrieval_scores: torch.Tensor,
                       n_seen: torch.Tensor) -> dict[str, torch.Tensor]:
    """``user_vectors`` [B, d]; ``recent`` [B, L] the last items, -1 padded (``history_window``);
    ``candidates`` and ``retrieval_scores`` [B, C]; ``n_seen`` [B] items in the whole history."""
    mask = recent >= 0
    safe_recent = recent.clamp(min=0)
    history = table.vectors[safe_recent] * mask.unsqueeze(-1)
    profile = (table.genres[safe_recent] * mask.unsqueeze(-1)).sum(1)
    profile = profile / profile.sum(-1, keepdim=True).clamp(min=1.0)
    item_genres = table.genres[candidates]
    affinity = (item_genres @ profile.unsqueeze(-1)).squeeze(-1) / item_genres.sum(-1).clamp(min=1.0)
    rank = torch.argsort(torch.argsort(-retrieval_scores, dim=1), dim=1).float()
    dense = torch.stack([
        retrieval_scores, torch.log1p(rank), table.popularity[candidates], table.age[candidates] / 10,
        affinity, torch.log1p(n_seen.float()).unsqueeze(1).expand_as(retrieval_scores)], dim=-1)
    return {"user": user_vectors, "items": table.vectors[candidates], "history": history,
            "history_mask": mask, "dense": dense}
