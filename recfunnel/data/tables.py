"""Reading delimited and Parquet tables with errors that name the file and the line.

Files are parsed by pandas' C engine (fast at 10^7 rows); the slow line-by-line work happens only
after something is already wrong, to tell the user exactly where.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recfunnel.errors import DataError

_FIELD_SEP = "\x1f"  # ASCII unit separator: stands in for multi-character separators such as '::'


class Table:
    """A parsed table (all cells as strings) plus a way to name the source line of each row."""

    def __init__(self, path: Path, frame: pd.DataFrame, locate: Callable[[int], tuple[str, str]],
                 sep: str | None = None):
        self.path = path
        self.frame = frame
        self.locate = locate
        self.sep = sep  # set for header-less files, whose lines must have len(columns) fields

    def fail(self, row: int, message: str) -> DataError:
        where, line = self.locate(row)
        if self.sep is not None:
            found = len(line.split(self.sep))
            if found < len(self.frame.columns):
                message = (f"expected {len(self.frame.columns)} fields separated by "
                           f"{_show_sep(self.sep)}, found {found}")
        return DataError(f"{where}: {message}")

    def require_columns(self, columns: list[str]) -> None:
        missing = [c for c in columns if c not in self.frame.columns]
        if missing:
            have = ", ".join(map(str, self.frame.columns))
            raise DataError(f"{self.path}: missing column(s) {', '.join(missing)} (found: {have})")

    def integers(self, column: str, *, what: str | None = None) -> np.ndarray:
        """A column as int64; the first cell that is not an integer raises with its line."""
        values = self.frame[column]
        parsed = pd.to_numeric(values, errors="coerce")
        bad = parsed.isna() | (parsed != np.floor(parsed))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise self.fail(row, f"{what or column} {values.iloc[row]!r} is not an integer")
        return parsed.to_numpy(dtype=np.int64)

    def floats(self, column: str, *, allow_empty: bool = False) -> np.ndarray:
        values = self.frame[column]
        parsed = pd.to_numeric(values, errors="coerce")
        bad = parsed.isna()
        if allow_empty:
            bad &= values.notna() & (values.astype(str).str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise self.fail(row, f"{column} {values.iloc[row]!r} is not a number")
        return parsed.to_numpy(dtype=np.float64)

    def ids(self, column: str) -> np.ndarray:
        """An id column: int64 when every id is an integer, otherwise strings; empty ids raise."""
        values = self.frame[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if empty.any():
            raise self.fail(int(np.flatnonzero(empty.to_numpy())[0]), f"empty {column}")
        parsed = pd.to_numeric(values, errors="coerce")
        if parsed.notna().all() and (parsed == np.floor(parsed)).all():
            return parsed.to_numpy(dtype=np.int64)
        return values.astype(str).str.strip().to_numpy(dtype=object)

    def unique(self, column: str, ids: np.ndarray) -> np.ndarray:
        """``ids`` (parsed from ``column``), after checking that no id repeats."""
        duplicated = pd.Series(ids).duplicated().to_numpy()
        if duplicated.any():
            row = int(np.flatnonzero(duplicated)[0])
            raise self.fail(row, f"duplicate {column} {as_python(ids[row])!r}")
        return ids


def read_delimited(
    path: Path, *, sep: str, columns: list[str], encoding: str = "latin-1"
) -> Table:
    """A header-less file with a fixed number of fields (the MovieLens layout), cells as strings."""
    text = _read_text(path, encoding)
    if sep not in text:
        first = text.lstrip().splitlines()[0]
        raise DataError(
            f"{path}:1: expected {len(columns)} fields separated by {sep!r}, found none in "
            f"{first[:80]!r} (wrong file or separator?)"
        )
    if len(sep) > 1:
        text = text.replace(sep, _FIELD_SEP)
        sep = _FIELD_SEP
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, header=None, names=range(len(columns)), dtype=str,
            quoting=csv.QUOTE_NONE, keep_default_na=False, na_values=[], engine="c",
        )
    except pd.errors.ParserError as err:
        raise _field_count_error(path, err, len(columns)) from None
    frame.columns = columns
    return Table(path, frame, _line_locator(path, text, header_lines=0), sep=sep)


def read_table(path: Path) -> Table:
    """A CSV/TSV file with a header row, or a Parquet file, cells as strings."""
    _check_file(path)
    if path.suffix.lower() in {".parquet", ".pq"}:
        try:
            arrow = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise DataError(f"{path}: not a readable Parquet file ({err})") from None
        frame = arrow.to_pandas()
        frame = frame.astype({c: str for c in frame.columns if frame[c].dtype != object})
        if frame.empty:
            raise DataError(f"{path}: the table has no rows")
        return Table(path, frame, lambda row: (f"{path}: row {row + 1}", ""))
    text = _read_text(path, "utf-8")
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    header = text.splitlines()[0]
    if sep not in header and any(s in header for s in (";", "\t", "|", ",")):
        raise DataError(f"{path}:1: expected {_show_sep(sep)}-separated columns with a header, "
                        f"got {header[:80]!r} (wrong separator?)")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                            na_values=[], engine="c")
    except pd.errors.ParserError as err:
        raise _field_count_error(path, err, None) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no rows")
    return Table(path, frame, _line_locator(path, text, header_lines=1))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")


def _read_text(path: Path, encoding: str) -> str:
    _check_file(path)
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}:{line}: not valid {encoding} text (byte 0x{raw[err.start]:02x}); "
                        f"re-encode the file as {encoding}") from None
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    return text


def _line_locator(path: Path, text: str, header_lines: int) -> Callable[[int], tuple[str, str]]:
    """Maps a parsed row to "file:line" and the line's text, skipping blank lines as the parser does."""

    def locate(row: int) -> tuple[str, str]:
        seen = -1
        for number, line in enumerate(text.splitlines(), start=1):
            if number <= header_lines or not line.strip():
                continue
            seen += 1
            if seen == row:
                return f"{path}:{number}", line
        return f"{path}: row {row + 1}", ""

    return locate


def _field_count_error(path: Path, err: Exception, expected: int | None) -> DataError:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
    if not found:
        return DataError(f"{path}: cannot parse ({err})")
    want, line, saw = found.groups()
    return DataError(f"{path}:{line}: expected {expected or want} fields, found {saw}")


def as_python(value: object) -> object:
    """A NumPy scalar as the plain Python value, so messages read 7 and 'x', not np.int64(7)."""
    return value.item() if isinstance(value, np.generic) else value


def _show_sep(sep: str) -> str:
    return "'::'" if sep == _FIELD_SEP else repr(sep)
