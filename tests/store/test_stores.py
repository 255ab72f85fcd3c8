"""One behaviour test suite, run against every feature-store backend."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from recfunnel.store.base import Event
from recfunnel.store.redis_store import RedisStore
from recfunnel.store.sqlite_store import RECENT_KEPT, SQLiteStore


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "store.sqlite")
    else:
        url = request.getfixturevalue("redis_server")
        s = RedisStore(url, prefix=f"test-{uuid.uuid4().hex[:8]}:")  # isolated per test
    yield s
    s.close()


def test_items_round_trip(store):
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    features = [{"title": "A", "genres": ["Drama"]}, {"title": "B", "genres": []},
                {"title": "C", "year": None}]
    store.put_items([0, 1, 2], features, vectors)
    assert store.n_items() == 3
    assert np.array_equal(store.item_vectors([2, 0]), vectors[[2, 0]])
    assert store.item_features([1, 2]) == features[1:]
    store.put_items([1], [{"title": "B2"}], vectors[:1] + 1)  # replace
    assert store.item_features([1]) == [{"title": "B2"}]
    assert store.n_items() == 3
    with pytest.raises(KeyError):
        store.item_vectors([0, 7])


def test_users_and_unknown_user(store):
    store.put_users([5], [{"age": 25, "gender": "F"}])
    assert store.user_features(5) == {"age": 25, "gender": "F"}
    assert store.user_features(6) is None
    assert len(store.recent_items(6, 10)) == 0


def test_recent_items_are_time_ordered_with_arrival_breaking_ties(store):
    store.append_events([Event(1, 10, 300), Event(1, 11, 100), Event(2, 99, 50)])
    store.append_events([Event(1, 12, 300, "rating", 4.0), Event(1, 13, 200)])
    assert store.recent_items(1, 10).tolist() == [11, 13, 10, 12]
    assert store.recent_items(1, 2).tolist() == [10, 12]
    assert store.recent_items(2, 5).tolist() == [99]
    assert len(store.recent_items(1, 0)) == 0


def test_seen_items_hold_every_event_of_the_user(store):
    assert len(store.seen_items(1)) == 0
    store.append_events([Event(1, 10, 300), Event(1, 11, 100), Event(2, 99, 50)])
    store.append_events([Event(1, 10, 400), Event(1, 13, 200)])
    assert set(store.seen_items(1).tolist()) == {10, 11, 13}
    assert store.seen_items(2).tolist() == [99]


def test_disliked_items_are_low_ratings_only(store):
    store.append_events([Event(1, 10, 1, "rating", 2.0), Event(1, 11, 2, "rating", 4.0),
                         Event(1, 12, 3), Event(1, 13, 4, "rating", 1.0), Event(2, 14, 5)])
    assert sorted(store.disliked_items(1).tolist()) == [10, 13]
    assert len(store.disliked_items(2)) == 0 and len(store.disliked_items(99)) == 0


@pytest.mark.parametrize("n_recent", [0, 2, 10])
def test_user_state_is_the_four_reads_in_one(store, n_recent):
    store.put_users([1], [{"age": 30}])
    store.append_events([Event(1, 10, 300), Event(1, 11, 100, "rating", 1.0), Event(2, 99, 50)])
    store.append_events([Event(1, 12, 300, "rating", 2.0), Event(1, 13, 200)])
    for user in (1, 2, 77):  # with features and events, events only, nothing
        state = store.user_state(user, n_recent)
        assert state.features == store.user_features(user)
        assert state.recent.tolist() == store.recent_items(user, n_recent).tolist()
        assert state.seen.tolist() == store.seen_items(user).tolist()
        assert state.disliked.tolist() == store.disliked_items(user).tolist()
    assert store.user_state(1, 10).recent.tolist() == [11, 13, 10, 12]
    assert sorted(store.user_state(1, 0).disliked.tolist()) == [11, 12]


def test_user_state_reads_windows_longer_than_the_sqlite_store_keeps_at_hand(store):
    n = RECENT_KEPT + 40
    times = np.random.default_rng(0).permutation(n)  # arriving out of time order
    store.append_events([Event(1, int(i), int(t)) for i, t in zip(range(n), times)])
    in_time_order = np.argsort(times).tolist()
    for n_recent in (RECENT_KEPT - 1, RECENT_KEPT, n, n + 5):
        assert store.user_state(1, n_recent).recent.tolist() == in_time_order[-n_recent:]


def test_load_tables(store):
    users = pd.DataFrame({"user_id": [7, 8], "age": [18, 35]})
    items = pd.DataFrame({"item_id": [1, 2, 3], "title": ["x", "y", "z"],
                          "genres": [["A"], ["B"], []], "year": [1990.0, np.nan, 2000.0]})
    interactions = pd.DataFrame({"user": [0, 0, 1], "item": [2, 0, 1],
                                 "timestamp": [5, 9, 1], "rating": [4.0, 2.0, np.nan]})
    store.load_tables(users, items, np.eye(3, dtype=np.float32), interactions)
    assert store.user_features(1) == {"user_id": 8, "age": 35}
    assert store.item_features([1])[0] == {"item_id": 2, "title": "y", "genres": ["B"], "year": None}
    assert store.recent_items(0, 5).tolist() == [2, 0]
    assert np.array_equal(store.item_vectors([1]), [[0, 1, 0]])


def test_sqlite_writes_survive_reopening(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as s:
        s.append_events([Event(3, 4, 1)])
    with SQLiteStore(tmp_path / "s.sqlite") as s:
        assert s.recent_items(3, 5).tolist() == [4]
        assert s.seen_items(3).tolist() == [4]


def test_sqlite_store_from_before_the_activity_table_is_rebuilt_from_its_events(tmp_path):
    import sqlite3
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, user INTEGER NOT NULL,
                             item INTEGER NOT NULL, timestamp INTEGER NOT NULL,
                             kind TEXT NOT NULL, value REAL);
        CREATE TABLE seen (user INTEGER PRIMARY KEY, items BLOB NOT NULL);
        CREATE TABLE disliked (user INTEGER PRIMARY KEY, items BLOB NOT NULL);
        INSERT INTO events (user, item, timestamp, kind, value) VALUES
            (1, 10, 300, 'watch', NULL), (1, 11, 100, 'rating', 1.0), (1, 12, 300, 'rating', 5.0);
    """)
    old.close()
    with SQLiteStore(path) as s:
        state = s.user_state(1, 10)
        assert state.recent.tolist() == [11, 10, 12]
        assert sorted(state.seen.tolist()) == [10, 11, 12] and state.disliked.tolist() == [11]
        tables = {n for (n,) in s._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "seen" not in tables and "disliked" not in tables
