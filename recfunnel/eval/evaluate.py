"""Scoring a retrieval model on held-out interactions, with the full catalog ranked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recfunnel.data.history import History

from recfunnel.eval.metrics import KS, CatalogStats, Report, evaluate_lists
from recfunnel.retrieval.base import Recommender
from recfunnel.retrieval.topk import rank_users


def evaluate_model(
    model: Recommender,
    heldout: pd.DataFrame,
    history: History,
    catalog: CatalogStats,
    *,
    ks: tuple[int, ...] = KS,
    n_bootstrap: int = 1000,
    desc: str = "evaluating",
) -> Report:
    """Rank every item for each user in ``heldout`` (one row per user), excluding ``history``, and
    score the lists against the held-out item."""
    users = heldout["user"].to_numpy(dtype=np.int64)
    targets = heldout["item"].to_numpy(dtype=np.int64)
    lists, _ = rank_users(lambda batch: model.score(batch, history), users, history.matrix,
                          max(ks), desc=desc)
    return evaluate_lists(lists, targets, catalog, ks=ks, n_bootstrap=n_bootstrap)
