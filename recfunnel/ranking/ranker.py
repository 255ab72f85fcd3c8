"""Training the ranking model on what serving sees: the retrieval stage's candidates for each
user, with the item the user actually watched next as the positive."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from recfunnel.data.history import History
from recfunnel.ranking.features import DENSE, ItemTable, candidate_features
from recfunnel.ranking.model import RankerNet, ranking_score
from recfunnel.retrieval.topk import PAD, rank_users
from recfunnel.retrieval.two_tower_recommender import TwoTower


@dataclass
class Queries:
    """One row per user: retrieval's candidates and what the features need about the user."""

    users: np.ndarray
    candidates: torch.Tensor  # [Q, C] item indices, retrieval order
    retrieval_scores: torch.Tensor  # [Q, C]
    user_vectors: torch.Tensor  # [Q, d]
    recent: torch.Tensor  # [Q, L]
    n_seen: torch.Tensor  # [Q]

    @classmethod
    def retrieve(cls, retrieval: TwoTower, history: History, users: np.ndarray,
                 n: int) -> Queries:
        """Top-``n`` unseen candidates of ``users`` from their visible ``history``."""
        users = np.asarray(users, dtype=np.int64)
        items, scores = rank_users(lambda b: retrieval.score(b, history), users, history.matrix,
                                   n, desc="retrieving candidates")
        scores[items == PAD] = scores[np.isfinite(scores)].min()
        with torch.no_grad():
            vectors = retrieval.user_vectors(users, history)
        return cls(users, torch.from_numpy(np.maximum(items, 0)), torch.from_numpy(scores),
                   vectors, retrieval.windows(users, history),
                   torch.from_numpy(history.lengths()[users].astype(np.int64)))

    def features(self, table: ItemTable, rows: Any = slice(None)) -> dict[str, torch.Tensor]:
        return candidate_features(table, self.user_vectors[rows], self.recent[rows],
                                  self.candidates[rows], self.retrieval_scores[rows],
                                  self.n_seen[rows])

    def positions(self, targets: pd.DataFrame) -> torch.Tensor:
        """Where each user's target item sits among their candidates; -1 when not retrieved."""
        target = dict(zip(targets["user"].tolist(), targets["item"].tolist()))
        wanted = torch.tensor([target[u] for u in self.users.tolist()]).unsqueeze(1)
        hit = self.candidates == wanted
        return torch.where(hit.any(1), hit.float().argmax(1), torch.tensor(-1))


class Ranker:
    """Reorders candidates by log P(watched) + ``liked_weight`` * log P(liked | watched)."""

    def __init__(self, hidden: int = 128, epochs: int = 40, batch_size: int = 64,
                 lr: float = 2e-3, weight_decay: float = 1e-4, liked_weight: float = 0.0,
                 patience: int = 6, seed: int = 0):
        self.hidden, self.epochs, self.batch_size = hidden, epochs, batch_size
        self.lr, self.weight_decay, self.liked_weight = lr, weight_decay, liked_weight
        self.patience, self.seed = patience, seed

    def fit(self, table: ItemTable, queries: Queries, targets: pd.DataFrame) -> Ranker:
        """``targets``: each user's next item and its ``rating`` (NaN when unknown)."""
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        positions = queries.positions(targets)
        rating = dict(zip(targets["user"].tolist(), targets.get("rating", pd.Series(
            np.nan, index=targets.index)).tolist()))
        liked = torch.tensor([rating[u] >= 4 if rating[u] == rating[u] else np.nan
                              for u in queries.users.tolist()], dtype=torch.float32)
        rows = np.flatnonzero(positions.numpy() >= 0)
        rng.shuffle(rows)
        n_valid = max(1, len(rows) // 10)
        valid, train = rows[:n_valid], rows[n_valid:]
        self.net_ = RankerNet(queries.user_vectors.shape[1], self.hidden)
        dense = queries.features(table, train)["dense"].reshape(-1, len(DENSE))
        self.net_.dense_mean.copy_(dense.mean(0))
        self.net_.dense_std.copy_(dense.std(0).clamp(min=1e-6))
        optimizer = torch.optim.AdamW(self.net_.parameters(), lr=self.lr,
                                      weight_decay=self.weight_decay)
        best, best_state, waited = -1.0, None, 0
        bar = tqdm(range(self.epochs), desc="training ranker", disable=None, leave=False)
        for epoch in bar:
            self.net_.train()
            order = rng.permutation(train)
            for lo in range(0, len(order), self.batch_size):
                batch = torch.from_numpy(order[lo:lo + self.batch_size])
                logits = self.net_(queries.features(table, batch))
                pos = positions[batch]
                loss = F.cross_entropy(logits[..., 0], pos)
                picked = logits[torch.arange(len(batch)), pos, 1]
                known = ~torch.isnan(liked[batch])
                if known.any():
                    loss = loss + F.binary_cross_entropy_with_logits(picked[known],
                                                                     liked[batch][known])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            ndcg = self._ndcg(table, queries, valid, positions[valid])
            bar.set_postfix(loss=f"{loss.item():.3f}", valid_ndcg10=f"{ndcg:.4f}")
            if ndcg > best:
                best, best_state, waited, self.best_epoch_ = ndcg, copy.deepcopy(
                    self.net_.state_dict()), 0, epoch
            else:
                waited += 1
                if waited >= self.patience:
                    break
        self.net_.load_state_dict(best_state)
        self.net_.eval()
        return self

    def _ndcg(self, table: ItemTable, queries: Queries, rows: np.ndarray,
              positions: torch.Tensor) -> float:
        scores = self.score(table, queries, rows)
        rank = (scores > scores.gather(1, positions.unsqueeze(1))).sum(1)
        return float(torch.where(rank < 10, 1 / torch.log2(rank.float() + 2), 0.0).mean())

    def score(self, table: ItemTable, queries: Queries, rows: Any = slice(None)) -> torch.Tensor:
        """Ranking scores [Q, C] of the candidates of ``queries`` (rows)."""
        self.net_.eval()
        with torch.no_grad():
            return ranking_score(self.net_(queries.features(table, rows)), self.liked_weight)

    def rerank(self, table: ItemTable, queries: Queries) -> tuple[np.ndarray, np.ndarray]:
        """Candidates sorted by ranking score, and the scores, [Q, C]."""
        out_items, out_scores = [], []
        for lo in range(0, len(queries.users), 256):
            rows = slice(lo, lo + 256)
            s = self.score(table, queries, rows)
            order = torch.argsort(s, dim=1, descending=True, stable=True)
            out_items.append(queries.candidates[rows].gather(1, order))
            out_scores.append(s.gather(1, order))
        return torch.cat(out_items).numpy(), torch.cat(out_scores).numpy()
