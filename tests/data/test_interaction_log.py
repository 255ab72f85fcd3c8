import numpy as np
import pandas as pd
import pytest

from recfunnel.data.loading import load
from recfunnel.errors import DataError


def test_csv_log_with_feature_tables(tmp_path):
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id,timestamp,rating\nann,m1,2024-01-02T10:00:00Z,5\nann,m2,2024-01-01,\n"
        "bob,m1,1700000000,3\n")
    (tmp_path / "items.csv").write_text(
        'item_id,title,genres,year\nm1,"Heat, The",Action|Crime,1995\nm2,Up,Animation,\nm3,Cold,Drama,2020\n')
    (tmp_path / "users.csv").write_text("user_id,country\nann,NO\nbob,SE\n")
    d = load(tmp_path)
    assert (d.n_users, d.n_items, len(d.interactions)) == (2, 3, 3)  # m3 is a cold catalog item
    assert d.items.loc[0, "title"] == "Heat, The" and d.items.loc[0, "genres"] == ["Action", "Crime"]
    assert np.isnan(d.items.loc[1, "year"]) and d.items.loc[2, "year"] == 2020
    assert d.users.loc[d.user_index("bob"), "country"] == "SE"
    ts = d.interactions["timestamp"].tolist()
    assert ts == [1704189600, 1704067200, 1700000000]
    assert np.isnan(d.interactions["rating"].iloc[1])


def test_parquet_log_and_integer_ids(tmp_path):
    path = tmp_path / "events.parquet"
    pd.DataFrame({"user_id": [10, 10, 20], "item_id": [1, 2, 1],
                  "timestamp": [3, 1, 2]}).to_parquet(path)
    d = load(path)
    assert d.users["user_id"].tolist() == [10, 20]
    assert d.user_index(20) == 1 and d.user_index("20") == 1
    assert d.interactions["rating"].isna().all()


def test_repeated_pairs_keep_the_latest(tmp_path, caplog):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp,rating\n1,1,10,2\n1,2,20,4\n1,1,30,5\n")
    d = load(path)
    assert len(d.interactions) == 2
    kept = d.interactions[d.interactions["item"] == d.item_index(1)]
    assert kept["timestamp"].item() == 30 and kept["rating"].item() == 5
    assert d.info["repeated_pairs_collapsed"] == 1
    assert "1 repeated (user, item) interactions collapsed" in caplog.text


def test_log_item_missing_from_item_table(tmp_path):
    (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp\n1,1,1\n1,9,2\n")
    (tmp_path / "items.csv").write_text("item_id,title\n1,A\n")
    with pytest.raises(DataError, match=r"interactions.csv:3: item_id 9 is not in .*items.csv"):
        load(tmp_path)


def test_bad_timestamp_names_the_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\n1,1,2024-01-01\n1,2,not a date\n")
    with pytest.raises(DataError, match=r"log.csv:3: timestamp 'not a date' is neither"):
        load(path)


def test_duplicate_item_in_item_table(tmp_path):
    (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp\n1,1,1\n")
    (tmp_path / "items.csv").write_text("item_id,title\n1,A\n1,B\n")
    with pytest.raises(DataError, match=r"items.csv:3: duplicate item_id 1"):
        load(tmp_path)
