"""The funnel measured stage by stage on the held-out split, and the HTML report of it."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from recfunnel.artifacts import System
from recfunnel.errors import RecfunnelError
from recfunnel.eval.funnel import paired_gain, stage_reports
from recfunnel.eval.metrics import Report
from recfunnel.eval.segments import Row, activity_segments
from recfunnel.pipeline import catalog_stats
from recfunnel.rerank.chain import RerankConfig
from recfunnel.rerank.slate import UserFacts
from recfunnel.retrieval.topk import PAD
from recfunnel.serving.funnel import FunnelOutput

FINAL_K = 10
MMR_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def _heldout(system: System):
    if system.heldout is None or system.heldout.empty:
        raise RecfunnelError(f"{system.path}: trained with --no-holdout, so nothing was held out "
                             "to evaluate on; refit with --holdout")
    return system.heldout.sort_values("user", kind="stable")


@dataclass
class FunnelEvaluation:
    reports: dict[str, Report]  # by stage, in funnel order
    # "ranking vs retrieval" -> NDCG@10 gain and its 95% interval
    gains: dict[str, tuple[float, tuple[float, float]]]
    output: FunnelOutput
    segments: list[Row]  # metrics by length of the users' visible history (``activity_segments``)
    # the retrieval model's own top items, without the other candidate sources (None when the
    # retrieval stage is the model alone)
    model_alone: Report | None = None

    def to_dict(self) -> dict:
        alone = {} if self.model_alone is None else {"model_alone": self.model_alone.to_dict()}
        return {**{stage: r.to_dict() for stage, r in self.reports.items()}, **alone,
                "ndcg10_gains": {name: {"gain": g, "ci95": list(ci)}
                                 for name, (g, ci) in self.gains.items()}}


def evaluate_funnel(system: System, rerank: RerankConfig | None = None, *,
                    n_bootstrap: int = 1000, output: FunnelOutput | None = None,
                    rank_depth: int | None = None) -> FunnelEvaluation:
    """Retrieval, ranking and final lists of every held-out user, each scored on the held-out
    item (full ranking; the final list is ``FINAL_K`` long), and each stage's NDCG@10 gain over
    the one before it on the same users. ``output``: the funnel's lists, when already run."""
    heldout = _heldout(system)
    users, targets = heldout["user"].to_numpy(), heldout["item"].to_numpy()
    model_alone = None
    if output is None:
        funnel = system.funnel(rerank, rank_depth)
        output = funnel.run(users, system.history, k=FINAL_K)
        if funnel.generator is not None:
            alone = replace(funnel, generator=None).retrieve(users, system.history,
                                                             funnel.candidates)
            model_alone = stage_reports({"alone": alone.items}, targets, _catalog(system),
                                        n_bootstrap=n_bootstrap)["alone"]
    lists = {stage: output.lists[stage].items for stage in output.lists}
    if system.ranker is None:
        del lists["ranking"]
    stages = list(lists)
    gains = {f"{after} vs {before}": paired_gain(lists[before], lists[after], targets,
                                                 n_bootstrap=n_bootstrap)
             for before, after in zip(stages, stages[1:])}
    segments = activity_segments(lists, targets, system.history.lengths()[users])
    return FunnelEvaluation(stage_reports(lists, targets, _catalog(system),
                                          n_bootstrap=n_bootstrap), gains, output, segments,
                            model_alone)


def tradeoff(system: System, output: FunnelOutput,
             weights: tuple[float, ...] = MMR_WEIGHTS) -> list[dict[str, float]]:
    """Final-list accuracy and diversity as the MMR weight varies, other rules as configured;
    only the re-ranking stage runs again, over ``output``'s retrieved and ranked lists."""
    heldout = _heldout(system)
    facts = UserFacts.from_history(system.history, heldout["user"].to_numpy())
    rows = []
    for weight in weights:
        funnel = system.funnel(replace(system.rerank_config, mmr_weight=weight))
        rerun = funnel.finish(output.lists["retrieval"], output.lists["ranking"], facts, FINAL_K)
        report = evaluate_funnel(system, n_bootstrap=0, output=rerun).reports["final"]
        rows.append({"mmr_weight": weight, **{m: report[f"{m}@{FINAL_K}"] for m in (
            "NDCG", "HR", "diversity", "tail_share", "coverage", "novelty") if
            f"{m}@{FINAL_K}" in report.metrics}})
    return rows


def _catalog(system: System):
    return catalog_stats(system.dataset, system.dataset.interactions)


def write_report(system: System, out: Path) -> Path:
    """One self-contained HTML file: metric by stage, the accuracy/diversity trade-off, and the
    popularity of what each stage recommends."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluation = evaluate_funnel(system)
    reports, output = evaluation.reports, evaluation.output
    rows = tradeoff(system, output)
    popularity = _catalog(system).popularity

    figures = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    stages = list(reports)
    for ax, metrics in zip(axes, (("HR@10", "NDCG@10"), ("diversity@10", "tail_share@10",
                                                          "coverage@10"))):
        x = np.arange(len(stages))
        for i, metric in enumerate(metrics):
            ax.bar(x + i * 0.8 / len(metrics), [reports[s].metrics.get(metric, np.nan)
                                                for s in stages], 0.8 / len(metrics), label=metric)
        ax.set_xticks(x + 0.4 - 0.4 / len(metrics), stages)
        ax.legend(fontsize=8)
    axes[0].set_title("accuracy by stage (top 10)")
    axes[1].set_title("beyond accuracy by stage (top 10)")
    figures.append(("Metric by stage", fig))

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot([r["diversity"] for r in rows], [r["NDCG"] for r in rows], "o-")
    for r in rows:
        ax.annotate(f"{r['mmr_weight']:g}", (r["diversity"], r["NDCG"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("genre diversity of the final top 10 (ILD)")
    ax.set_ylabel("NDCG@10")
    ax.set_title("accuracy vs diversity as the MMR weight varies")
    figures.append(("Accuracy vs diversity", fig))

    fig, ax = plt.subplots(figsize=(6, 3.8))
    bins = np.logspace(np.log10(max(popularity[popularity > 0].min(initial=1e-4), 1e-4)), 0, 30)
    for stage in ("retrieval", "ranking", "final"):
        if stage not in reports:
            continue
        top = output.lists[stage].items[:, :FINAL_K]
        ax.hist(popularity[top[top != PAD]], bins=bins, histtype="step", label=stage)
    ax.set_xscale("log")
    ax.set_xlabel("item popularity (share of users)")
    ax.set_ylabel("recommended slots (top 10)")
    ax.set_title("popularity of recommended items")
    ax.legend(fontsize=8)
    figures.append(("Popularity of recommended items", fig))

    sections = []
    for title, figure in figures:
        buffer = io.StringIO()
        figure.tight_layout()
        figure.savefig(buffer, format="svg")
        plt.close(figure)
        sections.append(f"<h2>{html.escape(title)}</h2>\n{buffer.getvalue()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_page(system, evaluation, rows, sections))
    return out


def _page(system: System, evaluation: FunnelEvaluation, rows: list[dict[str, float]],
          sections: list[str]) -> str:
    reports = evaluation.reports
    metrics = ("HR@10", "NDCG@10", "HR@500", "coverage@10", "novelty@10", "diversity@10",
               "tail_share@10")
    head = "".join(f"<th>{m}</th>" for m in metrics)
    body = "".join(
        f"<tr><td>{stage}</td>" + "".join(
            f"<td>{r.metrics[m]:.4f}</td>" if m in r.metrics else "<td>-</td>" for m in metrics)
        + "</tr>" for stage, r in reports.items())
    name = html.escape(str(system.manifest["dataset"]["name"]))
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>recfunnel report: {name}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}</style></head><body>
<h1>recfunnel report: {name}</h1>
<p>{len(_heldout(system)):,} held-out users, each scored on their last interaction with the whole
catalog ranked (no sampled negatives); the user's visible history is excluded. Generated {when}
from <code>{html.escape(str(system.path))}</code>.</p>
<h2>The funnel, stage by stage</h2>
<table><tr><th>stage</th>{head}</tr>{body}</table>
<p>{"<br>".join(gain_lines(evaluation))}</p>
<h2>By user activity (users grouped by the length of their visible history)</h2>
{_html_table(evaluation.segments)}
<h2>Re-ranking trade-off (final top {FINAL_K})</h2>
{_html_table(rows)}
{"".join(sections)}
</body></html>
"""


def _html_table(rows: list[dict]) -> str:
    """Rows with the same keys as a table; numbers to four significant digits."""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0]) if rows else ""
    body = "".join("<tr>" + "".join(
        f"<td>{v:.4g}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
        for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def gain_lines(evaluation: FunnelEvaluation) -> list[str]:
    return [f"NDCG@10 {name}: {gain:+.4f} (95% paired bootstrap CI [{low:+.4f}, {high:+.4f}])"
            for name, (gain, (low, high)) in evaluation.gains.items()]
