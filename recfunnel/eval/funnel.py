"""One report per funnel stage, each list scored the same full-ranking way."""

from __future__ import annotations

import numpy as np

from recfunnel.eval.metrics import CatalogStats, Report, bootstrap_ci, evaluate_lists, user_ndcg

CANDIDATE_KS = (10, 100, 500)


def stage_reports(lists: dict[str, np.ndarray], targets: np.ndarray, catalog: CatalogStats,
                  *, n_bootstrap: int = 1000) -> dict[str, Report]:
    """``lists``: stage name -> [users, width] item lists (PAD padded), in funnel order.
    Candidate stages are scored down to their depth, so "HR@500" of retrieval is candidate
    recall; every stage is scored at 10."""
    return {stage: evaluate_lists(items, targets, catalog, n_bootstrap=n_bootstrap,
                                  ks=tuple(k for k in CANDIDATE_KS if k <= items.shape[1]) or (10,))
            for stage, items in lists.items()}


def paired_gain(before: np.ndarray, after: np.ndarray, targets: np.ndarray, *,
                n_bootstrap: int = 1000) -> tuple[float, tuple[float, float]]:
    """NDCG@10 of ``after`` minus ``before`` on the same users, with a 95% paired bootstrap
    interval: an interval above zero means the later stage is better, not just luckier."""
    diff = user_ndcg(after, targets) - user_ndcg(before, targets)
    return float(diff.mean()), bootstrap_ci(diff, n_bootstrap)
