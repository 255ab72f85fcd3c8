import numpy as np
import pytest
import scipy.sparse as sp

from recfunnel.index.ann import ItemIndex
from recfunnel.index.candidates import SOURCES, CandidateGenerator, Quotas


@pytest.fixture
def generator():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    genres = sp.csr_matrix((np.ones(200), (np.arange(200), np.arange(200) % 4)), shape=(200, 4))
    popularity = np.arange(200)[::-1].astype(float)  # item 0 is the most popular
    weights = np.abs(rng.normal(size=(200, 200))).astype(np.float32)
    np.fill_diagonal(weights, 0.0)
    return CandidateGenerator(ItemIndex.build(vectors), vectors, popularity, genres,
                              cooccurrence=weights), vectors


def test_quotas_unseen_and_unique(generator):
    gen, vectors = generator
    history = np.array([0, 4, 8, 12])  # all genre 0
    out = gen.generate(vectors[1], history, history, 100)
    assert len(out.items) == 100 and len(set(out.items.tolist())) == 100
    assert not set(out.items.tolist()) & set(history.tolist())
    counts = {s: int((out.sources == i).sum()) for i, s in enumerate(SOURCES)}
    assert counts == {"two-tower": 70, "item-to-item": 10, "co-occurrence": 10,
                      "genre-popular": 5, "popular": 5}
    ann = out.items[out.sources == 0]
    assert ann[0] == 1  # the user vector is item 1's own vector
    genre_pop = out.items[out.sources == SOURCES.index("genre-popular")]
    assert all(i % 4 == 0 for i in genre_pop)


def test_seen_items_beyond_the_recent_window_are_excluded(generator):
    gen, vectors = generator
    recent = np.array([0, 4])
    out = gen.generate(vectors[1], recent, np.array([1, 0, 4]), 50)
    assert 1 not in out.items and 0 not in out.items and 4 not in out.items
    assert len(out.items) == 50


def test_a_short_source_leaves_its_slots_to_the_next():
    gen_vectors = np.eye(4, dtype=np.float32)
    gen = CandidateGenerator(ItemIndex.build(gen_vectors), gen_vectors, np.array([4., 3, 2, 1]),
                             sp.csr_matrix((4, 0)), Quotas({"two-tower": 0.5, "popular": 0.5}))
    out = gen.generate(gen_vectors[0], np.array([0]), np.array([0]), 10)
    assert sorted(out.items.tolist()) == [1, 2, 3]  # every unseen item, once


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match="unknown candidate sources"):
        Quotas({"trending": 1.0})


def test_item_to_item_fills_its_share_beside_the_two_tower_picks(generator):
    """Item-to-item gets its full share: the recent items' nearest neighbours that are neither
    seen nor picked by the two-tower source."""
    gen, vectors = generator
    recent = np.array([3, 7])
    # the user looks like item 3 itself
    out = gen.generate(vectors[3], recent, recent, 30)
    two_tower = out.items[out.sources == SOURCES.index("two-tower")]
    similar = out.items[out.sources == SOURCES.index("item-to-item")]
    assert len(two_tower) == 21 and len(similar) == 3
    closeness = (vectors[recent] @ vectors.T).max(axis=0)
    closeness[np.concatenate([recent, two_tower])] = -np.inf
    assert similar.tolist() == np.argsort(-closeness, kind="stable")[:3].tolist()


def test_without_history_the_history_sources_leave_their_slots_to_popular(generator):
    gen, vectors = generator
    none = np.zeros(0, dtype=np.int64)
    out = gen.generate(vectors[1], none, none, 20)
    counts = {s: int((out.sources == i).sum()) for i, s in enumerate(SOURCES)}
    assert counts == {"two-tower": 14, "item-to-item": 0, "co-occurrence": 0, "genre-popular": 0,
                      "popular": 6}
    assert len(set(out.items.tolist())) == 20


def test_cooccurrence_source_ranks_by_the_weights_from_the_whole_history():
    """Summed item-item weights from every seen item (each once), skipping seen items and the
    earlier sources' picks; without weights its slots go to the last source."""
    vectors = np.eye(6, dtype=np.float32)
    weights = np.zeros((6, 6), dtype=np.float32)
    weights[0, 3], weights[1, 4], weights[1, 5], weights[0, 5] = 3.0, 2.0, 0.5, 0.25
    quotas = Quotas({"two-tower": 1 / 3, "co-occurrence": 2 / 3})
    gen = CandidateGenerator(ItemIndex.build(vectors), vectors, np.ones(6), sp.csr_matrix((6, 0)),
                             quotas, cooccurrence=weights)
    seen = np.array([1, 0])
    out = gen.generate(vectors[3], np.array([1]), seen, 3)  # the user vector is item 3's
    assert out.items.tolist() == [3, 4, 5]  # 3 by the two towers, then 4 (2.0), 5 (0.75)
    assert out.sources.tolist() == [0, 2, 2]
    # the weights are summed as 16-bit integers: within half a step (3.0 / 32767) each
    assert out.scores[1:].tolist() == pytest.approx([2.0, 0.75], abs=1e-4)
    plain = CandidateGenerator(ItemIndex.build(vectors), vectors, np.ones(6),
                               sp.csr_matrix((6, 0)), Quotas({"co-occurrence": 0.5,
                                                              "popular": 0.5}))
    assert set(plain.generate(vectors[3], seen, seen, 4).sources.tolist()) == {4}
