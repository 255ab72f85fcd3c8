"""The interface every retrieval model shares, baselines and two-tower alike (scikit-learn style)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recfunnel.data.dataset import Dataset
from recfunnel.data.history import History


class Recommender(ABC):
    """Fit on users' histories; score users against the whole catalog.

    Hyperparameters are constructor arguments, as in scikit-learn; ``param_grid`` lists the values
    model selection tries on the validation split. Learned state is a dict of arrays, so a model is
    saved as one safetensors file plus its parameters.
    """

    name: ClassVar[str]
    param_grid: ClassVar[dict[str, list[Any]]] = {}

    @abstractmethod
    def fit(self, history: History, dataset: Dataset,
            validation: pd.DataFrame | None = None) -> Recommender:
        """Learn from ``history`` (the training interactions); ``dataset`` gives user/item features;
        a model that stops early watches ``validation`` (one held-out item per user)."""

    @abstractmethod
    def score(self, users: np.ndarray, history: History) -> np.ndarray:
        """Scores [len(users), n_items] given every user's visible ``history``."""

    @abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""

    def refit(self, history: History, dataset: Dataset) -> Recommender:
        """The model to keep once validation data joins training (``history``), with the
        parameters selection chose. A fresh fit here; a model that can keep training (a neural
        one) warm-starts instead."""
        return type(self)(**self.get_params()).fit(history, dataset)

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays."""

    @abstractmethod
    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state` returned."""
