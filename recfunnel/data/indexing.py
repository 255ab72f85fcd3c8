"""Turning raw ids from any source into the dense indices of a :class:`Dataset`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from recfunnel.data.dataset import Dataset
from recfunnel.data.tables import Table, as_python

log = logging.getLogger(__name__)


def build_dataset(
    name: str,
    ratings: Table,
    users: pd.DataFrame | None,
    items: pd.DataFrame | None,
    *,
    user_source: Path | None = None,
    item_source: Path | None = None,
    timestamps: np.ndarray | None = None,
    integer_ids: bool = False,
) -> Dataset:
    """Index an interaction table against optional user/item tables (keyed by raw ``user_id``/``item_id``).

    Every id in the interactions must exist in a given feature table. Users and items that only
    appear in the feature tables are kept: they are part of the catalog (cold items) or the user base.
    Repeated (user, item) pairs keep their latest interaction, and the count is logged.
    """
    parse_ids = ratings.integers if integer_ids else ratings.ids
    raw_users = parse_ids("user_id")
    raw_items = parse_ids("item_id")
    stamps = ratings.integers("timestamp") if timestamps is None else timestamps
    rating = (ratings.floats("rating", allow_empty=True) if "rating" in ratings.frame
              else np.full(len(raw_users), np.nan))

    users = _vocabulary(users, "user_id", raw_users)
    items = _vocabulary(items, "item_id", raw_items)
    user_idx = _index_into(users["user_id"], raw_users, ratings, "user_id", user_source)
    item_idx = _index_into(items["item_id"], raw_items, ratings, "item_id", item_source)

    interactions = pd.DataFrame({
        "user": user_idx.astype(np.int32),
        "item": item_idx.astype(np.int32),
        "timestamp": stamps.astype(np.int64),
        "rating": rating.astype(np.float32),
    })
    order = np.lexsort((np.arange(len(interactions)), interactions["timestamp"].to_numpy()))
    latest = ~interactions.iloc[order].duplicated(["user", "item"], keep="last")
    repeats = int((~latest).sum())
    info = {"repeated_pairs_collapsed": repeats}
    if repeats:
        log.warning("%s: %d repeated (user, item) interactions collapsed to their latest one",
                    ratings.path, repeats)
        keep = np.zeros(len(interactions), dtype=bool)
        keep[order[latest.to_numpy()]] = True
        interactions = interactions[keep].reset_index(drop=True)
    return Dataset(name=name, interactions=interactions, users=users, items=items, info=info)


def _vocabulary(table: pd.DataFrame | None, key: str, seen: np.ndarray) -> pd.DataFrame:
    """The given feature table, or one built from the ids seen in the interactions (first-seen order)."""
    if table is not None:
        return table.reset_index(drop=True)
    return pd.DataFrame({key: pd.unique(seen)})


def _index_into(vocab: pd.Series, raw: np.ndarray, ratings: Table, key: str,
                source: Path | None) -> np.ndarray:
    vocab_values = vocab.to_numpy()
    if vocab_values.dtype != raw.dtype:  # e.g. string ids in one file, integers in the other
        vocab_values, raw = vocab_values.astype(str), raw.astype(str)
    index = pd.Index(vocab_values).get_indexer(raw)
    missing = index < 0
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        where = f"in {source}" if source else "in the feature table"
        raise ratings.fail(row, f"{key} {as_python(raw[row])!r} is not {where}")
    return index
