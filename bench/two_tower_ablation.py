"""Ablation of the two-tower's negatives, losses and user id embedding, each variant through the
same `fit` pipeline (selection with early stopping on validation, warm refit on train +
validation, test report).

    python bench/two_tower_ablation.py --data ../shared/data/ml-100k --only 1-8
    python bench/two_tower_ablation.py --data ../shared/data/ml-100k --only 2,9,10 --seeds 0,1,2
    recfunnel data synth --out /tmp/ml1m-synth        # ML-1M's shape: 6,040 x 3,706, 1M ratings
    python bench/two_tower_ablation.py --data /tmp/ml1m-synth --epochs 2 --only 1-8   # speed
    python bench/two_tower_ablation.py --data /tmp/ml1m-synth --epochs 2 --device cuda --only 1-8

Variants 1-8 compare negatives and losses on towers without a user id embedding; 9 and 10 add
it. "new users" columns score every test user as one the model never saw (the id embedding left
out, history and demographics kept): what someone who signed up with the same history would get.
Prints a Markdown table for BENCHMARKS.md; with several seeds, one row per seed and their mean.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from types import SimpleNamespace

import numpy as np

from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out
from recfunnel.eval.evaluate import evaluate_model
from recfunnel.pipeline import catalog_stats, select_and_fit
from recfunnel.retrieval.two_tower_recommender import TwoTower

NO_ID = {"use_user_id": False}  # the default towers, pinned: the rows must not move with it
VARIANTS = {
    "in-batch softmax only": NO_ID | {"logq": "none"},
    "+ logQ (counts) (default)": NO_ID | {"logq": "counts"},
    "+ logQ (streaming)": NO_ID | {"logq": "streaming"},
    "+ mixed negatives (512 uniform)": NO_ID | {"logq": "none", "mixed_negatives": 512},
    "+ hard negatives (8, per epoch)": NO_ID | {"logq": "none", "hard_negatives": 8},
    "+ hard negatives (8, in batch)": NO_ID | {"logq": "none", "hard_negatives": 8,
                                               "hard_mode": "batch"},
    "logQ + mixed + hard (all three)": NO_ID | {"logq": "counts", "mixed_negatives": 512,
                                                "hard_negatives": 8},
    "BCE, 32 sampled negatives": NO_ID | {"loss": "bce", "logq": "none"},
    "logQ + user id embedding": {"use_user_id": True, "id_dropout": 0.0},
    "logQ + user id, hidden in 20% of training examples": {"use_user_id": True},
}
COLUMNS = ("valid NDCG@10", "HR@10", "NDCG@10", "HR@100", "HR@500", "tail_share@10",
           "new users NDCG@10", "new users HR@500", "fit s", "s/epoch")


def variant_numbers(spec: str) -> list[int]:
    """"1-8,10" -> [1, ..., 8, 10]."""
    numbers = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        numbers += range(int(lo), int(hi or lo) + 1)
    return numbers


def run(dataset, split, params: dict) -> tuple[dict[str, float], str]:
    """One variant at one seed: its row of ``COLUMNS`` and its epochs (best + refit)."""
    start = time.perf_counter()
    fitted = select_and_fit(TwoTower, dataset, split, grid={k: [v] for k, v in params.items()})
    seconds = time.perf_counter() - start
    model = fitted.model
    history = dataset.history(fitted.history)
    new_users = evaluate_model(SimpleNamespace(score=partial(model.score, known=False)),
                               split.test, history, catalog_stats(dataset, fitted.history),
                               ks=(10, 500), n_bootstrap=0, desc="as new users")
    row = {"valid NDCG@10": fitted.trials[0].score, **{m: fitted.test[m] for m in COLUMNS[1:6]},
           "new users NDCG@10": new_users["NDCG@10"], "new users HR@500": new_users["HR@500"],
           "fit s": seconds, "s/epoch": np.mean([r["seconds"] for r in model.history_log_])}
    return row, f"{model.best_epoch_} + {model.refit_epochs}"


def line(name: str, seed: str, row: dict[str, float], epochs: str) -> str:
    values = " | ".join(f"{row[c]:.0f}" if c == "fit s" else f"{row[c]:.1f}" if c == "s/epoch"
                        else f"{row[c]:.4f}" for c in COLUMNS)
    return f"| {name} | {seed} | {values} | {epochs} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-100k")
    parser.add_argument("--epochs", type=int, help="fixed epoch budget (default: early stopping)")
    parser.add_argument("--only", default=f"1-{len(VARIANTS)}",
                        help="variant numbers (1-based) to run, e.g. 1-8 or 2,9,10")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--device", default="cpu", help="where training steps run: cpu, cuda")
    args = parser.parse_args()
    dataset = load(args.data)
    split = temporal_leave_one_out(dataset.interactions)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{dataset.summary()}\n")
    print("| variant | seed | " + " | ".join(COLUMNS) + " | epochs (best + refit) |")
    print("|" + " --- |" * (len(COLUMNS) + 3))
    for number in variant_numbers(args.only):
        name = list(VARIANTS)[number - 1]
        rows = []
        for seed in seeds:
            params = VARIANTS[name] | {"device": args.device, "seed": seed}
            if args.epochs:
                params.update(epochs=args.epochs, patience=args.epochs)
            row, epochs = run(dataset, split, params)
            rows.append(row)
            print(line(name, str(seed), row, epochs), flush=True)
        if len(rows) > 1:
            mean = {c: float(np.mean([r[c] for r in rows])) for c in COLUMNS}
            print(line(name, "mean", mean, ""), flush=True)


if __name__ == "__main__":
    main()
