"""Training the ranking model on what serving sees: the retrieval stage's candidates for each
user, with the item the user actually watched next as the positive."""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from recfunnel.data.history import History
from recfunnel.index.candidates import CandidateGenerator
from recfunnel.ranking.features import ItemTable, candidate_features
from recfunnel.ranking.model import RankerNet, ranking_score
from recfunnel.ranking.scoring_net import ScoringNet
from recfunnel.retrieval.topk import PAD
from recfunnel.retrieval.two_tower_recommender import TwoTower


@dataclass
class Queries:
    """One row per (user, moment): retrieval's candidates and what the features need about the
    user; for training, also the item watched next and its rating."""

    users: np.ndarray
    candidates: np.ndarray  # [Q, C] item indices in retrieval order; PAD slots hold item 0
    real: np.ndarray  # [Q, C] False where retrieval had fewer than C unseen items
    retrieval_scores: np.ndarray  # [Q, C]
    user_vectors: np.ndarray  # [Q, d]
    recent: np.ndarray  # [Q, L]
    activity: np.ndarray  # [Q] how many items the visible history holds
    sources: np.ndarray  # [Q, C] each candidate's source, an index into SOURCES; -1 on PAD
    cooccurrence: np.ndarray  # [Q, C] each candidate's co-occurrence with the history
    targets: np.ndarray | None = None  # [Q] the next item
    ratings: np.ndarray | None = None  # [Q] its rating, NaN when unknown

    @classmethod
    def generate(cls, generator: CandidateGenerator, retrieval: TwoTower, history: History,
                 users: np.ndarray, n: int, next_items: pd.DataFrame | None = None) -> Queries:
        """Up to ``n`` candidates of ``users`` from the candidate sources, as a live request
        gets them, given their visible ``history``; ``next_items`` (one row per user, in the
        order of ``users``: item, optional rating) labels them for training."""
        users = np.asarray(users, dtype=np.int64)
        with torch.no_grad():
            vectors = retrieval.user_vectors(users, history).numpy()
        windows, seen = retrieval.windows(users, history), history.matrix[users]
        found = generator.lists(vectors, windows, seen, n)
        return cls.of(users, found.items, found.sources, found.cooccurrence,
                      generator.item_vectors, vectors, windows, np.diff(seen.indptr), next_items)

    @classmethod
    def of(cls, users: np.ndarray, items: np.ndarray, sources: np.ndarray,
           cooccurrence: np.ndarray, item_vectors: np.ndarray, user_vectors: np.ndarray,
           windows: np.ndarray, activity: np.ndarray,
           next_items: pd.DataFrame | None = None) -> Queries:
        """Queries over candidate ``items`` [Q, C] (PAD padded) of the given ``sources``, with
        their ``cooccurrence`` (:class:`Candidates`); the retrieval score is the two towers'
        inner product, whichever source found the item."""
        real = items != PAD
        candidates = np.where(real, items, 0)
        scores = np.matmul(item_vectors[candidates], user_vectors[:, :, None])[..., 0]
        scores[~real] = 0.0
        targets = ratings = None
        if next_items is not None:
            targets = next_items["item"].to_numpy(dtype=np.int64)
            ratings = (next_items["rating"].to_numpy(dtype=np.float64) if "rating" in next_items
                       else np.full(len(users), np.nan))
        return cls(users, candidates, real, scores, user_vectors, windows, activity, sources,
                   cooccurrence, targets, ratings)

    @classmethod
    def concat(cls, parts: list[Queries]) -> Queries:
        def join(name: str) -> Any:
            values = [getattr(p, name) for p in parts]
            return None if values[0] is None else np.concatenate(values)
        return cls(**{f.name: join(f.name) for f in fields(cls)})

    def __len__(self) -> int:
        return len(self.users)

    def features(self, table: ItemTable, rows: Any = None) -> dict[str, np.ndarray]:
        """Ranking features of the queries at ``rows`` (default: all, without copying)."""
        inputs = (self.user_vectors, self.recent, self.activity, self.candidates,
                  self.retrieval_scores, self.cooccurrence)
        return candidate_features(table, *(x if rows is None else x[rows] for x in inputs))

    def positions(self) -> np.ndarray:
        """Where each query's target sits among its candidates; -1 when it was not retrieved."""
        hit = (self.candidates == self.targets[:, None]) & self.real
        return np.where(hit.any(1), hit.argmax(1), -1)


class Ranker:
    """Reorders candidates by log P(watched) + ``liked_weight`` * log P(liked | watched).

    Each training step scores the positive and ``train_candidates - 1`` other candidates of the
    same slate, drawn uniformly (features are built over the whole slate first, so rank features
    mean what they mean at serving time)."""

    def __init__(self, hidden: int = 128, epochs: int = 20, batch_size: int = 64,
                 lr: float = 2e-3, weight_decay: float = 1e-4, liked_weight: float = 0.0,
                 train_candidates: int = 128, patience: int = 4, seed: int = 0):
        self.hidden, self.epochs, self.batch_size = hidden, epochs, batch_size
        self.lr, self.weight_decay, self.liked_weight = lr, weight_decay, liked_weight
        self.train_candidates, self.patience, self.seed = train_candidates, patience, seed

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def fit(self, table: ItemTable, queries: Queries) -> Ranker:
        """Train on labelled ``queries``; early stopping on the NDCG@10 of a tenth of the users.
        Torch's global random stream is left as it was: what trains next (``fit``'s retrieval
        refit) does not change with the ranker."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self._fit(table, queries)

    def _fit(self, table: ItemTable, queries: Queries) -> Ranker:
        rng = np.random.default_rng(self.seed)
        positions = queries.positions()
        liked = torch.from_numpy(np.where(np.isnan(queries.ratings), np.nan,
                                          queries.ratings >= 4).astype(np.float32))
        users = np.unique(queries.users)
        held = np.isin(queries.users, rng.choice(users, max(1, len(users) // 10), replace=False))
        rows = positions >= 0
        valid, train = np.flatnonzero(rows & held), np.flatnonzero(rows & ~held)
        self.net_ = RankerNet(queries.user_vectors.shape[1], self.hidden)
        self.training_, self.scoring_net_ = True, None
        dense = torch.from_numpy(queries.features(table, train[:2048])["dense"]).flatten(0, 1)
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
                batch = order[lo:lo + self.batch_size]
                features, pos = self._sample(queries.features(table, batch), positions[batch],
                                             queries.real[batch])
                logits = self.net_(**features)
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
        self.valid_ndcg_ = best
        self.net_.load_state_dict(best_state)
        self.net_.eval()
        self.training_ = False
        return self

    def _sample(self, features: dict[str, np.ndarray], positions: np.ndarray,
                real: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The network's inputs for the positive (first) and uniformly drawn other real
        candidates of each slate."""
        width = min(self.train_candidates, real.shape[1])
        draw = torch.rand(real.shape).masked_fill(~torch.from_numpy(real), -1.0)
        draw[torch.arange(len(positions)), torch.from_numpy(positions)] = 2.0
        keep = draw.topk(width, dim=1).indices
        picked = {name: torch.from_numpy(value) for name, value in features.items()}
        for name in ("items", "dense"):
            value = picked[name]
            picked[name] = value.gather(1, keep.unsqueeze(-1).expand(-1, -1, value.shape[-1]))
        return picked, torch.zeros(len(positions), dtype=torch.long)

    def _ndcg(self, table: ItemTable, queries: Queries, rows: np.ndarray,
              positions: np.ndarray) -> float:
        scores = self.score(table, queries, rows)
        rank = (scores > np.take_along_axis(scores, positions[:, None], 1)).sum(1)
        return float(np.where(rank < 10, 1 / np.log2(rank + 2), 0.0).mean())

    def score(self, table: ItemTable, queries: Queries, rows: Any = None) -> np.ndarray:
        """Ranking scores [Q, C] of the candidates of ``queries`` (rows); -inf on PAD slots."""
        features = queries.features(table, rows)
        if self.training_:
            self.net_.eval()
            with torch.inference_mode():
                logits = self.net_(**{k: torch.from_numpy(v) for k, v in features.items()})
            logits = logits.numpy()
        else:
            logits = self._scoring_net()(**features)
        scores = ranking_score(logits, self.liked_weight)
        scores[~(queries.real if rows is None else queries.real[rows])] = -np.inf
        return scores

    def _scoring_net(self) -> ScoringNet:
        """The trained network for scoring, compiled (see ``recfunnel.ranking.scoring_net``);
        taken from the weights on first use."""
        if self.scoring_net_ is None:
            self.scoring_net_ = ScoringNet.of(self.net_)
        return self.scoring_net_

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.net_.state_dict().items()}

    def load_state(self, arrays: dict[str, np.ndarray], dim: int) -> Ranker:
        self.net_ = RankerNet(dim, self.hidden)
        # older artifacts also hold the network as an onnxruntime graph, no longer used
        self.net_.load_state_dict({k: torch.from_numpy(np.array(arrays[k]))
                                   for k in self.net_.state_dict()})
        self.net_.eval()
        self.training_, self.scoring_net_ = False, None
        return self
