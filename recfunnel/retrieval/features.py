"""The one feature code path of the two-tower model: the functions that build a training batch
build a live request too, so training and serving cannot drift apart.

Item features: genre multi-hot, release-year bucket, hashed title words. User features: demographic
categories (age, gender, occupation, zip prefix; whichever the data has) and the recent history.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from recfunnel.data.dataset import Dataset

TITLE_BUCKETS = 4096
TITLE_WORDS = 8
YEAR_BUCKETS = (1930, 1950, 1960, 1970, 1980, 1985, 1990, 1993, 1995, 1996, 1997, 1998, 1999, 2005)
USER_FIELDS = ("age", "gender", "occupation", "zip")
_WORD = re.compile(r"[a-z0-9]+")
_YEAR_SUFFIX = re.compile(r"\(\d{4}\)\s*$")


@dataclass
class FeatureSpec:
    """Vocabularies fixed at training time, saved with the model, reused for every request."""

    genres: list[str]
    user_fields: dict[str, list[str]]  # field -> known values; index 0 means unknown
    history_length: int = 20

    @classmethod
    def from_dataset(cls, dataset: Dataset, history_length: int = 20) -> FeatureSpec:
        fields = {f: sorted(map(str, _user_column(dataset.users, f).unique()))
                  for f in USER_FIELDS if f in dataset.users}
        return cls(dataset.genre_vocabulary(), fields, history_length)

    def __post_init__(self) -> None:
        self.lookups = {f: {v: j + 1 for j, v in enumerate(values)}
                        for f, values in self.user_fields.items()}

    def to_dict(self) -> dict:
        return {"genres": self.genres, "user_fields": self.user_fields,
                "history_length": self.history_length}


def item_features(items: pd.DataFrame, spec: FeatureSpec) -> dict[str, torch.Tensor]:
    """Tensors for the item tower, one row per item of ``items`` (catalog or newly added)."""
    n = len(items)
    position = {g: j for j, g in enumerate(spec.genres)}
    genres = np.zeros((n, max(1, len(spec.genres))), dtype=np.float32)
    if "genres" in items:
        for i, gs in enumerate(items["genres"]):
            for g in gs:
                if g in position:
                    genres[i, position[g]] = 1.0
    years = items["year"].to_numpy(dtype=np.float64) if "year" in items else np.full(n, np.nan)
    year_bucket = np.where(np.isnan(years), 0, 1 + np.searchsorted(YEAR_BUCKETS, np.nan_to_num(years)))
    titles = np.zeros((n, TITLE_WORDS), dtype=np.int64)  # 0 is padding
    if "title" in items:
        for i, title in enumerate(items["title"].astype(str)):
            words = _WORD.findall(_YEAR_SUFFIX.sub("", title).lower())[:TITLE_WORDS]
            titles[i, :len(words)] = [1 + zlib.crc32(w.encode()) % (TITLE_BUCKETS - 1) for w in words]
    return {"genres": torch.from_numpy(genres), "year": torch.from_numpy(year_bucket),
            "title": torch.from_numpy(titles)}


def user_categories(users: pd.DataFrame, spec: FeatureSpec) -> torch.Tensor:
    """[n_users, n_fields] category indices (0 = unknown or missing) for the demographic fields."""
    rows = [category_codes(record, spec) for record in users.to_dict("records")]
    return torch.tensor(np.array(rows, dtype=np.int64).reshape(len(users), len(spec.user_fields)))


def category_codes(record: dict, spec: FeatureSpec) -> list[int]:
    """One user's category indices from their raw features (a table row, or a store record)."""
    codes = []
    for field, values in spec.user_fields.items():
        lookup = spec.lookups[field]
        value = record.get(field)
        codes.append(0 if value is None or value != value else lookup.get(_field_value(field, value), 0))
    return codes


def history_window(sequences: np.ndarray, offsets: np.ndarray, users: np.ndarray,
                   ends: np.ndarray, length: int) -> np.ndarray:
    """The last ``length`` items before position ``ends`` in each user's time-ordered sequence,
    right-aligned (most recent last) and padded with -1 (int64; NumPy, so that a live request
    does not go through PyTorch for it).

    ``sequences`` holds every user's items back to back in time order, ``offsets[u]`` where user
    ``u`` starts. Training asks for the history before each target; serving for the whole history.
    """
    starts = offsets[users]
    positions = starts[:, None] + ends[:, None] - length + np.arange(length)[None, :]
    valid = positions >= starts[:, None]
    if not len(sequences):  # nobody has history yet (a cold-start request)
        return np.full(positions.shape, -1, dtype=np.int64)
    # positions never pass the end of a user's items; below their start they are masked
    return np.where(valid, sequences[np.maximum(positions, 0)], -1).astype(np.int64, copy=False)


def _user_column(users: pd.DataFrame, field: str) -> pd.Series:
    return users[field].dropna().map(lambda v: _field_value(field, v))


def _field_value(field: str, value: object) -> str:
    text = str(value)
    return text[:1] if field == "zip" else text  # zip prefix: the region, not the street
