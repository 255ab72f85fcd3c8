"""The ranking network's 8-bit scoring graph (what `fit` saves and the server runs) against the
float network it was exported from, on a fitted artifact's held-out split: the funnel table that
`recfunnel evaluate` prints, once with each.

    python bench/ranker_precision.py --artifacts artifacts/tt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from recfunnel.artifacts import load_system
from recfunnel.eval.tables import funnel_table
from recfunnel.exported import ExportedModel
from recfunnel.ranking.ranker import SCORING_AXES
from recfunnel.report import evaluate_funnel, gain_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    args = parser.parse_args()
    console = Console()
    system = load_system(args.artifacts)
    if system.ranker is None:
        raise SystemExit(f"{args.artifacts}: no ranking stage to compare")
    saved = system.ranker.scoring_net_
    float_graph = ExportedModel.export(system.ranker.net_, system.ranker._example(), SCORING_AXES)
    for label, graph in (("saved (8-bit weights)", saved), ("float", float_graph)):
        system.ranker.scoring_net_ = graph
        evaluation = evaluate_funnel(system)
        console.print(funnel_table(evaluation.reports, f"ranker scoring graph: {label}"))
        for line in gain_lines(evaluation):
            console.print(line)


if __name__ == "__main__":
    main()
