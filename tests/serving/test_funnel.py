"""The funnel's last step: the ranked head of one row becomes the final list, each item carrying
what the stages before said of it."""

import numpy as np
import pytest
import scipy.sparse as sp

from recfunnel.rerank.chain import Reranker, RerankConfig
from recfunnel.rerank.slate import ItemFacts, UserFacts
from recfunnel.retrieval.popularity import MostPopular
from recfunnel.retrieval.topk import PAD
from recfunnel.serving.funnel import Funnel, StageLists


@pytest.fixture
def funnel():
    n = 8
    genres = sp.csr_matrix((np.ones(n), (np.arange(n), np.zeros(n, dtype=int))), shape=(n, 1))
    facts = ItemFacts(genres, ["Drama"], np.full(n, np.nan), np.zeros(n, dtype=bool),
                      np.eye(n, dtype=np.float32))
    config = RerankConfig(freshness_weight=0.0, mmr_weight=0.0, tail_share=0.0)
    return Funnel(MostPopular(), Reranker(config, facts), pool=4)


def test_final_items_keep_their_source_and_retrieval_score(funnel):
    retrieved = StageLists(np.array([[5, 2, 7, 1, PAD]]),
                           np.array([[0.9, 0.8, 0.7, 0.6, -np.inf]]))
    ranked = StageLists(np.array([[7, 1, 5, 2, PAD]]), np.array([[3.0, 2.0, 1.0, 0.5, -np.inf]]))
    sources = np.array(["two-tower", "item-to-item", "popular", "two-tower", "two-tower"])
    user = UserFacts(seen=np.array([1]), disliked=np.zeros(0, dtype=np.int64))
    final = funnel.final_list(retrieved, ranked, 0, user, 3, sources)
    assert final.items.tolist() == [7, 5, 2]  # ranking order, the seen item 1 removed
    why = final.explanations
    assert [e["source"] for e in why] == ["popular", "two-tower", "item-to-item"]
    assert [e["retrieval_score"] for e in why] == pytest.approx([0.7, 0.9, 0.8])
    assert [e["rank_before_selection"] for e in why] == [0, 1, 2]
    default = funnel.final_list(retrieved, ranked, 0, user, 1)
    assert default.explanations[0]["source"] == MostPopular.name
