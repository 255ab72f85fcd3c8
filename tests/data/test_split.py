import numpy as np
import pandas as pd

from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out


def frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "timestamp", "rating"])


def test_last_is_test_second_last_is_valid():
    split = temporal_leave_one_out(frame([
        (0, 10, 5, 1), (0, 11, 1, 1), (0, 12, 3, 1), (0, 13, 4, 1),
        (1, 10, 1, 1), (1, 11, 2, 1),  # two interactions: stays in train
    ]))
    assert split.test[["user", "item"]].values.tolist() == [[0, 10]]
    assert split.valid[["user", "item"]].values.tolist() == [[0, 13]]
    assert sorted(split.train["item"][split.train["user"] == 0]) == [11, 12]
    assert sorted(split.train["item"][split.train["user"] == 1]) == [10, 11]


def test_ties_keep_file_order():
    split = temporal_leave_one_out(frame([(0, 1, 7, 1), (0, 2, 7, 1), (0, 3, 7, 1), (0, 4, 7, 1)]))
    assert split.test["item"].tolist() == [4] and split.valid["item"].tolist() == [3]


def test_real_ml100k_split_never_leaks(ml100k_dir):
    d = load(ml100k_dir)
    split = temporal_leave_one_out(d.interactions)
    assert len(split.train) + len(split.valid) + len(split.test) == len(d.interactions)
    assert len(split.test) == len(split.valid) == 943  # every ML-100K user has >= 20 ratings
    train_pairs = set(zip(split.train["user"], split.train["item"]))
    assert not any(pair in train_pairs for pair in zip(split.test["user"], split.test["item"]))
    last_train = split.train.groupby("user")["timestamp"].max()
    assert (split.valid.set_index("user")["timestamp"] >= last_train[split.valid["user"]]).all()
    assert (split.test.set_index("user")["timestamp"].values >=
            split.valid.set_index("user")["timestamp"].values).all()
    assert np.array_equal(split.train_valid.index, np.sort(split.train_valid.index))
