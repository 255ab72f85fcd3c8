"""The funnel's last step: the ranked head of one row becomes the final list, each item carrying
what the stages before said of it."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recfunnel.index.candidates import SOURCES
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
    sources = [SOURCES.index(s) for s in ("popular", "item-to-item", "two-tower", "item-to-item")]
    ranked = StageLists(np.array([[7, 1, 5, 2, PAD]]), np.array([[3.0, 2.0, 1.0, 0.5, -np.inf]]),
                        np.array([sources + [-1]]), np.array([[0.7, 0.6, 0.9, 0.8, 0.0]]))
    user = UserFacts(seen=np.array([1]), disliked=np.zeros(0, dtype=np.int64))
    final = funnel.final_list(ranked, 0, user, 3)
    assert final.items.tolist() == [7, 5, 2]  # ranking order, the seen item 1 removed
    why = final.explanations
    assert [e["source"] for e in why] == ["popular", "two-tower", "item-to-item"]
    assert [e["retrieval_score"] for e in why] == pytest.approx([0.7, 0.9, 0.8])
    assert [e["rank_before_selection"] for e in why] == [0, 1, 2]
    # a model without candidate sources: its own name, its scores as the retrieval score
    alone = StageLists(ranked.items, ranked.scores)
    default = funnel.final_list(alone, 0, user, 1).explanations[0]
    assert default["source"] == MostPopular.name and default["retrieval_score"] == 3.0


def test_offline_funnel_lists_what_a_live_request_gets(small_funnel_dir, tmp_path):
    """evaluate and export score the served path: the same candidates (every source), ranking
    and final list as a live request for the same user, read from the feature store. Only float
    rounding between the compiled and the batch user tower may swap near ties."""
    from recfunnel.serving.service import Service, StoreConfig

    service = Service.load(Path(shutil.copytree(small_funnel_dir, tmp_path / "tt")), StoreConfig())
    system = service.system
    users = np.flatnonzero(system.history.lengths() > 0)
    batch = system.funnel().run(users, system.history, k=10)
    same_candidates = same_final = 0
    for row, user in enumerate(users):
        live = service.online.recommend(int(user), 10)
        ranked = batch.lists["ranking"]
        batch_row = ranked.items[row][ranked.items[row] != PAD]
        same_candidates += set(live.ranked.items[0]) == set(batch_row)
        same_final += live.final.items.tolist() == batch.final[row].items.tolist()
    assert same_candidates >= 0.97 * len(users) and same_final >= 0.97 * len(users)
    assert {e["source"] for s in batch.final for e in s.explanations} > {"two-tower"}


def test_requests_answered_together_get_the_lists_they_get_alone(small_funnel_dir, tmp_path):
    """recommend_many (the server's batches): known users, a cold start from demographics and
    one from popularity, in one call, each answered as if alone."""
    from recfunnel.serving.online import Request
    from recfunnel.serving.service import Service, StoreConfig

    service = Service.load(Path(shutil.copytree(small_funnel_dir, tmp_path / "tt")), StoreConfig())
    requests = [Request(int(u), k) for u, k in zip(range(0, 40, 3), [10, 5, 20] * 5)]
    requests[3:3] = [Request(None, 7, {"age": 30, "gender": "F"}), Request(None, 4)]
    together = service.online.recommend_many(requests)
    for request, answer in zip(requests, together):
        alone = service.online.recommend(request.user, request.k, request.features)
        assert answer.final.items.tolist() == alone.final.items.tolist()
        assert answer.final.explanations == alone.final.explanations
        assert answer.cold_start == alone.cold_start and answer.batch == len(requests)
        assert len(answer.final) == request.k
        live = answer.ranked.items[0][answer.ranked.items[0] != PAD]
        assert live.tolist() == alone.ranked.items[0].tolist()
    assert [a.cold_start for a in together[3:5]] == ["demographics", "popular"]
    service.close()


def test_an_item_watched_again_counts_once(small_funnel_dir, tmp_path):
    """The store keeps every event; a repeat of an old watch, older than the user's recent
    items, changes nothing: the co-occurrence with the history, the history's size and the
    items removed as seen all count it once."""
    from recfunnel.serving.service import Service, StoreConfig

    service = Service.load(Path(shutil.copytree(small_funnel_dir, tmp_path / "tt")), StoreConfig())
    lengths = service.system.history.lengths()
    user = int(np.flatnonzero(lengths > 2 * service.online.model.history_length)[0])
    raw_user = str(service.system.dataset.users["user_id"].iloc[user])
    before = service.recommend(raw_user, 10, {})
    watched = service.store.user_state(user, 1).seen[0]
    service.add_event(raw_user, str(service.system.dataset.items["item_id"].iloc[watched]),
                      "watch", None, 0)
    after = service.recommend(raw_user, 10, {})
    assert len(service.store.user_state(user, 1).seen) == lengths[user] + 1
    assert after.ranked.items.tolist() == before.ranked.items.tolist()
    assert after.ranked.scores.tolist() == before.ranked.scores.tolist()
    assert after.final.items.tolist() == before.final.items.tolist()
    service.close()
