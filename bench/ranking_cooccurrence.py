"""The ranking stage with and without its EASE co-occurrence feature, everything else as `fit`
does it: how much of the ranker's gain over retrieval that one feature carries.

    python bench/ranking_cooccurrence.py --data ../shared/data/ml-100k

The weights are left out the way they are for catalogs too large for EASE's dense weights
(more than ``MAX_ITEMS`` items): the feature is zero for every candidate, and the co-occurrence
candidate source, which shares the weights, gives its slots to the other sources. Each run
prints `fit`'s test report; compare the ranking stage's paired gain over retrieval.
"""

from __future__ import annotations

import argparse
import tempfile

import recfunnel.ranking.features as features
from recfunnel.cli import app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    runs = (("with the co-occurrence feature (as `fit` trains it)", features.MAX_ITEMS),
            ("without it", 0))
    for label, max_items in runs:
        print(f"\n## {label}", flush=True)
        features.MAX_ITEMS = max_items
        with tempfile.TemporaryDirectory() as out:
            app(["fit", "--data", args.data, "--model", "two-tower", "--out", out],
                standalone_mode=False)


if __name__ == "__main__":
    main()
