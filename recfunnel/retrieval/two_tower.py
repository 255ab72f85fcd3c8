"""The two-tower model: a user tower and an item tower that map into one vector space.

Item tower: id embedding + genres + release year + title words -> MLP -> unit vector. An item never
seen in training has its id embedding masked to zero, so it is embedded from content alone.
User tower: pooled history (the item tower's id embeddings; mean, recency-weighted or attention)
+ demographic embeddings + optional user id embedding -> MLP -> unit vector.
The score of a (user, item) pair is the dot product of the two vectors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recfunnel.retrieval.features import TITLE_BUCKETS, YEAR_BUCKETS

POOLINGS = ("mean", "recency", "attention")  # of the user's history


@dataclass
class TowerConfig:
    n_items: int
    n_users: int
    n_genres: int
    user_field_sizes: list[int]  # number of known values per demographic field
    dim: int = 64
    hidden: int = 128
    pooling: str = "attention"  # one of POOLINGS
    history_length: int = 20
    use_user_id: bool = False
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


def mlp(d_in: int, hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, d_out))


class ItemTower(nn.Module):
    def __init__(self, c: TowerConfig):
        super().__init__()
        self.n_items = c.n_items
        # the extra last row is a fixed zero vector for padding and for items unseen in training
        self.id_embedding = nn.Embedding(c.n_items + 1, c.dim, padding_idx=c.n_items)
        self.genres = nn.Linear(c.n_genres, c.dim, bias=False)
        self.year = nn.Embedding(len(YEAR_BUCKETS) + 2, c.dim)
        self.title = nn.EmbeddingBag(TITLE_BUCKETS, c.dim, mode="mean", padding_idx=0)
        self.mlp = mlp(4 * c.dim, c.hidden, c.dim, c.dropout)
        self.register_buffer("known", torch.ones(c.n_items, dtype=torch.bool))  # seen in training
        nn.init.normal_(self.id_embedding.weight, std=0.05)
        with torch.no_grad():
            self.id_embedding.weight[c.n_items] = 0.0

    def ids(self, items: torch.Tensor) -> torch.Tensor:
        """Id embeddings, zero for items unseen in training (padding ``-1``, and items added to the
        catalog after training, whose indices are ``>= n_items``)."""
        safe = items.clamp(min=0, max=self.n_items - 1)
        keep = (items >= 0) & (items < self.n_items) & self.known[safe]
        return self.id_embedding(torch.where(keep, safe, self.n_items))

    def content_only(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Unit vectors of items known only by their features (new items)."""
        n = len(features["year"])
        return self.embed(self.id_embedding.weight[self.n_items].expand(n, -1), features)

    def forward(self, items: torch.Tensor, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Unit vectors for catalog ``items``; ``features`` are rows of the catalog's item features."""
        return self.embed(self.ids(items), features)

    def embed(self, id_vectors: torch.Tensor, features: dict[str, torch.Tensor]) -> torch.Tensor:
        title = self.title(features["title"])
        x = torch.cat([id_vectors, self.genres(features["genres"]), self.year(features["year"]),
                       title], dim=-1)
        return F.normalize(self.mlp(x), dim=-1)


class UserTower(nn.Module):
    def __init__(self, c: TowerConfig):
        super().__init__()
        self.config = c
        self.fields = nn.ModuleList(nn.Embedding(size + 1, c.dim) for size in c.user_field_sizes)
        self.user_id = nn.Embedding(c.n_users, c.dim) if c.use_user_id else None
        self.position = nn.Embedding(c.history_length, c.dim)
        self.query = nn.Linear(c.dim, c.dim)
        self.decay = nn.Parameter(torch.tensor(0.1))
        n_parts = 2 + len(c.user_field_sizes) + int(c.use_user_id)
        self.mlp = mlp(n_parts * c.dim, c.hidden, c.dim, c.dropout)

    def pool(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, L, d] right-aligned history vectors -> [B, d]; ``mask`` marks real items."""
        c = self.config
        weights = mask.float()
        if c.pooling == "recency":
            age = torch.arange(c.history_length - 1, -1, -1, device=history.device).float()
            weights = weights * torch.exp(-F.softplus(self.decay) * age)
        elif c.pooling == "attention":
            # keys are history + position embeddings; the most recent item asks which earlier
            # items matter now. (h + p) . q is split in two so the [B, L, d] keys are never built.
            query = self.query(history[:, -1])
            logits = ((history * query.unsqueeze(1)).sum(-1)
                      + query @ self.position.weight.T) / c.dim ** 0.5
            weights = torch.softmax(logits.masked_fill(~mask, -1e9), dim=-1) * weights
        elif c.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {c.pooling!r}; choose one of {POOLINGS}")
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-6)
        return (history * weights.unsqueeze(-1)).sum(dim=1)  # faster on CPU than bmm here

    def forward(self, history_vectors: torch.Tensor, history: torch.Tensor,
                categories: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        mask = history >= 0
        parts = [self.pool(history_vectors, mask), history_vectors[:, -1]]
        parts += [emb(categories[:, j]) for j, emb in enumerate(self.fields)]
        if self.user_id is not None and users is not None:
            parts.append(self.user_id(users.clamp(min=0)) * (users >= 0).unsqueeze(-1))
        return F.normalize(self.mlp(torch.cat(parts, dim=-1)), dim=-1)


class TwoTowerModel(nn.Module):
    def __init__(self, config: TowerConfig):
        super().__init__()
        self.config = config
        self.items = ItemTower(config)
        self.users = UserTower(config)

    def forward(self, history: torch.Tensor, categories: torch.Tensor,
                users: torch.Tensor | None = None) -> torch.Tensor:
        """User vectors: ``history`` [B, L] item indices (-1 pads), ``categories`` [B, F],
        ``users`` [B] (-1 for a user unknown to training)."""
        return self.users(self.items.ids(history), history, categories, users)

    def user_vectors(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self(batch["history"], batch["categories"], batch.get("users"))

    def item_vectors(self, items: torch.Tensor, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.items(items, {k: v[items] for k, v in features.items()})
