"""The whole funnel for one live request: feature store -> user tower -> candidate sources (ANN
first) -> ranking -> re-ranking, through the same feature and ranking code as the batch funnel."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recfunnel.data.arrays import indicator_row
from recfunnel.index.candidates import SOURCES
from recfunnel.ranking.ranker import Queries
from recfunnel.rerank.slate import Slate, UserFacts
from recfunnel.serving.funnel import Funnel, StageLists
from recfunnel.store.base import FeatureStore
from recfunnel.retrieval.two_tower_recommender import TwoTower


@dataclass
class Answer:
    """The final list with explanations, what the stages before it held, and how long each took."""

    final: Slate
    ranked: StageLists  # one row: candidates in ranking order
    n_candidates: int
    cold_start: str | None  # None, "demographics" or "popular"
    seconds: dict[str, float] = field(default_factory=dict)


class OnlineFunnel:
    """The batch :class:`Funnel`'s stages, with the user's history read from ``store``."""

    def __init__(self, funnel: Funnel, store: FeatureStore):
        if not isinstance(funnel.retrieval, TwoTower) or funnel.generator is None:
            raise TypeError("online serving needs a two-tower retrieval model and its index")
        self.funnel, self.store, self.generator = funnel, store, funnel.generator
        self.model: TwoTower = funnel.retrieval

    def recommend(self, user: int | None, k: int = 10,
                  features: dict[str, Any] | None = None) -> Answer:
        """``user``: the model's user index, or None for someone the system has never seen, who
        gets a list from ``features`` (demographics) when given, else the most popular items."""
        clock = _Clock()
        if user is not None:
            state = self.store.user_state(user, self.model.history_length)
            features, recent, seen, disliked = (state.features, state.recent, state.seen,
                                                state.disliked)
        else:
            recent = seen = disliked = np.zeros(0, dtype=np.int64)
        clock.lap("store")
        facts = UserFacts(seen, disliked)
        if user is None and not features:
            return self._popular(facts, k, clock)
        window = self.model.window(recent)  # the tower's input and a ranking feature
        vector = self.model.user_vector(window, features, -1 if user is None else user)
        clock.lap("user_tower")
        n_items = len(self.model.item_vectors_)
        history = indicator_row(seen[seen < n_items], n_items)
        # only what the ranker will score: its depth, filled from every source by quota
        candidates = self.generator.generate(vector, recent, history, self.funnel.rank_depth)
        items = candidates.items
        clock.lap("retrieval")
        queries = Queries.of(
            np.array([-1 if user is None else user]), items[None, :], candidates.sources[None, :],
            candidates.cooccurrence[None, :], self.model.item_vectors_, vector[None, :], window,
            history)
        ranked = self.funnel.rank(queries)
        clock.lap("ranking")
        final = self.funnel.final_list(ranked, 0, facts, k)
        clock.lap("rerank")
        return Answer(final, ranked, len(items), None if user is not None else "demographics",
                      clock.seconds)

    def _popular(self, facts: UserFacts, k: int, clock: _Clock) -> Answer:
        items = self.generator.popular[:self.funnel.pool]
        scores = np.log1p(self.generator.popularity[items])
        lists = StageLists(items[None, :], scores[None, :],
                           np.full((1, len(items)), SOURCES.index("popular"), dtype=np.int8))
        final = self.funnel.final_list(lists, 0, facts, k)
        clock.lap("rerank")
        return Answer(final, lists, len(items), "popular", clock.seconds)

    def similar(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest items to ``item`` in the two-tower space (itself excluded)."""
        ids, scores = self.generator.index.search(self.model.item_vectors_[item][None, :], k,
                                                  exclude=np.array([item]))
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]


class _Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = now - self._last
        self._last = now
