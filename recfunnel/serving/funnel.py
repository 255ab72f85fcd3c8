"""The whole funnel for a batch of users: retrieval's candidates, the ranking model's order, and
the re-ranker's final list with an explanation per item. ``export``, ``evaluate``, ``recommend``
and ``report`` all read their lists from here, so every stage is measured as it is served."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from tqdm import tqdm

from recfunnel.data.history import History
from recfunnel.index.candidates import SOURCES, CandidateGenerator
from recfunnel.ranking.features import ItemTable
from recfunnel.ranking.ranker import Queries, Ranker
from recfunnel.rerank.chain import Reranker
from recfunnel.rerank.slate import Slate, UserFacts
from recfunnel.retrieval.base import Recommender
from recfunnel.retrieval.topk import PAD, rank_users

STAGES = ("retrieval", "ranking", "final")
SOURCE_NAMES = np.array(SOURCES)


@dataclass
class StageLists:
    """Per user, a stage's items best first (PAD padded) and their scores; for candidates,
    also each item's source (an index into ``SOURCES``) and retrieval score."""

    items: np.ndarray
    scores: np.ndarray
    sources: np.ndarray | None = None
    retrieval_scores: np.ndarray | None = None

    def row(self, i: int) -> StageLists:
        """Row ``i`` alone (a view)."""
        parts = (getattr(self, f.name) for f in fields(self))
        return StageLists(*(None if x is None else x[i:i + 1] for x in parts))

    @classmethod
    def concat(cls, parts: list[StageLists]) -> StageLists:
        return cls(*(None if getattr(parts[0], f.name) is None else
                     np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


@dataclass
class FunnelOutput:
    lists: dict[str, StageLists]  # by stage name, in funnel order
    final: list[Slate]  # per user, with explanations


@dataclass
class Funnel:
    """``candidates`` items from retrieval, then ``rank_depth`` items reordered by ``ranker``
    (when there is one; on ML-100K ranking 50, 100, 200 or 500 gives the same NDCG@10 within
    0.002, BENCHMARKS.md), then ``reranker`` picks the final list from the ranked head
    (``pool`` items). With a candidate ``generator`` (two-tower models: the ANN index merged
    with the other sources), both lists come from it as a live request's do, the ranked one
    generated at ``rank_depth``; without one, the model's own top items, the ranked list their
    head."""

    retrieval: Recommender
    reranker: Reranker
    ranker: Ranker | None = None
    table: ItemTable | None = None
    generator: CandidateGenerator | None = None
    candidates: int = 500
    rank_depth: int = 100
    pool: int = 100

    def run(self, users: np.ndarray, history: History, k: int = 10,
            batch_size: int = 512) -> FunnelOutput:
        """Every stage's lists for ``users``, the final one ``k`` long."""
        users = np.asarray(users, dtype=np.int64)
        parts = [self._retrieve_and_rank(users[lo:lo + batch_size], history)
                 for lo in tqdm(range(0, len(users), batch_size), desc="funnel", disable=None,
                                leave=False)]
        retrieved, ranked = (StageLists.concat([p[i] for p in parts]) for i in (0, 1))
        return self.finish(retrieved, ranked, UserFacts.from_history(history, users), k)

    def finish(self, retrieved: StageLists, ranked: StageLists, facts: list[UserFacts],
               k: int) -> FunnelOutput:
        """The re-ranking stage over lists the stages before it produced: run alone, it compares
        re-ranking configurations without retrieving and ranking again."""
        final = [self.final_list(ranked, row, user, k) for row, user in enumerate(facts)]
        width = max([len(s) for s in final] + [k])
        final_lists = StageLists(np.full((len(final), width), PAD),
                                 np.full((len(final), width), -np.inf))
        for row, slate in enumerate(final):
            final_lists.items[row, :len(slate)] = slate.items
            final_lists.scores[row, :len(slate)] = slate.scores
        return FunnelOutput({"retrieval": retrieved, "ranking": ranked, "final": final_lists},
                            final)

    def retrieve(self, users: np.ndarray, history: History, n: int) -> StageLists:
        """The retrieval stage's top ``n`` for ``users``: from the candidate sources when the
        funnel has them, else the model's best unseen items."""
        if self.generator is None:
            items, scores = rank_users(lambda b: self.retrieval.score(b, history), users,
                                       history.matrix, n, desc="retrieving")
            return StageLists(items, scores)
        queries = Queries.generate(self.generator, self.retrieval, history, users, n)
        return StageLists(np.where(queries.real, queries.candidates, PAD),
                          queries.retrieval_scores, queries.sources, queries.retrieval_scores)

    def _retrieve_and_rank(self, users: np.ndarray,
                           history: History) -> tuple[StageLists, StageLists]:
        retrieved = self.retrieve(users, history, self.candidates)
        if self.generator is None:
            return retrieved, retrieved
        return retrieved, self.rank(Queries.generate(self.generator, self.retrieval, history,
                                                     users, self.rank_depth))

    def rank(self, queries: Queries) -> StageLists:
        """The candidates of ``queries`` reordered by the ranking model (by retrieval score
        when there is none)."""
        scores = (self.ranker.score(self.table, queries) if self.ranker is not None else
                  np.where(queries.real, queries.retrieval_scores, -np.inf))
        order = np.argsort(-scores, axis=1, kind="stable")
        rows = np.arange(len(order))[:, None]
        items = np.where(queries.real, queries.candidates, PAD)
        return StageLists(*(x[rows, order] for x in (
            items, scores, queries.sources, queries.retrieval_scores)))

    def final_list(self, ranked: StageLists, row: int, user: UserFacts, k: int) -> Slate:
        """The re-ranked top ``k`` of one row, picked from the ranked head (``pool`` items),
        each item explained by its source and its scores."""
        items = ranked.items[row, :self.pool]
        items = items[items != PAD]  # PAD slots sort last
        n = len(items)
        details = {"source": (SOURCE_NAMES[ranked.sources[row, :n]] if ranked.sources is not None
                              else np.full(n, self.retrieval.name)),
                   "retrieval_score": (ranked.scores if ranked.retrieval_scores is None
                                       else ranked.retrieval_scores)[row, :n]}
        if self.ranker is not None:
            details["ranking_score"] = ranked.scores[row, :n]
        slate = Slate.ranked(items, ranked.scores[row, :n], details)
        return self.reranker.rerank(slate, user, k)
