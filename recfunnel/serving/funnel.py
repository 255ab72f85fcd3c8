"""The whole funnel for a batch of users: retrieval's candidates, the ranking model's order, and
the re-ranker's final list with an explanation per item. ``export``, ``evaluate``, ``recommend``
and ``report`` all read their lists from here, so every stage is measured as it is served."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from recfunnel.data.history import History
from recfunnel.ranking.features import ItemTable
from recfunnel.ranking.ranker import Queries, Ranker
from recfunnel.rerank.chain import Reranker
from recfunnel.rerank.slate import Slate, UserFacts
from recfunnel.retrieval.base import Recommender
from recfunnel.retrieval.topk import PAD, rank_users

STAGES = ("retrieval", "ranking", "final")


@dataclass
class StageLists:
    """Per user, a stage's items best first (PAD padded) and their scores."""

    items: np.ndarray
    scores: np.ndarray


@dataclass
class FunnelOutput:
    lists: dict[str, StageLists]  # by stage name, in funnel order
    final: list[Slate]  # per user, with explanations


@dataclass
class Funnel:
    """``candidates`` items from retrieval, of which the ``rank_depth`` best are reordered by
    ``ranker`` (when there is one: on ML-100K ranking 100, 200 or all 500 gives the same
    NDCG@10 within 0.001, BENCHMARKS.md), then ``reranker`` picks the final list from the ranked
    head (``pool`` items)."""

    retrieval: Recommender
    reranker: Reranker
    ranker: Ranker | None = None
    table: ItemTable | None = None
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
        retrieved, ranked = (StageLists(np.concatenate([p[i].items for p in parts]),
                                        np.concatenate([p[i].scores for p in parts]))
                             for i in (0, 1))
        return self.finish(retrieved, ranked, UserFacts.from_history(history, users), k)

    def finish(self, retrieved: StageLists, ranked: StageLists, facts: list[UserFacts],
               k: int) -> FunnelOutput:
        """The re-ranking stage over lists the stages before it produced: run alone, it compares
        re-ranking configurations without retrieving and ranking again."""
        final = [self.final_list(retrieved, ranked, row, user, k) for row, user in enumerate(facts)]
        width = max([len(s) for s in final] + [k])
        final_lists = StageLists(np.full((len(final), width), PAD),
                                 np.full((len(final), width), -np.inf))
        for row, slate in enumerate(final):
            final_lists.items[row, :len(slate)] = slate.items
            final_lists.scores[row, :len(slate)] = slate.scores
        return FunnelOutput({"retrieval": retrieved, "ranking": ranked, "final": final_lists},
                            final)

    def _retrieve_and_rank(self, users: np.ndarray,
                           history: History) -> tuple[StageLists, StageLists]:
        if self.ranker is None:
            items, scores = rank_users(lambda b: self.retrieval.score(b, history), users,
                                       history.matrix, self.candidates, desc="retrieving")
            return StageLists(items, scores), StageLists(items, scores)
        return self.rank(Queries.retrieve(self.retrieval, history, users, self.candidates))

    def rank(self, queries: Queries) -> tuple[StageLists, StageLists]:
        """Retrieval's candidates as given, and the first ``rank_depth`` of them reordered by the
        ranking model (by retrieval score when there is none)."""
        retrieved = StageLists(np.where(queries.real, queries.candidates, PAD),
                               queries.retrieval_scores)
        head = queries.head(self.rank_depth)
        scores = (self.ranker.score(self.table, head) if self.ranker is not None else
                  np.where(head.real, head.retrieval_scores, -np.inf))
        order = np.argsort(-scores, axis=1, kind="stable")
        items = retrieved.items[:, :order.shape[1]]
        return retrieved, StageLists(np.take_along_axis(items, order, 1),
                                     np.take_along_axis(scores, order, 1))

    def final_list(self, retrieved: StageLists, ranked: StageLists, row: int, user: UserFacts,
                   k: int, sources: np.ndarray | None = None) -> Slate:
        """The re-ranked top ``k`` of one row, picked from the ranked head (``pool`` items);
        ``sources`` names the candidate source of each of the row's retrieved items (default:
        the retrieval model)."""
        items = ranked.items[row, :self.pool]
        items = items[items != PAD]
        found = retrieved.items[row]
        by_item = np.argsort(found, kind="stable")
        position = by_item[np.searchsorted(found, items, sorter=by_item)]  # in retrieval's list
        details = {"source": (sources[position] if sources is not None
                              else np.full(len(items), self.retrieval.name)),
                   "retrieval_score": retrieved.scores[row, position]}
        if self.ranker is not None:
            details["ranking_score"] = ranked.scores[row, :len(items)]
        slate = Slate.ranked(items, ranked.scores[row, :len(items)], details)
        return self.reranker.rerank(slate, user, k)
