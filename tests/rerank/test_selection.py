"""The compiled greedy pick on its own: value order, the diversity penalty, constraints as
groups, and the order in which conflicting constraints give way."""

import numpy as np
import pytest

from recfunnel.rerank.selection import Groups

VALUE = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5])
NONE = np.zeros(0, dtype=np.int64)


def test_without_rules_the_picks_follow_the_value():
    picks = Groups.of([]).picks(VALUE, None, 0.0, NONE, NONE, 4)
    assert picks.chosen.tolist() == [0, 1, 2, 3]
    assert picks.penalty.tolist() == [0.0] * 4 and picks.displaced.shape == (4, 0)


def test_the_penalty_is_the_weight_times_the_closest_similarity():
    vectors = np.eye(6, dtype=np.float32)
    vectors[1] = vectors[0]  # item 1 repeats item 0
    vectors[2] = np.array([0.6, 0.8, 0, 0, 0, 0], dtype=np.float32)  # 0.6 like item 0
    value = np.array([1.0, 0.95, 0.9, 0.5, 0.4, 0.3])
    picks = Groups.of([]).picks(value, vectors, 0.5, NONE, NONE, 3)
    assert picks.chosen.tolist() == [0, 2, 3]  # 1 pays 0.5 (0.45 left), 2 only 0.3 (0.6 left)
    assert picks.penalty.tolist() == pytest.approx([0.0, 0.3, 0.0])


def test_the_last_constraint_gives_way_first():
    """Two tail items are owed by the end (first constraint), but both are of genre A, which
    may appear once (second): the cap gives way, the quota holds."""
    tail = np.array([[0], [0], [0], [0], [1], [1]], dtype=bool)
    genre_a = np.array([[0], [0], [0], [0], [1], [1]], dtype=bool)
    picks = Groups.of([tail, genre_a]).picks(VALUE, None, 0.0, np.array([2, 0]),
                                             np.array([6, 1]), 3)
    assert picks.chosen.tolist() == [0, 4, 5]
    assert picks.free.tolist() == [0, 1, 1]
    # the quota took both slots from item 1; the cap, relaxed, is not what moved the last
    assert picks.displaced.tolist() == [[False, False], [True, False], [True, False]]
    quota_last = Groups.of([genre_a, tail]).picks(VALUE, None, 0.0, np.array([0, 2]),
                                                  np.array([1, 6]), 3)
    assert quota_last.chosen.tolist() == [0, 4, 1]  # now the quota gives way


def test_a_full_group_shuts_out_its_members():
    two_genres = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1], [1, 1]], dtype=bool)
    picks = Groups.of([two_genres]).picks(VALUE, None, 0.0, np.zeros(2, dtype=np.int64),
                                          np.array([2, 3]), 5)
    assert picks.chosen.tolist() == [0, 1, 3, 4, 2]  # genre 0 full after two; relaxed at the end


def test_rows_say_which_items_vectors_and_groups_the_values_have():
    """The values of items 1, 3, 0 and 2 of a table whose item 3 repeats item 1: read by row,
    the picks are those of the table's rows gathered in that order."""
    vectors = np.eye(4, dtype=np.float32)
    vectors[3] = vectors[1]
    tail = np.array([[0], [0], [1], [0]], dtype=bool)  # item 2
    rows = np.array([1, 3, 0, 2])
    value = np.array([1.0, 0.95, 0.9, 0.3])
    quota = (np.array([1]), np.array([3]))
    by_row = Groups.of([tail]).picks(value, vectors, 0.5, *quota, 3, rows=rows)
    gathered = Groups.of([tail[rows]]).picks(value, vectors[rows], 0.5, *quota, 3)
    # item 3 pays for item 1 (0.45 left), then the quota gives the last slot to item 2
    assert by_row.chosen.tolist() == [0, 2, 3] and by_row.free.tolist() == [0, 2, 1]
    for field in ("chosen", "penalty", "free", "displaced"):
        np.testing.assert_array_equal(getattr(by_row, field), getattr(gathered, field))
