"""Training and scoring the two-tower model behind the shared :class:`Recommender` interface.

Training data is YouTube's "predict the next watch": every training interaction is a target, and
the same user's earlier interactions are its history, so no example sees its own future.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from recfunnel.data.dataset import Dataset
from recfunnel.data.history import History
from recfunnel.retrieval.base import Recommender
from recfunnel.retrieval.features import (
    FeatureSpec, category_codes, history_window, item_features, user_categories,
)
from recfunnel.retrieval.losses import (
    StreamingFrequency, binary_loss, mine_hard_negatives, sampled_softmax_loss,
)
from recfunnel.retrieval.request_tower import RequestTower
from recfunnel.retrieval.topk import rank_users
from recfunnel.retrieval.two_tower import TowerConfig, TwoTowerModel

LOSSES = ("softmax", "bce")
LOGQ = ("none", "counts", "streaming")
HARD_MODES = ("epoch", "batch")
_ZERO = np.zeros(1, dtype=np.int64)


class TwoTower(Recommender):
    """Two-tower retrieval. ``loss``: sampled softmax with in-batch negatives, or the binary
    "interacted or not" BCE. ``logq``: popularity correction from counts or a streaming estimate.
    ``mixed_negatives``: uniformly sampled catalog items added to the in-batch candidates.
    ``hard_negatives``: per example, this many of the user's top-scored non-positives, mined from the
    current item embeddings each epoch or from the batch, skipping the ``hard_skip`` best-scored
    ones (likely false negatives) and anything the user has interacted with.
    ``use_user_id``: a per-user id embedding in the user tower, hidden (as for a user the model
    never saw) in ``id_dropout`` of the training examples, so that the tower also serves new users
    from their history and demographics alone. Off by default: it lifts retrieval, but the ranking
    stage's gain over it then falls inside the noise (BENCHMARKS.md).
    Training stops when validation HR@``val_k`` has not improved for ``patience`` epochs; the best
    epoch's weights are kept. :meth:`refit` then trains ``refit_epochs`` more on train + validation.
    ``device``: where training steps run ("cpu", "cuda"); validation, mining and everything after
    training (scoring, serving, saving) run on the CPU."""

    name = "two-tower"

    def __init__(self, dim: int = 64, hidden: int = 256, pooling: str = "attention",
                 history_length: int = 20, use_user_id: bool = False, id_dropout: float = 0.2,
                 dropout: float = 0.1,
                 loss: str = "softmax", temperature: float = 0.05, logq: str = "counts",
                 mixed_negatives: int = 0, hard_negatives: int = 0, hard_mode: str = "epoch",
                 hard_skip: int = 5, bce_negatives: int = 32, epochs: int = 30,
                 batch_size: int = 512, lr: float = 2e-3, weight_decay: float = 1e-5,
                 patience: int = 3, val_k: int = 50, refit_epochs: int = 1, seed: int = 0,
                 device: str = "cpu"):
        if loss not in LOSSES or logq not in LOGQ or hard_mode not in HARD_MODES:
            raise ValueError(f"loss in {LOSSES}, logq in {LOGQ}, hard_mode in {HARD_MODES}")
        self.dim, self.hidden, self.pooling = dim, hidden, pooling
        self.history_length, self.use_user_id, self.dropout = history_length, use_user_id, dropout
        self.id_dropout = id_dropout
        self.loss, self.temperature, self.logq = loss, temperature, logq
        self.mixed_negatives, self.hard_negatives = mixed_negatives, hard_negatives
        self.hard_mode, self.hard_skip, self.bce_negatives = hard_mode, hard_skip, bce_negatives
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.patience, self.val_k, self.refit_epochs, self.seed = patience, val_k, refit_epochs, seed
        self.device = device

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    # ----------------------------------------------------------------------------------- fit
    def fit(self, history: History, dataset: Dataset,
            validation: pd.DataFrame | None = None) -> TwoTower:
        torch.manual_seed(self.seed)
        self.rng_ = np.random.default_rng(self.seed)
        self.spec_ = FeatureSpec.from_dataset(dataset, self.history_length)
        config = TowerConfig(
            n_items=dataset.n_items, n_users=dataset.n_users, n_genres=max(1, len(self.spec_.genres)),
            user_field_sizes=[len(v) for v in self.spec_.user_fields.values()], dim=self.dim,
            hidden=self.hidden, pooling=self.pooling, history_length=self.history_length,
            use_user_id=self.use_user_id, dropout=self.dropout)
        self.model_ = TwoTowerModel(config)
        self.item_features_ = item_features(dataset.items, self.spec_)
        self.categories_ = user_categories(dataset.users, self.spec_)
        self.optimizer_ = torch.optim.AdamW(
            self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay,
            fused=True)  # one kernel for all parameters: 4x faster steps on CPU
        self.best_epoch_ = self.epochs
        self._train(history, self.epochs, validation)
        return self

    def refit(self, history: History, dataset: Dataset) -> TwoTower:
        """Keep training this model (warm start) for ``refit_epochs`` epochs on ``history``, which
        adds the validation interactions to the training ones; far cheaper than training anew."""
        self._train(history, self.refit_epochs, None)
        return self

    def _train(self, history: History, epochs: int, validation: pd.DataFrame | None) -> None:
        model, rng = self.model_, self.rng_
        counts = np.bincount(history.interactions["item"], minlength=len(model.items.known))
        model.items.known.copy_(torch.from_numpy(counts > 0))
        items, offsets = history.sequences
        lengths = history.lengths()
        example_user = np.repeat(np.arange(len(lengths)), lengths)
        example_end = np.arange(len(items)) - offsets[example_user]
        has_history = example_end >= 1
        example_user, example_end = example_user[has_history], example_end[has_history]
        example_target = items[offsets[example_user] + example_end]
        device = torch.device(self.device)
        log_p = torch.from_numpy(np.log(np.maximum(counts, 1) / max(1, counts.sum()))).to(device)
        frequency = StreamingFrequency() if self.logq == "streaming" else None
        self.train_features_ = {k: v.to(device) for k, v in self.item_features_.items()}

        self.history_log_: list[dict[str, float]] = []
        best, best_state, stale, step = -1.0, None, 0, 0
        bar = tqdm(range(1, epochs + 1), desc="two-tower", disable=None, leave=False)
        for epoch in bar:
            start = time.perf_counter()
            pools = (self._mine_epoch(history, len(lengths))
                     if self.hard_negatives and self.hard_mode == "epoch" and epoch > 1 else None)
            model.to(device)
            model.train()
            order = rng.permutation(len(example_user))
            losses = []
            for lo in range(0, len(order), self.batch_size):
                idx = order[lo:lo + self.batch_size]
                step += 1
                loss = self._batch_loss(example_user[idx], example_end[idx], example_target[idx],
                                        history, log_p, frequency, step, pools, rng)
                self.optimizer_.zero_grad()
                loss.backward()
                self.optimizer_.step()
                losses.append(loss.detach())
            model.to("cpu")  # validation and mining score the whole catalog on the CPU
            record = {"epoch": epoch, "loss": float(torch.stack(losses).mean()),
                      "seconds": time.perf_counter() - start}
            if validation is not None and len(validation):
                record[f"val_HR@{self.val_k}"] = score = self._validate(validation, history)
                if score > best:
                    best, best_state, self.best_epoch_, stale = (
                        score, copy.deepcopy(model.state_dict()), epoch, 0)
                else:
                    stale += 1
            self.history_log_.append(record)
            bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
            if stale >= self.patience:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        del self.train_features_
        self._precompute_items()

    def _batch_loss(self, users: np.ndarray, ends: np.ndarray, targets: np.ndarray,
                    history: History, log_p: torch.Tensor, frequency: StreamingFrequency | None,
                    step: int, pools: np.ndarray | None, rng: np.random.Generator) -> torch.Tensor:
        model, features = self.model_, self.train_features_
        device = log_p.device
        items, offsets = history.sequences
        hidden = (rng.random(len(users)) < self.id_dropout
                  if self.use_user_id and self.id_dropout else False)
        batch = self._user_batch(users, history_window(items, offsets, users, ends,
                                                       self.history_length), hidden)
        u = model.user_vectors({k: v.to(device) for k, v in batch.items()})
        positive_ids = torch.from_numpy(targets).to(device)
        n_items = len(model.items.known)
        if self.loss == "bce":
            negatives = torch.from_numpy(rng.integers(0, n_items, (len(users), self.bce_negatives)))
            vectors = model.item_vectors(torch.cat([positive_ids, negatives.to(device).flatten()]),
                                         features)
            return binary_loss(u, vectors[:len(users)],
                               vectors[len(users):].view(len(users), self.bce_negatives, -1),
                               self.temperature)
        uniform = torch.from_numpy(rng.integers(0, n_items, self.mixed_negatives)).to(device)
        candidate_ids = torch.cat([positive_ids, uniform])
        candidates = model.item_vectors(candidate_ids, features)
        log_q = None
        if self.logq != "none":
            if frequency is not None:  # a CPU table: one small copy per batch
                frequency.update(positive_ids.cpu(), step)
                expected = frequency.probability(candidate_ids.cpu()).to(device)
            else:
                expected = len(users) * log_p[candidate_ids].exp()
            log_q = torch.log(expected + self.mixed_negatives / n_items)
        row_negatives = row_negative_ids = None
        if self.hard_negatives:
            row_negative_ids = self._hard_ids(users, u, candidates, candidate_ids, history, pools,
                                              rng).to(device)
            row_negatives = model.item_vectors(row_negative_ids.flatten(), features
                                               ).view(len(users), self.hard_negatives, -1)
        return sampled_softmax_loss(u, candidates, candidate_ids, positive_ids,
                                    temperature=self.temperature, log_q=log_q,
                                    row_negatives=row_negatives, row_negative_ids=row_negative_ids)

    def _hard_ids(self, users: np.ndarray, u: torch.Tensor, candidates: torch.Tensor,
                  candidate_ids: torch.Tensor, history: History, pools: np.ndarray | None,
                  rng: np.random.Generator) -> torch.Tensor:
        if self.hard_mode == "epoch":
            if pools is None:  # first epoch: the embeddings are random, so nothing to mine yet
                n_items = len(self.model_.items.known)
                return torch.from_numpy(rng.integers(0, n_items, (len(users), self.hard_negatives)))
            pick = rng.integers(0, pools.shape[1], (len(users), self.hard_negatives))
            return torch.from_numpy(np.take_along_axis(pools[users], pick, axis=1))
        with torch.no_grad():
            scores = u @ candidates.T
        seen = torch.from_numpy(history.contains(users[:, None], candidate_ids.cpu().numpy()[None, :]))
        seen = seen.to(scores.device)
        rows = torch.arange(len(users), device=scores.device)
        seen[rows, rows] = True  # the row's own positive
        k = min(self.hard_negatives, scores.shape[1] - 1 - self.hard_skip)
        top = mine_hard_negatives(scores, seen, k, self.hard_skip)
        return candidate_ids[top]

    def _mine_epoch(self, history: History, n_users: int, chunk: int = 1024) -> np.ndarray:
        """Per user, the best-scored items they never interacted with, below the top ``hard_skip``."""
        self._precompute_items()  # also puts the model in eval mode
        items = torch.from_numpy(self.item_vectors_)
        pool = 4 * self.hard_negatives
        with torch.no_grad():
            out = np.empty((n_users, pool), dtype=np.int64)
            for lo in range(0, n_users, chunk):
                users = np.arange(lo, min(n_users, lo + chunk))
                scores = self.user_vectors(users, history) @ items.T
                seen = torch.from_numpy(history.matrix[users].toarray() > 0)
                out[users] = mine_hard_negatives(scores, seen, pool, self.hard_skip).numpy()
        return out

    def _validate(self, validation: pd.DataFrame, history: History) -> float:
        self._precompute_items()
        users = validation["user"].to_numpy(np.int64)
        lists, _ = rank_users(lambda b: self.score(b, history), users, history.matrix, self.val_k,
                              desc="validating")
        return float((lists == validation["item"].to_numpy()[:, None]).any(axis=1).mean())

    # -------------------------------------------------------------------------------- scoring
    def _user_batch(self, users: np.ndarray, window: np.ndarray,
                    hidden: np.ndarray | bool = False) -> dict[str, torch.Tensor]:
        """The user tower's inputs; ``hidden`` (per row, or all) leaves ids out (-1), as for
        users the model never saw."""
        users_t = torch.from_numpy(np.asarray(users, dtype=np.int64))
        ids = users_t.masked_fill(torch.as_tensor(hidden), -1)
        return {"history": torch.from_numpy(window), "categories": self.categories_[users_t],
                "users": ids}

    def windows(self, users: np.ndarray, history: History) -> np.ndarray:
        """Each user's last ``history_length`` items [B, L], oldest first, -1 padded."""
        items, offsets = history.sequences
        return history_window(items, offsets, users, history.lengths()[users], self.history_length)

    def user_vectors(self, users: np.ndarray, history: History, known: bool = True
                     ) -> torch.Tensor:
        """Vectors of ``users`` from their whole visible ``history`` (the batch path);
        ``known=False`` leaves their id embeddings out: what a user the model never saw, with the
        same history and features, gets."""
        return self.model_.user_vectors(
            self._user_batch(users, self.windows(users, history), hidden=not known))

    def window(self, recent_items: np.ndarray) -> np.ndarray:
        """One live request's history window [1, L] from its recent items, oldest first."""
        recent = np.asarray(recent_items, dtype=np.int64)
        return history_window(recent, _ZERO, _ZERO, np.array([len(recent)]),
                              self.history_length)

    def user_vector(self, window: np.ndarray, features: dict[str, Any] | None,
                    user: int = -1) -> np.ndarray:
        """One live request: the user's vector from the :meth:`window` of their recent items and
        their raw features, as a store returns them, through the same feature functions as
        training. ``user`` is the training index (-1 for a user the model never saw)."""
        categories = np.array(category_codes(features or {}, self.spec_), dtype=np.int64)
        known = user if 0 <= user < self.model_.config.n_users else -1
        return self._request_tower()(window[0], categories, known)

    def _request_tower(self) -> RequestTower:
        """The model's user side for single requests, compiled (see
        ``recfunnel.retrieval.request_tower``); taken from the weights on first use."""
        if self.request_tower_ is None:
            self.request_tower_ = RequestTower.of(self.model_)
        return self.request_tower_

    def add_items(self, items: pd.DataFrame) -> np.ndarray:
        """Append items that arrived after training to the catalog, embedded from their content
        features alone (no retraining); returns their vectors."""
        self.model_.eval()
        features = item_features(items, self.spec_)
        with torch.inference_mode():
            vectors = self.model_.items.content_only(features).numpy()
        self.item_features_ = {k: torch.cat([v, features[k]]) for k, v in self.item_features_.items()}
        self.item_vectors_ = np.concatenate([self.item_vectors_, vectors])
        return vectors

    def _precompute_items(self, chunk: int = 65536) -> None:
        self.model_.eval()
        self.request_tower_ = None  # taken from the weights as they are now, when needed
        n = len(self.model_.items.known)
        with torch.no_grad():
            self.item_vectors_ = torch.cat([
                self.model_.item_vectors(torch.arange(lo, min(n, lo + chunk)), self.item_features_)
                for lo in range(0, n, chunk)]).numpy()

    def score(self, users: np.ndarray, history: History, known: bool = True) -> np.ndarray:
        """``known``: as :meth:`user_vectors`."""
        self.model_.eval()
        with torch.no_grad():
            return (self.user_vectors(np.asarray(users), history, known).numpy()
                    @ self.item_vectors_.T)

    # -------------------------------------------------------------------------------- state
    def state(self) -> dict[str, np.ndarray]:
        arrays = {f"model.{k}": v.detach().numpy() for k, v in self.model_.state_dict().items()}
        arrays.update({f"item_features.{k}": v.numpy() for k, v in self.item_features_.items()})
        meta = {"spec": self.spec_.to_dict(), "config": self.model_.config.to_dict(),
                "best_epoch": self.best_epoch_}
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8).copy()
        arrays["categories"] = self.categories_.numpy()
        arrays["item_vectors"] = self.item_vectors_
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        meta = json.loads(bytes(arrays["meta_json"]).decode())
        self.spec_ = FeatureSpec(**meta["spec"])
        self.best_epoch_ = meta["best_epoch"]
        self.model_ = TwoTowerModel(TowerConfig(**meta["config"]))
        self.model_.load_state_dict({k[len("model."):]: torch.from_numpy(v.copy())
                                     for k, v in arrays.items() if k.startswith("model.")})
        self.model_.eval()
        self.request_tower_ = None
        self.item_features_ = {k[len("item_features."):]: torch.from_numpy(v.copy())
                               for k, v in arrays.items() if k.startswith("item_features.")}
        self.categories_ = torch.from_numpy(arrays["categories"].copy())
        self.item_vectors_ = arrays["item_vectors"]
