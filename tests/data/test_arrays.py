import numpy as np
import pytest
import scipy.sparse as sp

from recfunnel.data.arrays import Int16Rows, column_counts, contained, distinct


@pytest.mark.parametrize("shape", [(0,), (7,), (100,), (3, 40)])
@pytest.mark.parametrize("n_among", [0, 1, 5, 100])
def test_contained_answers_as_np_isin(shape, n_among):
    rng = np.random.default_rng(n_among)
    values = rng.integers(-1, 60, shape)
    among = rng.integers(0, 60, n_among)  # repeats, unsorted
    result = contained(values, among)
    assert result.shape == values.shape and result.dtype == bool
    assert np.array_equal(result, np.isin(values, among))


def test_contained_past_both_ends_of_among():
    assert contained(np.array([-5, 3, 9, 100]), np.array([9, 3])).tolist() == [False, True, True,
                                                                              False]


@pytest.mark.parametrize("values", [[], [4], [3, 3, 3], [9, -1, 4, 9, 0, 4],
                                    list(range(50, 0, -1))])
def test_distinct_answers_as_np_unique(values):
    values = np.array(values, dtype=np.int64)
    result = distinct(values)
    assert result.dtype == np.int64
    assert np.array_equal(result, np.unique(values))


@pytest.mark.parametrize("rows", [[], [0], [2, 0, 2], [4, 1, 3, 0]])
def test_column_counts_count_the_rows_entries(rows):
    matrix = sp.csr_matrix(np.array([[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1], [0, 0, 1, 0],
                                     [1, 1, 1, 1]]))
    rows = np.array(rows, dtype=np.int64)
    assert column_counts(matrix, rows).tolist() == np.bincount(matrix[rows].indices,
                                                               minlength=4).tolist()


@pytest.mark.parametrize("rows", [[], [3], [0, 4, 2], [1, 1]])
def test_int16_rows_add_up_the_rows_named_within_half_a_step_each(rows):
    matrix = np.sin(np.arange(30, dtype=np.float32)).reshape(5, 6) * 0.3
    quantised = Int16Rows.of(matrix)
    assert quantised.values.dtype == np.int16 and quantised.scale == pytest.approx(0.3 / 32767,
                                                                                  rel=0.01)
    rows = np.array(rows, dtype=np.int64)
    total = quantised.sum_rows(rows)
    assert total.dtype == np.float32 and total.shape == (6,)
    np.testing.assert_allclose(total, matrix[rows].sum(0), rtol=0,
                               atol=quantised.scale / 2 * max(len(rows), 1) + 1e-7)


def test_int16_rows_saved_and_loaded_are_a_read_only_map_of_the_same_values(tmp_path):
    quantised = Int16Rows.of(np.cos(np.arange(12, dtype=np.float32)).reshape(3, 4))
    scale = quantised.save(tmp_path / "rows.npy")
    loaded = Int16Rows.load(tmp_path / "rows.npy", scale)
    assert isinstance(loaded.values, np.memmap) and not loaded.values.flags.writeable
    assert loaded.scale == quantised.scale and np.array_equal(loaded.values, quantised.values)
    rows = np.array([2, 0])
    assert loaded.sum_rows(rows).tolist() == quantised.sum_rows(rows).tolist()


def test_int16_rows_of_zeros():
    quantised = Int16Rows.of(np.zeros((2, 3)))
    assert quantised.sum_rows(np.array([0, 1])).tolist() == [0.0, 0.0, 0.0]
