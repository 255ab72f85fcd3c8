"""EASE (Steck, WWW 2019): a closed-form item-item linear autoencoder with a zero diagonal."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recfunnel.data.dataset import Dataset
from recfunnel.data.history import History
from recfunnel.errors import RecfunnelError
from recfunnel.retrieval.base import Recommender

MAX_ITEMS = 40_000  # the dense item x item inverse needs n_items^2 floats: 6.4 GB at this size


class EASE(Recommender):
    name = "ease"
    param_grid = {"l2": [50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]}

    def __init__(self, l2: float = 500.0):
        self.l2 = l2

    def fit(self, history: History, dataset: Dataset,
            validation: pd.DataFrame | None = None) -> EASE:
        interactions = history.matrix
        n_items = interactions.shape[1]
        if n_items > MAX_ITEMS:
            raise RecfunnelError(f"EASE needs a dense {n_items}x{n_items} matrix; it is limited to "
                                 f"{MAX_ITEMS:,} items (use the two-tower model or ALS)")
        gram = (interactions.T @ interactions).toarray().astype(np.float64)
        gram[np.diag_indices(n_items)] += self.l2
        precision = np.linalg.inv(gram)
        weights = precision / -np.diag(precision)
        weights[np.diag_indices(n_items)] = 0.0
        self.weights_ = weights.astype(np.float32)
        return self

    def score(self, users: np.ndarray, history: History) -> np.ndarray:
        return np.asarray(history.matrix[users] @ self.weights_)

    def get_params(self) -> dict[str, Any]:
        return {"l2": self.l2}

    def state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = arrays["weights"]
