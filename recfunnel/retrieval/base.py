"""The interface every retrieval model shares, baselines and two-tower alike (scikit-learn style)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recfunnel.data.dataset import Dataset


class Recommender(ABC):
    """Fit on a user x item interaction matrix; score users against the whole catalog.

    Hyperparameters are constructor arguments, as in scikit-learn; ``param_grid`` lists the values
    model selection tries on the validation split. Learned state is a dict of arrays, so a model is
    saved as one safetensors file plus its parameters.
    """

    name: ClassVar[str]
    param_grid: ClassVar[dict[str, list[Any]]] = {}

    @abstractmethod
    def fit(self, interactions: sp.csr_matrix, dataset: Dataset | None = None) -> Recommender:
        """Learn from ``interactions`` (binary, users x items); ``dataset`` gives features if needed."""

    @abstractmethod
    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Scores [len(users), n_items]; ``history`` is the full user x item matrix of visible items."""

    @abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays."""

    @abstractmethod
    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state` returned."""
