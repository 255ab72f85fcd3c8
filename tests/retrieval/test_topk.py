import numpy as np
import scipy.sparse as sp

from recfunnel.retrieval.topk import PAD, rank_users, top_k


def test_orders_by_score_then_index_and_excludes_history():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.2]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[0, 0, 1, 0, 0]]))
    items, values = top_k(scores, 3, exclude)
    assert items.tolist() == [[1, 3, 4]]
    assert values.tolist() == [[np.float32(0.9), np.float32(0.9), np.float32(0.2)]]


def test_ties_across_the_cut_take_the_lowest_indices():
    scores = np.ones((2, 6), dtype=np.float32)
    scores[1, 5] = 2
    items, _ = top_k(scores, 2)
    assert items.tolist() == [[0, 1], [5, 0]]


def test_pad_when_history_covers_the_catalog():
    items, values = top_k(np.ones((1, 3), dtype=np.float32), 3, sp.csr_matrix(np.array([[1, 1, 0]])))
    assert items.tolist() == [[2, PAD, PAD]] and np.isneginf(values[0, 1:]).all()


def test_rank_users_batches_agree_with_one_batch():
    rng = np.random.default_rng(0)
    table = rng.random((50, 30)).astype(np.float32)
    history = sp.random(50, 30, density=0.2, format="csr", random_state=1)
    users = np.arange(50)
    one, _ = rank_users(lambda b: table[b], users, history, 10, batch_size=64)
    many, _ = rank_users(lambda b: table[b], users, history, 10, batch_size=7)
    assert np.array_equal(one, many)
    assert not any(history[u, i] for u in users for i in one[u])


def test_agrees_with_a_full_sort_on_ties_excluded_and_missing_scores():
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        scores = rng.integers(0, 20, (40, 300)).astype(dtype)  # many ties
        scores[rng.random(scores.shape) < 0.1] = -np.inf
        scores[rng.random(scores.shape) < 0.02] = np.nan
        for k in (1, 7, 64, 299, 400):
            items, values = top_k(scores.copy(), k)
            assert values.dtype == dtype and items.shape == (40, min(k, 300))
            for row, got in zip(scores, items):
                present = np.flatnonzero(np.isfinite(row))
                want = present[np.lexsort((present, -row[present]))][:k]
                assert got[:len(want)].tolist() == want.tolist()
                assert (got[len(want):] == PAD).all()
