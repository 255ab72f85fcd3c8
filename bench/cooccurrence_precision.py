"""How far the 16-bit co-occurrence sums (``Int16Rows``) are from the float ones, for every user
of an artifact: the largest change of a user's row (absolute, and relative to the row's range),
and how many users' co-occurrence top 10 (seen items excluded) changes order.

    python bench/cooccurrence_precision.py --artifacts artifacts/tt4
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from recfunnel.artifacts import load_system
from recfunnel.data.arrays import Int16Rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    args = parser.parse_args()
    system = load_system(args.artifacts)
    weights = system.funnel().generator.cooccurrence
    if weights is None:
        raise SystemExit("this artifact has no co-occurrence weights")
    quantised = Int16Rows.of(weights)
    seen = system.history.matrix
    worst_absolute = worst_relative = 0.0
    reordered = 0
    for user in range(seen.shape[0]):
        items = seen.indices[seen.indptr[user]:seen.indptr[user + 1]]
        if not len(items):
            continue
        exact = weights[items].sum(0, dtype=np.float64)
        approximate = quantised.sum_rows(items)
        change = float(np.abs(approximate - exact).max())
        worst_absolute = max(worst_absolute, change)
        worst_relative = max(worst_relative, change / float(exact.max() - exact.min()))
        open_ = np.ones(len(exact), dtype=bool)
        open_[items] = False
        top = [np.argsort(-np.where(open_, row, -np.inf), kind="stable")[:10]
               for row in (exact, approximate)]
        reordered += not np.array_equal(*top)
    print(f"{seen.shape[0]} users, scale {quantised.scale:.3g}: largest change {worst_absolute:.2g}"
          f" ({worst_relative:.2g} of the row's range); co-occurrence top 10 reordered for "
          f"{reordered} users")


if __name__ == "__main__":
    main()
