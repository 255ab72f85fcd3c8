"""Shares of the merged candidate sources, chosen on moments the test never sees.

    python bench/candidate_sources.py --data ../shared/data/ml-100k
    python bench/candidate_sources.py --data ../shared/data/ml-100k --artifacts artifacts/tt

The two-tower model is trained as `fit` trains its first stage (without each user's last 5
visible interactions), and each share setting generates candidates for the users' last and
second-to-last visible interactions (the validation item and the one before it), each from the
history before it. Reported per setting: HR@500 of the 500-item list (the retrieval stage) and
HR@100 of the 100-item list generated for the ranker. With ``--artifacts``, the same settings on
the test split with the fitted funnel's model, for reference only: the defaults are chosen on
the validation moments.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from recfunnel.artifacts import load_system
from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out
from recfunnel.index.ann import IndexConfig, ItemIndex
from recfunnel.index.candidates import SOURCES, CandidateGenerator, Quotas
from recfunnel.pipeline import RANKING_POSITIONS
from recfunnel.ranking.examples import hold_out_last
from recfunnel.ranking.features import ItemTable
from recfunnel.ranking.ranker import Queries
from recfunnel.retrieval.two_tower_recommender import TwoTower

SETTINGS = [  # percent per source, in SOURCES order
    (80, 10, 0, 5, 5), (70, 10, 10, 5, 5), (65, 10, 15, 5, 5), (60, 10, 20, 5, 5),
    (70, 10, 10, 0, 10), (65, 5, 15, 5, 10), (60, 10, 15, 5, 10), (70, 0, 15, 5, 10),
    (55, 10, 20, 5, 10)]


def hit_rates(generator: CandidateGenerator, model: TwoTower, history, users: np.ndarray,
              targets: np.ndarray) -> tuple[float, float]:
    """HR of the 500-item list and of the 100-item list."""
    rates = []
    for n in (500, 100):
        queries = Queries.generate(generator, model, history, users, n)
        found = (queries.candidates == targets[:, None]) & queries.real
        rates.append(float(found.any(1).mean()))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--artifacts", type=Path, help="a fitted funnel, to score the test split")
    args = parser.parse_args()
    dataset = load(args.data)
    history = temporal_leave_one_out(dataset.interactions).train_valid
    rest, position = hold_out_last(history, RANKING_POSITIONS)
    model = TwoTower().fit(dataset.history(rest), dataset,
                           history[position == RANKING_POSITIONS - 1])
    weights = ItemTable.build(dataset, dataset.history(rest), model.item_vectors_).cooccurrence
    index = ItemIndex.build(model.item_vectors_, IndexConfig(kind="flat"))
    cases = []
    for k, name in ((0, "validation"), (1, "before validation")):
        before = dataset.history(history[(position < 0) | (position > k)])
        targets = history[position == k].sort_values("user", kind="stable")
        cases.append((name, model, before, index, weights, targets["user"].to_numpy(),
                      targets["item"].to_numpy()))
    if args.artifacts:
        system = load_system(args.artifacts)
        test = system.heldout.sort_values("user", kind="stable")
        funnel = system.funnel()
        cases.append(("test", system.retrieval, system.history, system.index,
                      funnel.generator.cooccurrence, test["user"].to_numpy(),
                      test["item"].to_numpy()))
    print("| shares (" + ", ".join(SOURCES) + ") | "
          + " | ".join(f"{name}: HR@500, HR@100" for name, *_ in cases) + " |")
    print("| --- |" + " --- |" * len(cases))
    for setting in SETTINGS:
        quotas = Quotas({s: p / 100 for s, p in zip(SOURCES, setting)})
        cells = []
        for _, tower, visible, item_index, cooccurrence, users, items in cases:
            generator = CandidateGenerator.over(item_index, tower.item_vectors_, visible,
                                                dataset.genre_matrix(), quotas,
                                                cooccurrence=cooccurrence)
            cells.append("%.4f, %.4f" % hit_rates(generator, tower, visible, users, items))
        print(f"| {'/'.join(map(str, setting))} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
