"""Per-user temporal leave-one-out split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_INTERACTIONS_TO_HOLD_OUT = 3


@dataclass
class Split:
    """``train``, ``valid`` and ``test`` interaction frames (same columns as ``Dataset.interactions``).

    ``valid`` and ``test`` hold at most one interaction per user: the second-to-last and the last.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    @property
    def train_valid(self) -> pd.DataFrame:
        """What a model refit after model selection sees: train plus validation, in time order."""
        return pd.concat([self.train, self.valid]).sort_index(kind="stable")


def temporal_leave_one_out(interactions: pd.DataFrame) -> Split:
    """Last interaction per user -> test, second-to-last -> valid, the rest -> train.

    Interactions are ordered by a stable sort on timestamp, so ties keep file order. Users with
    fewer than three interactions stay entirely in train. Row labels of the input are kept.
    """
    order = np.lexsort((np.arange(len(interactions)), interactions["timestamp"].to_numpy()))
    ordered = interactions.iloc[order]
    from_end = ordered.groupby("user", sort=False).cumcount(ascending=False).to_numpy()
    counts = ordered.groupby("user", sort=False)["user"].transform("size").to_numpy()
    eligible = counts >= MIN_INTERACTIONS_TO_HOLD_OUT
    test = ordered[eligible & (from_end == 0)]
    valid = ordered[eligible & (from_end == 1)]
    train = ordered[~eligible | (from_end >= 2)]
    return Split(train=train.sort_index(kind="stable"),
                 valid=valid.sort_values("user", kind="stable"),
                 test=test.sort_values("user", kind="stable"))
