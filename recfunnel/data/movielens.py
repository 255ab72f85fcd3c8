"""Loaders for the MovieLens-1M and MovieLens-100K file layouts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from recfunnel.data.dataset import Dataset
from recfunnel.data.indexing import build_dataset
from recfunnel.data.tables import Table, read_delimited
from recfunnel.errors import DataError

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")


def load_ml1m(directory: Path) -> Dataset:
    """``users.dat``, ``movies.dat`` and ``ratings.dat``: '::'-separated, latin-1."""
    ratings = read_delimited(directory / "ratings.dat", sep="::",
                             columns=["user_id", "item_id", "rating", "timestamp"])
    users = read_delimited(directory / "users.dat", sep="::",
                           columns=["user_id", "gender", "age", "occupation", "zip"])
    movies = read_delimited(directory / "movies.dat", sep="::",
                            columns=["item_id", "title", "genres"])
    user_table = _user_table(users)
    titles = movies.frame["title"].str.strip()
    item_table = pd.DataFrame({
        "item_id": movies.unique("item_id", movies.integers("item_id")),
        "title": titles,
        "genres": [[g for g in s.split("|") if g] for s in movies.frame["genres"].str.strip()],
        "year": _year_from_titles(titles),
    })
    return build_dataset("ml-1m", ratings, user_table, item_table,
                         user_source=users.path, item_source=movies.path, integer_ids=True)


def _user_table(users: Table) -> pd.DataFrame:
    """The user table both layouts share: id (unique), gender, age, occupation, zip code."""
    return pd.DataFrame({
        "user_id": users.unique("user_id", users.integers("user_id")),
        "gender": users.frame["gender"].str.strip(),
        "age": users.integers("age"),
        "occupation": users.frame["occupation"].str.strip(),
        "zip": users.frame["zip"].str.strip(),
    })


def load_ml100k(directory: Path) -> Dataset:
    """``u.data`` (tab-separated), ``u.user`` and ``u.item`` ('|'-separated, latin-1)."""
    ratings = read_delimited(directory / "u.data", sep="\t",
                             columns=["user_id", "item_id", "rating", "timestamp"])
    users = read_delimited(directory / "u.user", sep="|",
                           columns=["user_id", "age", "gender", "occupation", "zip"])
    flag_columns = [f"g{i}" for i in range(len(ML100K_GENRES))]
    items = read_delimited(directory / "u.item", sep="|",
                           columns=["item_id", "title", "release", "video", "url", *flag_columns])
    user_table = _user_table(users)
    flags = np.stack([items.integers(c, what="genre flag") for c in flag_columns], axis=1)
    if ((flags != 0) & (flags != 1)).any():
        row = int(np.flatnonzero(((flags != 0) & (flags != 1)).any(axis=1))[0])
        raise items.fail(row, "genre flags must be 0 or 1")
    release = pd.to_datetime(items.frame["release"].str.strip(), format="%d-%b-%Y", errors="coerce")
    titles = items.frame["title"].str.strip()
    item_table = pd.DataFrame({
        "item_id": items.unique("item_id", items.integers("item_id")),
        "title": titles,
        "genres": [[ML100K_GENRES[j] for j in np.flatnonzero(row)] for row in flags],
        "year": release.dt.year.astype("float64").fillna(pd.Series(_year_from_titles(titles))),
    })
    return build_dataset("ml-100k", ratings, user_table, item_table,
                         user_source=users.path, item_source=items.path, integer_ids=True)


def _year_from_titles(titles: pd.Series) -> np.ndarray:
    return titles.str.extract(_YEAR_IN_TITLE, expand=False).astype("float64").to_numpy()


def detect_movielens(directory: Path) -> str | None:
    """'ml-1m' or 'ml-100k' when the directory has that layout's ratings file."""
    if (directory / "ratings.dat").is_file():
        return "ml-1m"
    if (directory / "u.data").is_file():
        return "ml-100k"
    if (directory / "users.dat").is_file() and (directory / "movies.dat").is_file():
        raise DataError(f"{directory}: has MovieLens-1M users.dat and movies.dat but no ratings.dat")
    return None
