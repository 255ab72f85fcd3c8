"""Model selection on the validation split, a refit on train + validation, and a test report."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tqdm import tqdm

from recfunnel.data.dataset import Dataset
from recfunnel.data.split import Split
from recfunnel.eval.evaluate import evaluate_model
from recfunnel.eval.metrics import CatalogStats, Report
from recfunnel.retrieval.base import Recommender

SELECTION_METRIC = "NDCG@10"


@dataclass
class Trial:
    params: dict[str, Any]
    score: float  # SELECTION_METRIC on the validation split
    seconds: float


@dataclass
class Fitted:
    """The refit model, what selection tried, and the test report (None when nothing was held out)."""

    model: Recommender
    history: pd.DataFrame  # the interactions the final model saw; the user's visible history
    trials: list[Trial] = field(default_factory=list)
    fit_seconds: float = 0.0
    test: Report | None = None


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def catalog_stats(dataset: Dataset, interactions: pd.DataFrame) -> CatalogStats:
    return CatalogStats.from_train(dataset.matrix(interactions), dataset.genre_matrix())


def select_and_fit(
    model_class: type[Recommender],
    dataset: Dataset,
    split: Split,
    *,
    grid: dict[str, list[Any]] | None = None,
    holdout: bool = True,
) -> Fitted:
    """Pick hyperparameters by validation NDCG@10 (model fit on train), then refit the best model
    on train + validation and report on test; with ``holdout=False`` the refit uses every
    interaction."""
    train = dataset.history(split.train)
    points = grid_points(model_class.param_grid if grid is None else grid) or [{}]
    trials: list[Trial] = []
    best: Recommender | None = None
    best_score = float("-inf")
    train_catalog = catalog_stats(dataset, split.train)
    for params in tqdm(points, desc=f"selecting {model_class.name}", disable=None, leave=False):
        start = time.perf_counter()
        model = model_class(**params).fit(train, dataset, split.valid)
        report = evaluate_model(model, split.valid, train, train_catalog,
                                ks=(10,), n_bootstrap=0, desc="validating")
        if best is None or report[SELECTION_METRIC] > best_score:
            best, best_score = model, report[SELECTION_METRIC]
        trials.append(Trial(model.get_params(), report[SELECTION_METRIC],
                            time.perf_counter() - start))
    history = split.train_valid if holdout else dataset.interactions
    start = time.perf_counter()
    model = best.refit(dataset.history(history), dataset)
    fitted = Fitted(model, history, trials, time.perf_counter() - start)
    if holdout and len(split.test):
        fitted.test = evaluate_model(model, split.test, dataset.history(history),
                                     catalog_stats(dataset, history), desc="testing")
    return fitted
