"""One entry point for every data source: ``load("ml-1m")``, ``load("path/to/ml-100k")``, ``load("log.csv")``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from recfunnel.data import download
from recfunnel.data.dataset import Dataset
from recfunnel.data.interaction_log import TABLE_SUFFIXES, load_interaction_log
from recfunnel.data.movielens import detect_movielens, load_ml1m, load_ml100k
from recfunnel.errors import DataError

Format = Literal["auto", "ml-1m", "ml-100k", "interactions"]
FORMATS: tuple[str, ...] = ("auto", "ml-1m", "ml-100k", "interactions")


def load(
    source: str | Path,
    format: Format = "auto",
    *,
    data_dir: Path | None = None,
    user_features: Path | None = None,
    item_features: Path | None = None,
) -> Dataset:
    """Load a dataset by name (``ml-1m``, ``ml-100k``: local copy or download) or by path."""
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    path = Path(source)
    if str(source) in download.ARCHIVES and not path.exists():
        path = download.fetch(str(source), data_dir)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory (give a dataset directory, a log file, "
                        f"or one of {', '.join(download.ARCHIVES)})")
    if format == "auto":
        format = _detect(path)
    if format == "ml-1m":
        return load_ml1m(_as_dir(path))
    if format == "ml-100k":
        return load_ml100k(_as_dir(path))
    return load_interaction_log(path, user_features=user_features, item_features=item_features)


def _detect(path: Path) -> Format:
    if path.is_file():
        if path.suffix.lower() in TABLE_SUFFIXES:
            return "interactions"
        if path.name in ("ratings.dat", "u.data"):
            return detect_movielens(path.parent)  # type: ignore[return-value]
        raise DataError(f"{path}: cannot tell the format from the name; expected a directory, "
                        f"a {'/'.join(TABLE_SUFFIXES)} file, or --format")
    found = detect_movielens(path)
    return found or "interactions"  # type: ignore[return-value]


def _as_dir(path: Path) -> Path:
    return path if path.is_dir() else path.parent
