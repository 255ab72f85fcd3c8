"""Malformed input: a one-line error naming the file and line, never a traceback."""

import pytest

from recfunnel.data.loading import load
from recfunnel.errors import DataError

ML100K_USER = "1|24|M|technician|85711\n"
ML100K_ITEM = "1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join("0" * 18) + "|1\n"


def ml100k(tmp_path, data="1\t1\t5\t881250949\n", user=ML100K_USER, item=ML100K_ITEM):
    for name, text in (("u.data", data), ("u.user", user), ("u.item", item)):
        (tmp_path / name).write_text(text, encoding="latin-1")
    return tmp_path


def test_valid_minimal_ml100k_loads(tmp_path):
    assert len(load(ml100k(tmp_path)).interactions) == 1


@pytest.mark.parametrize("data, message", [
    ("1\t1\t5\t881250949\n1\t1\t5\n", r"u.data:2: expected 4 fields"),
    ("1\t1\t5\t881250949\n1\t1\t5\t8\t9\n", r"u.data:2: expected 4 fields, found 5"),
    ("1\t1\t5\t881250949\nx\t1\t5\t881250949\n", r"u.data:2: user_id 'x' is not an integer"),
    ("1\t1\t5\tyesterday\n", r"u.data:1: timestamp 'yesterday' is not an integer"),
    ("1\t1\tfive\t881250949\n", r"u.data:1: rating 'five' is not a number"),
    ("1,1,5,881250949\n", r"u.data:1: expected 4 fields separated by '\\t', found none"),
    ("1\t7\t5\t881250949\n", r"u.data:1: item_id 7 is not in .*u.item"),
    ("\n\n", r"u.data: the file is empty"),
])
def test_malformed_ratings(tmp_path, data, message):
    with pytest.raises(DataError, match=message):
        load(ml100k(tmp_path, data=data))


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    with pytest.raises(DataError, match=r"u.data:4: user_id 'x'"):
        load(ml100k(tmp_path, data="1\t1\t5\t881250949\n\n\nx\t1\t5\t881250949\n"))


def test_duplicate_user_id(tmp_path):
    with pytest.raises(DataError, match=r"u.user:2: duplicate user_id 1"):
        load(ml100k(tmp_path, user=ML100K_USER * 2))


def test_genre_flags_checked(tmp_path):
    item = ML100K_ITEM.replace("|1\n", "|7\n")
    with pytest.raises(DataError, match=r"u.item:1: genre flags must be 0 or 1"):
        load(ml100k(tmp_path, item=item))


def test_nonexistent_path(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        load(tmp_path / "nope")


def test_missing_member_file(tmp_path):
    ml100k(tmp_path)
    (tmp_path / "u.user").unlink()
    with pytest.raises(DataError, match=r"u.user: no such file"):
        load(tmp_path)


def test_ml1m_wrong_separator(tmp_path):
    (tmp_path / "ratings.dat").write_text("1\t1193\t5\t978300760\n")
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n")
    (tmp_path / "movies.dat").write_text("1193::One Flew (1975)::Drama\n")
    with pytest.raises(DataError, match=r"ratings.dat:1: expected 4 fields separated by '::'"):
        load(tmp_path)


def test_log_wrong_encoding(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"user_id,item_id,timestamp\n1,a,5\n2,caf\xe9,6\n")
    with pytest.raises(DataError, match=r"log.csv:3: not valid utf-8"):
        load(path)


def test_log_missing_column(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item_id,timestamp\n1,2,3\n")
    with pytest.raises(DataError, match=r"missing column\(s\) user_id"):
        load(path)


def test_log_wrong_separator(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id;item_id;timestamp\n1;2;3\n")
    with pytest.raises(DataError, match=r"log.csv:1: expected ','-separated columns"):
        load(path)


def test_log_header_only(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\n")
    with pytest.raises(DataError, match="header but no rows"):
        load(path)


def test_not_parquet(tmp_path):
    path = tmp_path / "log.parquet"
    path.write_text("user_id,item_id,timestamp\n1,2,3\n")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load(path)
