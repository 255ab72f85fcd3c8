import logging

import faiss
import numpy as np
import pytest

from recfunnel.index.ann import (IndexConfig, ItemIndex, _ladder, exact_top_k, recall_at_k,
                                tune)


def clustered(n: int, d: int = 16, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_flat_index_is_exact():
    vectors, queries = clustered(2000), clustered(20, seed=1)
    index = ItemIndex.build(vectors)
    assert index.config.kind == "flat"
    ids, scores = index.search(queries, 10)
    assert np.array_equal(ids, exact_top_k(vectors, queries, 10))
    assert np.allclose(scores[:, 0], (queries * vectors[ids[:, 0]]).sum(1), atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_excluded_items_are_left_out_and_the_rest_keeps_its_order(kind):
    vectors, queries = clustered(500), clustered(3, seed=1)
    index = ItemIndex.build(vectors, IndexConfig(kind=kind, ef_search=500))
    exact = exact_top_k(vectors, queries, 30)
    exclude = exact[0, :10:2]  # some of the first query's best items
    ids, scores = index.search(queries, 20, exclude=exclude)
    for row, best in zip(ids, exact):
        assert row.tolist() == [i for i in best if i not in exclude][:20]
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_asking_for_more_than_the_catalog_pads_with_minus_one():
    vectors = clustered(5)
    ids, scores = ItemIndex.build(vectors).search(vectors[:1], 8, exclude=np.array([0]))
    assert sorted(ids[0, :4].tolist()) == [1, 2, 3, 4] and ids[0, 4:].tolist() == [-1] * 4
    assert np.all(np.isneginf(scores[0, 4:]))


@pytest.mark.parametrize("kind", ["ivf-flat", "ivf-sq8", "hnsw"])
def test_tuned_index_reaches_the_recall_target(kind):
    vectors, queries = clustered(20_000), clustered(200, seed=1)
    index = ItemIndex.build(vectors, IndexConfig(kind=kind, nlist=64, refine=2 if kind == "ivf-sq8" else 0))
    exact = exact_top_k(vectors, queries, 100)
    recall = tune(index, queries, exact, 100)
    assert recall >= 0.95
    assert recall == pytest.approx(recall_at_k(index, queries, exact, 100))
    if kind.startswith("ivf"):
        assert index.config.nprobe < 64  # the tuning stopped before scanning every list


@pytest.mark.parametrize("refine", [0, 2])
def test_many_lists_get_a_graph_quantizer_that_follows_nprobe(refine, tmp_path):
    config = IndexConfig(kind="ivf-sq8", nlist=4200, nprobe=50, refine=refine)
    index = ItemIndex.build(clustered(6000), config)

    def ef_search(index: ItemIndex) -> int:
        ivf = faiss.downcast_index(index.index.base_index) if refine else index.index
        return faiss.downcast_index(ivf.quantizer).hnsw.efSearch
    assert ef_search(index) == 100  # 2 * nprobe, not HNSW's default of 16
    index.save(tmp_path / "i.faiss")
    assert ef_search(ItemIndex.load(tmp_path / "i.faiss", index.config)) == 100


@pytest.mark.parametrize("kind, refine, expected", [("ivf-sq8", None, 2), ("ivf-flat", None, 0),
                                                    ("ivf-sq8", 0, 0), ("ivf-flat", 3, 3)])
def test_8_bit_codes_are_re_scored_with_exact_vectors_unless_told_otherwise(kind, refine, expected):
    index = ItemIndex.build(clustered(5000), IndexConfig(kind=kind, nlist=16, refine=refine))
    assert index.config.refine == expected
    assert isinstance(index.index, faiss.IndexRefine) == bool(expected)


def test_tuning_tries_settings_between_the_powers_of_two():
    assert _ladder(1, 20) == [1, 2, 3, 4, 6, 8, 12, 16, 20]
    assert _ladder(100, 8192)[:5] == [100, 150, 200, 300, 400]
    assert _ladder(5, 5) == [5]


def test_low_recall_warns(caplog):
    vectors, queries = clustered(5000), clustered(50, seed=1)
    index = ItemIndex.build(vectors, IndexConfig(kind="ivf-flat", nlist=64))
    with caplog.at_level(logging.WARNING, logger="recfunnel"):
        tune(index, queries, exact_top_k(vectors, queries, 100), 100, target=1.01)
    assert "under" in caplog.text


def test_add_save_and_load(tmp_path):
    vectors = clustered(1000)
    index = ItemIndex.build(vectors[:900])
    assert index.add(vectors[900:]).tolist() == list(range(900, 1000))
    index.save(tmp_path / "i.faiss")
    loaded = ItemIndex.load(tmp_path / "i.faiss", index.config)
    assert loaded.size == 1000
    assert loaded.search(vectors[950:951], 1)[0][0, 0] == 950


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        IndexConfig(kind="annoy")
