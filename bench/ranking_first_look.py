"""Does the ranking model reorder retrieval's top 500 better than retrieval does? ML-100K, LOO.

    python bench/ranking_first_look.py --data ../shared/data/ml-100k

The two-tower model is fit on train; its candidates for the validation users, with each user's
validation item as the positive, train the ranker. The retrieval model is then warm-started on
train + validation (as `fit` does) and both orders of the test users' top 500 are scored on the
test item, full ranking.
"""

from __future__ import annotations

import argparse

import numpy as np

from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out
from recfunnel.eval.metrics import evaluate_lists
from recfunnel.pipeline import catalog_stats
from recfunnel.ranking.features import ItemTable
from recfunnel.ranking.ranker import Queries, Ranker
from recfunnel.retrieval.two_tower_recommender import TwoTower

SHOWN = ("HR@10", "NDCG@10", "HR@500", "tail_share@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--candidates", type=int, default=500)
    args = parser.parse_args()
    dataset = load(args.data)
    split = temporal_leave_one_out(dataset.interactions)

    def table(history) -> ItemTable:
        counts = np.bincount(history.interactions["item"], minlength=dataset.n_items)
        return ItemTable.build(dataset, counts, model.item_vectors_)

    train = dataset.history(split.train)
    model = TwoTower().fit(train, dataset, split.valid)
    queries = Queries.retrieve(model, train, split.valid["user"].to_numpy(), args.candidates)
    ranker = Ranker().fit(table(train), queries, split.valid)
    seen = dataset.history(split.train_valid)
    model.refit(seen, dataset)
    test = Queries.retrieve(model, seen, split.test["user"].to_numpy(), args.candidates)
    catalog = catalog_stats(dataset, split.train_valid)
    targets = split.test["item"].to_numpy()
    lists = {"retrieval order": test.candidates.numpy()}
    for weight in (0.0, 1.0):
        ranker.liked_weight = weight
        lists[f"ranker, liked weight {weight}"] = ranker.rerank(table(seen), test)[0]
    for name, top in lists.items():
        report = evaluate_lists(top, targets, catalog, ks=(10, 500), n_bootstrap=1000)
        shown = ", ".join(f"{k} {report[k]:.4f}" for k in SHOWN)
        print(f"{name:28s} {shown}, NDCG@10 95% CI [{report.ndcg10_ci[0]:.4f}, "
              f"{report.ndcg10_ci[1]:.4f}]")


if __name__ == "__main__":
    main()
