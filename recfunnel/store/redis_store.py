"""The server feature store: Redis. Items and users are hashes; each user's events a sorted set
scored by timestamp, members prefixed with a global sequence number so ties keep arrival order.
Durability of acknowledged writes is the server's: run it with ``appendonly yes`` and
``appendfsync always``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import redis

from recfunnel.errors import RecfunnelError
from recfunnel.store.base import Event, FeatureStore, UserState


class RedisStore(FeatureStore):
    def __init__(self, url: str = "redis://localhost:6379/0", prefix: str = "recfunnel:"):
        self.prefix = prefix
        self._r = redis.Redis.from_url(url)
        try:
            self._r.ping()
        except redis.ConnectionError as err:
            raise RecfunnelError(f"cannot reach Redis at {url}: {err}") from None

    def _key(self, *parts: object) -> str:
        return self.prefix + ":".join(map(str, parts))

    def put_items(self, items: Iterable[int], features: list[dict[str, Any]],
                  vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._r.pipeline(transaction=True) as pipe:
            for count, (i, f, v) in enumerate(zip(items, features, vectors), 1):
                pipe.hset(self._key("item", int(i)), mapping={"features": json.dumps(f),
                                                              "vector": v.tobytes()})
                pipe.sadd(self._key("items"), int(i))
                if count % 10_000 == 0:
                    pipe.execute()
            pipe.execute()

    def _item_values(self, field: str, items: Iterable[int]) -> list[bytes]:
        wanted = [int(i) for i in items]
        with self._r.pipeline(transaction=False) as pipe:
            for i in wanted:
                pipe.hget(self._key("item", i), field)
            values = pipe.execute()
        missing = [i for i, v in zip(wanted, values) if v is None]
        if missing:
            raise KeyError(f"items not in the store: {missing[:10]}")
        return values

    def n_items(self) -> int:
        return int(self._r.scard(self._key("items")))

    def put_users(self, users: Iterable[int], features: list[dict[str, Any]]) -> None:
        with self._r.pipeline(transaction=True) as pipe:
            for u, f in zip(users, features):
                pipe.set(self._key("user", int(u)), json.dumps(f))
            pipe.execute()

    def user_features(self, user: int) -> dict[str, Any] | None:
        raw = self._r.get(self._key("user", int(user)))
        return json.loads(raw) if raw is not None else None

    def append_events(self, events: list[Event]) -> None:
        if not events:
            return
        last = self._r.incrby(self._key("seq"), len(events))
        with self._r.pipeline(transaction=True) as pipe:
            for seq, e in enumerate(events, last - len(events) + 1):
                record = json.dumps([e.item, e.kind, e.value])
                pipe.zadd(self._key("events", e.user), {f"{seq:016d}|{record}": e.timestamp})
                pipe.append(self._key("seen", e.user), np.int64(e.item).tobytes())
                if e.dislike:
                    pipe.append(self._key("disliked", e.user), np.int64(e.item).tobytes())
                if seq % 10_000 == 0:
                    pipe.execute()
            pipe.execute()

    def recent_items(self, user: int, n: int) -> np.ndarray:
        members = self._r.zrange(self._key("events", int(user)), -int(n), -1) if n > 0 else []
        return _event_items(members)

    def seen_items(self, user: int) -> np.ndarray:
        return self._items_blob("seen", user)

    def disliked_items(self, user: int) -> np.ndarray:
        return self._items_blob("disliked", user)

    def user_state(self, user: int, n_recent: int) -> UserState:
        user = int(user)
        with self._r.pipeline(transaction=False) as pipe:  # one round trip for four reads
            pipe.get(self._key("user", user))
            if n_recent > 0:
                pipe.zrange(self._key("events", user), -int(n_recent), -1)
            pipe.get(self._key("seen", user))
            pipe.get(self._key("disliked", user))
            replies = pipe.execute()
        raw, *members, seen, disliked = replies
        return UserState(json.loads(raw) if raw is not None else None,
                         _event_items(members[0] if members else []),
                         _int_array(seen), _int_array(disliked))

    def _items_blob(self, name: str, user: int) -> np.ndarray:
        return _int_array(self._r.get(self._key(name, int(user))))

    def close(self) -> None:
        self._r.close()


def _event_items(members: list[bytes]) -> np.ndarray:
    """Item ids of sorted-set members ``seq|[item, kind, value]``."""
    return np.array([json.loads(m.split(b"|", 1)[1])[0] for m in members], dtype=np.int64)


def _int_array(raw: bytes | None) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.int64) if raw else np.zeros(0, dtype=np.int64)
