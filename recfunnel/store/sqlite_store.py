"""The embedded feature store: one SQLite file in WAL mode, fsync on every commit.

Events are kept twice, in one transaction: as rows of an append-only log, and folded into one
``activity`` row per user (every item seen, every item disliked, the last ``RECENT_KEPT`` items in
time order), so that a request reads a user with two primary-key lookups in one statement.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from recfunnel.store.base import Event, FeatureStore, UserState

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (item INTEGER PRIMARY KEY, features TEXT NOT NULL,
                                  vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS users (user INTEGER PRIMARY KEY, features TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, user INTEGER NOT NULL,
                                   item INTEGER NOT NULL, timestamp INTEGER NOT NULL,
                                   kind TEXT NOT NULL, value REAL);
DROP INDEX IF EXISTS events_by_user;
CREATE INDEX IF NOT EXISTS events_recent ON events (user, timestamp, seq, item);
CREATE TABLE IF NOT EXISTS activity (user INTEGER PRIMARY KEY, seen BLOB NOT NULL,
                                     disliked BLOB NOT NULL, recent BLOB NOT NULL,
                                     recent_times BLOB NOT NULL);
"""
RECENT_KEPT = 512  # longer windows than this are read from the event log


class SQLiteStore(FeatureStore):
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()  # one connection shared by a server's threads
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives a crash
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Stores written before the ``activity`` table (they kept ``seen`` and ``disliked``
        tables) get it rebuilt from their event log."""
        tables = {name for (name,) in
                  self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "seen" not in tables:
            return
        with self._transaction() as db:
            rows = db.execute("SELECT user, item, timestamp, kind, value FROM events "
                              "ORDER BY seq").fetchall()
            _fold_activity(db, [Event(*row) for row in rows])
            db.execute("DROP TABLE seen")
            db.execute("DROP TABLE disliked")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _write(self, sql: str, rows: Iterable[tuple]) -> None:
        with self._transaction() as db:
            db.executemany(sql, rows)

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def put_items(self, items: Iterable[int], features: list[dict[str, Any]],
                  vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        self._write("INSERT OR REPLACE INTO items VALUES (?, ?, ?)",
                    ((int(i), json.dumps(f), v.tobytes())
                     for i, f, v in zip(items, features, vectors)))

    def _item_values(self, column: str, items: Iterable[int]) -> list[Any]:
        wanted = [int(i) for i in items]
        found: dict[int, Any] = {}
        for lo in range(0, len(wanted), 900):  # SQLite limits bound parameters per statement
            chunk = wanted[lo:lo + 900]
            marks = ",".join("?" * len(chunk))
            found.update(self._read(f"SELECT item, {column} FROM items WHERE item IN ({marks})",
                                    tuple(chunk)))
        missing = [i for i in wanted if i not in found]
        if missing:
            raise KeyError(f"items not in the store: {missing[:10]}")
        return [found[i] for i in wanted]

    def n_items(self) -> int:
        return self._read("SELECT COUNT(*) FROM items")[0][0]

    def put_users(self, users: Iterable[int], features: list[dict[str, Any]]) -> None:
        self._write("INSERT OR REPLACE INTO users VALUES (?, ?)",
                    ((int(u), json.dumps(f)) for u, f in zip(users, features)))

    def user_features(self, user: int) -> dict[str, Any] | None:
        rows = self._read("SELECT features FROM users WHERE user = ?", (int(user),))
        return json.loads(rows[0][0]) if rows else None

    def append_events(self, events: list[Event]) -> None:
        with self._transaction() as db:
            db.executemany("INSERT INTO events (user, item, timestamp, kind, value) "
                           "VALUES (?, ?, ?, ?, ?)",
                           ((e.user, e.item, e.timestamp, e.kind, e.value) for e in events))
            _fold_activity(db, events)

    def recent_items(self, user: int, n: int) -> np.ndarray:
        rows = self._read("SELECT item FROM events WHERE user = ? ORDER BY timestamp DESC, seq DESC "
                          "LIMIT ?", (int(user), int(n)))
        return np.array([r[0] for r in reversed(rows)], dtype=np.int64)

    def seen_items(self, user: int) -> np.ndarray:
        return self._activity(user)[0]

    def disliked_items(self, user: int) -> np.ndarray:
        return self._activity(user)[1]

    def user_state(self, user: int, n_recent: int) -> UserState:
        # one statement: each execute costs tens of microseconds, as much as the reads themselves
        features, *blobs = self._read(
            "SELECT users.features, activity.seen, activity.disliked, activity.recent "
            "FROM (SELECT ?1 AS user) AS asked LEFT JOIN users USING (user) "
            "LEFT JOIN activity USING (user)", (int(user),))[0]
        seen, disliked, recent = (_int64(blob) for blob in blobs)
        n_recent = max(0, int(n_recent))
        recent = (self.recent_items(user, n_recent) if n_recent > RECENT_KEPT
                  else recent[max(0, len(recent) - n_recent):])
        return UserState(json.loads(features) if features is not None else None, recent, seen,
                         disliked)

    def _activity(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._read("SELECT seen, disliked FROM activity WHERE user = ?", (int(user),))
        return (_int64(rows[0][0]), _int64(rows[0][1])) if rows else (_int64(None), _int64(None))

    def close(self) -> None:
        self._db.close()


def _fold_activity(db: sqlite3.Connection, events: list[Event]) -> None:
    """Add ``events`` (in arrival order) to their users' ``activity`` rows."""
    by_user: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        by_user[int(e.user)].append(e)
    for user, mine in by_user.items():
        row = db.execute("SELECT seen, disliked, recent, recent_times FROM activity "
                         "WHERE user = ?", (user,)).fetchone()
        seen, disliked, recent, times = (_int64(blob) for blob in row or (None,) * 4)
        items = np.array([e.item for e in mine], dtype=np.int64)
        recent = np.concatenate([recent, items])
        times = np.concatenate([times, np.array([e.timestamp for e in mine], dtype=np.int64)])
        order = np.argsort(times, kind="stable")[-RECENT_KEPT:]  # ties keep arrival order
        db.execute("INSERT OR REPLACE INTO activity VALUES (?, ?, ?, ?, ?)", (
            user, np.concatenate([seen, items]).tobytes(),
            np.concatenate([disliked, items[[e.dislike for e in mine]]]).tobytes(),
            recent[order].tobytes(), times[order].tobytes()))


def _int64(blob: bytes | None) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.int64) if blob else np.zeros(0, dtype=np.int64)
