"""The online retrieval path: store -> user tower -> ANN index and the other candidate sources."""

from __future__ import annotations

import faiss
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from recfunnel.artifacts import System
from recfunnel.data.arrays import distinct
from recfunnel.index.candidates import CandidateGenerator, Candidates
from recfunnel.index.ann import ItemIndex
from recfunnel.retrieval.two_tower_recommender import TwoTower
from recfunnel.store.base import FeatureStore


def single_thread() -> None:
    """One request, one thread: measured here, two OpenMP threads make one small FAISS query
    2-3x slower, two BLAS threads make NumPy's small products (exact search, the re-ranker's
    similarities) 3x slower, and PyTorch's intra-op threads only add overhead at batch size 1."""
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    threadpool_limits(1, "blas")


class OnlineRetriever:
    def __init__(self, model: TwoTower, index: ItemIndex, store: FeatureStore,
                 generator: CandidateGenerator):
        self.model, self.index, self.store, self.generator = model, index, store, generator

    @classmethod
    def of(cls, system: System, store: FeatureStore) -> OnlineRetriever:
        """The retrieval half of ``system``'s served funnel: its candidate sources as served."""
        return cls(system.retrieval, system.index, store, system.funnel().generator)

    def user_vector(self, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The user's vector, recent items (oldest first) and seen items, read from the store
        in one round trip, however long the user's history."""
        state = self.store.user_state(user, self.model.history_length)
        vector = self.model.user_vector(self.model.window(state.recent), state.features, user)
        return vector, state.recent, state.seen

    def retrieve(self, user: int, n: int = 500) -> Candidates:
        vector, recent, seen = self.user_vector(user)
        n_items = len(self.model.item_vectors_)
        return self.generator.generate(vector, recent, distinct(seen[seen < n_items]), n)

    def ann(self, user: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Two-tower candidates only: the top ``k`` unseen items by ANN search."""
        vector, _, seen = self.user_vector(user)
        ids, scores = self.index.search(vector[None, :], k, exclude=seen)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]
