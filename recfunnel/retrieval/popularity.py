"""MostPopular: every user gets the items with the most training interactions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recfunnel.data.dataset import Dataset
from recfunnel.data.history import History
from recfunnel.retrieval.base import Recommender


class MostPopular(Recommender):
    name = "most-popular"

    def fit(self, history: History, dataset: Dataset,
            validation: pd.DataFrame | None = None) -> MostPopular:
        interactions = history.matrix
        self.counts_ = np.asarray(interactions.sum(axis=0), dtype=np.float32).ravel()
        return self

    def score(self, users: np.ndarray, history: History) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(users), len(self.counts_)))

    def get_params(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.counts_ = arrays["counts"]
