"""The embedded feature store: one SQLite file in WAL mode, fsync on every commit."""

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
CREATE TABLE IF NOT EXISTS seen (user INTEGER PRIMARY KEY, items BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS disliked (user INTEGER PRIMARY KEY, items BLOB NOT NULL);
"""


class SQLiteStore(FeatureStore):
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()  # one connection shared by a server's threads
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives a crash
        self._db.executescript(SCHEMA)

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
        seen: dict[int, list[int]] = defaultdict(list)
        disliked: dict[int, list[int]] = defaultdict(list)
        for e in events:
            seen[int(e.user)].append(int(e.item))
            if e.dislike:
                disliked[int(e.user)].append(int(e.item))
        with self._transaction() as db:
            db.executemany("INSERT INTO events (user, item, timestamp, kind, value) "
                           "VALUES (?, ?, ?, ?, ?)",
                           ((e.user, e.item, e.timestamp, e.kind, e.value) for e in events))
            for table, new in (("seen", seen), ("disliked", disliked)):
                for user, items in new.items():
                    row = db.execute(f"SELECT items FROM {table} WHERE user = ?",
                                     (user,)).fetchone()
                    blob = (row[0] if row else b"") + np.array(items, dtype=np.int64).tobytes()
                    db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", (user, blob))

    def recent_items(self, user: int, n: int) -> np.ndarray:
        rows = self._read("SELECT item FROM events WHERE user = ? ORDER BY timestamp DESC, seq DESC "
                          "LIMIT ?", (int(user), int(n)))
        return np.array([r[0] for r in reversed(rows)], dtype=np.int64)

    def seen_items(self, user: int) -> np.ndarray:
        return self._items_blob("seen", user)

    def disliked_items(self, user: int) -> np.ndarray:
        return self._items_blob("disliked", user)

    def user_state(self, user: int, n_recent: int) -> UserState:
        # one statement: each execute costs tens of microseconds, as much as the reads themselves
        rows = self._read(
            "SELECT 0, features, 0, 0 FROM users WHERE user = ?1 "
            "UNION ALL SELECT 1, items, 0, 0 FROM seen WHERE user = ?1 "
            "UNION ALL SELECT 2, items, 0, 0 FROM disliked WHERE user = ?1 "
            "UNION ALL SELECT * FROM (SELECT 3, item, timestamp, seq FROM events WHERE user = ?1 "
            "ORDER BY timestamp DESC, seq DESC LIMIT ?2)", (int(user), int(n_recent)))
        values = {tag: value for tag, value, _, _ in rows if tag < 3}
        recent = sorted((timestamp, seq, item) for tag, item, timestamp, seq in rows if tag == 3)
        return UserState(
            json.loads(values[0]) if 0 in values else None,
            np.array([item for _, _, item in recent], dtype=np.int64),
            *(np.frombuffer(values[t], dtype=np.int64) if t in values
              else np.zeros(0, dtype=np.int64) for t in (1, 2)))

    def _items_blob(self, table: str, user: int) -> np.ndarray:
        rows = self._read(f"SELECT items FROM {table} WHERE user = ?", (int(user),))
        return np.frombuffer(rows[0][0], dtype=np.int64) if rows else np.zeros(0, dtype=np.int64)

    def close(self) -> None:
        self._db.close()
