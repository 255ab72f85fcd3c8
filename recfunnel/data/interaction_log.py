"""Loader for a user's own interaction log: CSV/TSV/Parquet plus optional feature tables.

The log needs ``user_id``, ``item_id`` and ``timestamp`` (integer epoch seconds or a date/time
string) and may have ``rating``. An item table (``item_id`` and optionally ``title``, ``genres``
separated by '|', ``year``, anything else) and a user table (``user_id`` plus any columns) are optional.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recfunnel.data.dataset import Dataset
from recfunnel.data.indexing import build_dataset
from recfunnel.data.tables import Table, read_table
from recfunnel.errors import DataError

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
_LOG_NAMES = ("interactions", "ratings", "events")


def load_interaction_log(
    path: Path, *, user_features: Path | None = None, item_features: Path | None = None
) -> Dataset:
    """Load a log file, or a directory holding ``interactions.*`` and optionally ``users.*``/``items.*``."""
    if path.is_dir():
        log_file = _find(path, _LOG_NAMES)
        if log_file is None:
            raise DataError(f"{path}: no interactions.csv/.parquet (or ratings.*, events.*) found")
        user_features = user_features or _find(path, ("users",))
        item_features = item_features or _find(path, ("items",))
        path = log_file
    log = read_table(path)
    log.require_columns(["user_id", "item_id", "timestamp"])
    users = _user_table(read_table(user_features)) if user_features else None
    items = item_table(read_table(item_features)) if item_features else None
    return build_dataset(path.stem, log, users, items, user_source=user_features,
                         item_source=item_features, timestamps=_timestamps(log))


def _find(directory: Path, stems: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for suffix in TABLE_SUFFIXES:
            if (directory / f"{stem}{suffix}").is_file():
                return directory / f"{stem}{suffix}"
    return None


def _timestamps(log: Table) -> np.ndarray:
    """Epoch seconds; cells that are not numbers are parsed as dates (UTC unless they say otherwise)."""
    values = log.frame["timestamp"]
    numeric = pd.to_numeric(values, errors="coerce")
    dates = ~numeric.notna().to_numpy()
    if not dates.any():
        return log.integers("timestamp")
    parsed = pd.to_datetime(values[dates], errors="coerce", utc=True, format="mixed")
    if parsed.isna().any():
        row = int(np.flatnonzero(dates)[np.flatnonzero(parsed.isna().to_numpy())[0]])
        raise log.fail(row, f"timestamp {values.iloc[row]!r} is neither epoch seconds nor a date")
    seconds = numeric.to_numpy(dtype=np.float64, na_value=0.0).astype(np.int64)
    seconds[dates] = parsed.dt.as_unit("s").astype("int64").to_numpy()
    return seconds


def _user_table(table: Table) -> pd.DataFrame:
    table.require_columns(["user_id"])
    frame = table.frame.copy()
    frame["user_id"] = table.unique("user_id", table.ids("user_id"))
    return frame


def item_table(table: Table) -> pd.DataFrame:
    """An item table's rows: ``item_id`` (unique), ``title``, ``genres`` (list), ``year`` (float)."""
    table.require_columns(["item_id"])
    frame = table.frame.copy()
    frame["item_id"] = table.unique("item_id", table.ids("item_id"))
    frame["title"] = frame["title"].astype(str) if "title" in frame else frame["item_id"].astype(str)
    frame["genres"] = ([[g for g in str(s).split("|") if g] for s in frame["genres"]]
                       if "genres" in frame else [[] for _ in range(len(frame))])
    frame["year"] = table.floats("year", allow_empty=True) if "year" in frame else np.nan
    return frame
