"""Model selection on the validation split, a refit on train + validation, and a test report;
for the two-tower funnel, retrieval and the ranking model trained on its candidates."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tqdm import tqdm

from recfunnel.data.dataset import Dataset
from recfunnel.data.split import Split
from recfunnel.errors import DataError
from recfunnel.eval.evaluate import evaluate_model
from recfunnel.eval.metrics import CatalogStats, Report
from recfunnel.ranking.examples import hold_out_last, ranking_queries
from recfunnel.ranking.features import ItemTable
from recfunnel.ranking.ranker import Ranker
from recfunnel.retrieval.base import Recommender
from recfunnel.retrieval.two_tower_recommender import TwoTower

SELECTION_METRIC = "NDCG@10"
RANKING_POSITIONS = 5  # per user, the last interactions the ranker trains on


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


@dataclass
class FittedFunnel:
    """The two-tower retrieval model and the ranking model trained on its candidates."""

    retrieval: TwoTower
    ranker: Ranker
    history: pd.DataFrame  # what the final retrieval model saw
    info: dict[str, Any]  # for the manifest


def fit_funnel(dataset: Dataset, split: Split, *, holdout: bool = True,
               positions: int = RANKING_POSITIONS, candidates: int = 500,
               params: dict[str, Any] | None = None) -> FittedFunnel:
    """Train retrieval without each user's last ``positions`` interactions (early stopping on the
    first of them), train the ranker on its candidates for those moments, then warm-start
    retrieval on everything visible. The ranker keeps the retrieval model's embedding space
    because the final retrieval model continues from the one it learned on. The two-tower model
    has no selection grid: its defaults are used, or the first point of ``TwoTower.param_grid``,
    with ``params`` on top."""
    history = split.train_valid if holdout else dataset.interactions
    rest, position = hold_out_last(history, positions)
    if not (position >= 0).any():
        raise DataError(f"the ranking stage trains on users' last {positions} interactions; no "
                        f"user has more than {positions + 1} (fit --no-ranking, or more data)")
    start = time.perf_counter()
    params = (grid_points(TwoTower.param_grid)[0] if TwoTower.param_grid else {}) | (params or {})
    retrieval = TwoTower(**params).fit(dataset.history(rest), dataset,
                                       history[position == positions - 1])
    table = ItemTable.build(dataset, dataset.history(rest), retrieval.item_vectors_)
    queries = ranking_queries(retrieval, dataset, history, position, candidates,
                              table.cooccurrence)
    ranker = Ranker().fit(table, queries)
    retrieval.refit(dataset.history(history), dataset)
    info = {"fit_seconds": time.perf_counter() - start,
            "ranking_examples": {"queries": len(queries),
                                 "retrieved_positives": int((queries.positions() >= 0).sum()),
                                 "positions_per_user": positions, "candidates": candidates},
            "ranker_validation_ndcg@10": ranker.valid_ndcg_, "ranker_best_epoch": ranker.best_epoch_}
    return FittedFunnel(retrieval, ranker, history, info)
