"""Implicit-feedback ALS (Hu, Koren, Volinsky 2008) from the ``implicit`` library."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recfunnel.data.dataset import Dataset
from recfunnel.data.history import History
from recfunnel.retrieval.base import Recommender


class ALS(Recommender):
    name = "als"
    param_grid = {"factors": [64, 128], "regularization": [0.05, 0.5], "alpha": [1.0, 5.0]}

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 1.0,
                 iterations: int = 15, seed: int = 0):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed

    def fit(self, history: History, dataset: Dataset,
            validation: pd.DataFrame | None = None) -> ALS:
        interactions = history.matrix
        with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS ones only contend
            model = AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                iterations=self.iterations, random_state=self.seed, dtype=np.float32,
            )
            model.fit(interactions.astype(np.float32).tocsr(), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors)
        self.item_factors_ = np.asarray(model.item_factors)
        return self

    def score(self, users: np.ndarray, history: History) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def get_params(self) -> dict[str, Any]:
        return {"factors": self.factors, "regularization": self.regularization,
                "alpha": self.alpha, "iterations": self.iterations, "seed": self.seed}

    def state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
