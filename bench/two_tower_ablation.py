"""Ablation of the two-tower's negatives and losses, each variant through the same `fit` pipeline
(selection with early stopping on validation, warm refit on train + validation, test report).

    python bench/two_tower_ablation.py --data ../shared/data/ml-100k
    recfunnel data synth --out /tmp/ml1m-synth        # ML-1M's shape: 6,040 x 3,706, 1M ratings
    python bench/two_tower_ablation.py --data /tmp/ml1m-synth --epochs 2   # speed at ML-1M scale
    python bench/two_tower_ablation.py --data /tmp/ml1m-synth --epochs 2 --device cuda   # on a GPU

Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out
from recfunnel.pipeline import select_and_fit
from recfunnel.retrieval.two_tower_recommender import TwoTower

VARIANTS = {
    "in-batch softmax only": {"logq": "none"},
    "+ logQ (counts)": {"logq": "counts"},
    "+ logQ (streaming)": {"logq": "streaming"},
    "+ mixed negatives (512 uniform)": {"logq": "none", "mixed_negatives": 512},
    "+ hard negatives (8, per epoch)": {"logq": "none", "hard_negatives": 8},
    "+ hard negatives (8, in batch)": {"logq": "none", "hard_negatives": 8, "hard_mode": "batch"},
    "logQ + mixed + hard (all three)": {"logq": "counts", "mixed_negatives": 512,
                                        "hard_negatives": 8},
    "BCE, 32 sampled negatives": {"loss": "bce", "logq": "none"},
}
METRICS = ("HR@10", "NDCG@10", "HR@100", "HR@500", "tail_share@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml-100k")
    parser.add_argument("--epochs", type=int, help="fixed epoch budget (default: early stopping)")
    parser.add_argument("--only", help="comma-separated variant numbers (1-based) to run")
    parser.add_argument("--device", default="cpu", help="where training steps run: cpu, cuda")
    args = parser.parse_args()
    dataset = load(args.data)
    split = temporal_leave_one_out(dataset.interactions)
    chosen = ([list(VARIANTS)[int(i) - 1] for i in args.only.split(",")] if args.only
              else list(VARIANTS))
    print(f"{dataset.summary()}\n")
    print("| variant | " + " | ".join(METRICS) + " | fit s | s/epoch | epochs (best) |")
    print("|" + " --- |" * (len(METRICS) + 4))
    for name in chosen:
        params = dict(VARIANTS[name], device=args.device)
        if args.epochs:
            params.update(epochs=args.epochs, patience=args.epochs)
        start = time.perf_counter()
        fitted = select_and_fit(TwoTower, dataset, split, grid={k: [v] for k, v in params.items()})
        seconds = time.perf_counter() - start
        model = fitted.model
        log = model.history_log_  # the refit's epochs; the selection run's are in the trial
        per_epoch = np.mean([r["seconds"] for r in log])
        values = " | ".join(f"{fitted.test[m]:.4f}" for m in METRICS)
        print(f"| {name} | {values} | {seconds:.0f} | {per_epoch:.1f} | "
              f"{model.best_epoch_} + {model.refit_epochs} |", flush=True)


if __name__ == "__main__":
    main()
