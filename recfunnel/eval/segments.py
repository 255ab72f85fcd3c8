"""Accuracy by user activity: which users a model serves well, and which it misses.

Users are grouped by the length of their visible history; each group gets every stage's
NDCG@10 and, for candidate lists that deep, HR@100 and HR@500 (full ranking, as elsewhere).
"""

from __future__ import annotations

import numpy as np

from recfunnel.eval.metrics import hit_positions, user_ndcg

ACTIVITY_EDGES = (30, 60, 120, 250)  # visible interactions; ML-100K's users have 20 to 737
Row = dict[str, float | int | str]  # "history" label, "users" count, then "<stage> <metric>"


def activity_segments(lists: dict[str, np.ndarray], targets: np.ndarray, lengths: np.ndarray,
                      edges: tuple[int, ...] = ACTIVITY_EDGES) -> list[Row]:
    """``lists``: stage -> [users, width] item lists; ``lengths``: each user's visible history.
    One row per non-empty group, lightest first: its label, user count and metrics by stage."""
    bounds = (0, *edges, None)
    rows: list[Row] = []
    for lo, hi in zip(bounds, bounds[1:]):
        members = (lengths >= lo) & (lengths < hi) if hi is not None else lengths >= lo
        if not members.any():
            continue
        row: Row = {"history": f"{lo}-{hi - 1}" if hi is not None else f"{lo}+",
                    "users": int(members.sum())}
        for stage, items in lists.items():
            position = hit_positions(items[members], targets[members])
            for k in (100, 500):
                if items.shape[1] >= k:
                    row[f"{stage} HR@{k}"] = float(((position >= 0) & (position < k)).mean())
            row[f"{stage} NDCG@10"] = float(user_ndcg(items[members], targets[members]).mean())
        rows.append(row)
    return rows
