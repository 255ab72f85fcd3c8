"""Each re-ranking rule on hand-made slates."""

import numpy as np
import pytest
import scipy.sparse as sp

from recfunnel.rerank.chain import Reranker, RerankConfig
from recfunnel.rerank.slate import ItemFacts, Slate, UserFacts

NONE = dict(remove_seen=False, remove_disliked=False, freshness_weight=0.0, mmr_weight=0.0,
            tail_share=0.0)


@pytest.fixture
def items():
    """Ten items: 0-4 Drama, 5-9 Comedy; 7-9 in the long tail; item 9 the newest; items 0 and 1
    have the same embedding."""
    genres = sp.csr_matrix((np.ones(10), (np.arange(10), [0] * 5 + [1] * 5)), shape=(10, 2))
    year = np.array([1990.0] * 9 + [2000.0])
    tail = np.arange(10) >= 7
    vectors = np.eye(10, dtype=np.float32)
    vectors[1] = vectors[0]
    return ItemFacts(genres, ["Drama", "Comedy"], year, tail, vectors)


def slate(n=10):
    scores = np.linspace(1.0, 0.1, n)  # item i is ranked i-th
    return Slate.ranked(np.arange(n), scores, {"source": ["two-tower"] * n,
                                               "ranking_score": scores})


USER = UserFacts(seen=np.array([2]), disliked=np.array([3]))


def final(items, k=5, **config):
    return Reranker(RerankConfig(**(NONE | config)), items).rerank(slate(), USER, k)


def test_no_rules_keep_the_ranking(items):
    assert final(items).items.tolist() == [0, 1, 2, 3, 4]


def test_seen_and_disliked_items_never_appear(items):
    out = final(items, 8, remove_seen=True, remove_disliked=True)
    assert 2 not in out.items and 3 not in out.items and len(out) == 8
    assert 3 not in final(items, 9, remove_disliked=True).items
    # a store's history may hold items the catalog of this version does not have yet
    newer = UserFacts(seen=np.array([2, 99], dtype=np.int32), disliked=np.array([3, 42]))
    out = Reranker(RerankConfig(**(NONE | dict(remove_seen=True, remove_disliked=True))),
                   items).rerank(slate(), newer, 8)
    assert out.items.tolist() == [0, 1, 4, 5, 6, 7, 8, 9]


def test_a_fresh_item_moves_up(items):
    before = final(items, 10).items.tolist().index(9)
    out = final(items, 10, freshness_weight=1.0)
    assert out.items.tolist().index(9) < before
    assert out.explanations[out.items.tolist().index(9)]["adjustments"]["freshness"] > 0


def test_mmr_weight_zero_keeps_order_and_a_weight_skips_the_duplicate(items):
    assert final(items, mmr_weight=0.0).items.tolist() == [0, 1, 2, 3, 4]
    out = final(items, mmr_weight=0.5)
    assert out.items.tolist() == [0, 2, 3, 4, 5]  # item 1 is item 0 again
    out = final(items, mmr_weight=0.05)  # a small weight: the duplicate stays, penalised
    assert out.items.tolist() == [0, 1, 2, 3, 4]
    assert out.explanations[1]["adjustments"]["mmr"] == pytest.approx(-0.05 * 0.9)


def test_tail_quota_holds(items):
    out = final(items, 5, tail_share=0.4)
    assert items.tail[out.items].sum() >= 2
    assert out.items.tolist()[:3] == [0, 1, 2]  # head items keep their places until the quota bites
    assert "tail-quota" in out.explanations[-1]["adjustments"]


def test_genre_cap_holds(items):
    out = final(items, 6, max_per_genre=3)
    genres = np.asarray(items.genres[out.items].sum(axis=0)).ravel()
    assert genres.tolist() == [3, 3]


def test_constraints_relax_when_nothing_satisfies_them(items):
    out = final(items, 10, max_per_genre=2)  # 10 slots but only 2 genres x 2
    assert sorted(out.items.tolist()) == list(range(10))


def test_excluded_genre_and_unknown_genre(items):
    out = final(items, 10, exclude_genres=["Comedy"])
    assert out.items.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="unknown genres"):
        final(items, exclude_genres=["Western"])


def test_explanations_carry_source_scores_and_rank(items):
    out = final(items, 3, remove_seen=True)
    assert [e["rank_before_selection"] for e in out.explanations] == [0, 1, 2]
    assert out.explanations[0]["source"] == "two-tower"
    assert out.explanations[2]["ranking_score"] == pytest.approx(0.7)


def test_facts_from_history_and_catalog():
    """Dislikes are ratings <= 2 of the visible history; MMR similarity ignores the direction all
    item embeddings share."""
    import pandas as pd

    from recfunnel.data.dataset import Dataset
    from recfunnel.rerank.slate import ItemFacts, UserFacts

    items = pd.DataFrame({"item_id": [10, 11, 12], "genres": [["A"], ["A"], ["B"]],
                          "year": [1990.0, 1995.0, np.nan]})
    users = pd.DataFrame({"user_id": [1, 2]})
    log = pd.DataFrame({"user": [0, 0, 1], "item": [0, 1, 2], "rating": [1.0, 5.0, 2.0],
                        "timestamp": [1, 2, 3]})
    dataset = Dataset("toy", log, users, items)
    facts = UserFacts.from_history(dataset.history(), np.array([0, 1]))
    assert facts[0].seen.tolist() == [0, 1] and facts[0].disliked.tolist() == [0]
    assert facts[1].disliked.tolist() == [2]
    shared = np.array([[10.0, 1, 0], [10.0, 0, 1], [10.0, -1, 0]])
    vectors = ItemFacts.build(dataset, dataset.history(), shared).vectors
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    # items 0 and 2 share no genre and point apart once the common component is removed
    assert vectors[0] @ vectors[2] < 0 < vectors[0] @ vectors[1]
