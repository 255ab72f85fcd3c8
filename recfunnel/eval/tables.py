"""Metric reports as terminal tables."""

from __future__ import annotations

from rich.table import Table

from recfunnel.eval.metrics import Report
from recfunnel.eval.segments import Row

ROWS = (
    ("HR", "HR"),
    ("NDCG", "NDCG"),
    ("coverage", "catalog coverage"),
    ("popularity", "popularity (user share)"),
    ("novelty", "novelty (bits)"),
    ("tail_share", "long-tail share"),
    ("diversity", "genre diversity (ILD)"),
)


def report_table(report: Report, title: str) -> Table:
    """Rows are metrics, columns are cut-offs K; MRR and the NDCG@10 interval go in the caption."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for k in report.ks:
        table.add_column(f"@{k}", justify="right")
    for key, label in ROWS:
        if f"{key}@{report.ks[0]}" in report.metrics:
            table.add_row(label, *(f"{report.metrics[f'{key}@{k}']:.4f}" for k in report.ks))
    low, high = report.ndcg10_ci
    table.caption = (f"MRR {report['MRR']:.4f} · NDCG@10 95% CI [{low:.4f}, {high:.4f}] · "
                     f"{report.n_users:,} users · full ranking, visible history excluded")
    return table


def comparison_table(rows: dict[str, tuple[Report, float, dict]], title: str) -> Table:
    """One row per model: accuracy and beyond-accuracy at 10, recall deeper down, time, params."""
    table = Table(title=title, title_justify="left")
    for column in ("model", "HR@10", "NDCG@10", "NDCG@10 95% CI", "MRR", "HR@100", "HR@500",
                   "coverage@10", "tail@10", "fit s", "params"):
        table.add_column(column, justify="left" if column in ("model", "params") else "right")
    for name, (report, seconds, params) in rows.items():
        low, high = report.ndcg10_ci
        m = report.metrics
        table.add_row(name, f"{m['HR@10']:.4f}", f"{m['NDCG@10']:.4f}", f"[{low:.4f}, {high:.4f}]",
                      f"{m['MRR']:.4f}", f"{m['HR@100']:.4f}", f"{m['HR@500']:.4f}",
                      f"{m['coverage@10']:.3f}", f"{m['tail_share@10']:.3f}", f"{seconds:.1f}",
                      ", ".join(f"{k}={v}" for k, v in params.items()) or "-")
    return table


def funnel_table(reports: dict[str, Report], title: str) -> Table:
    """One row per stage: accuracy at 10, candidate recall deeper down, beyond-accuracy at 10."""
    columns = ("HR@10", "NDCG@10", "HR@100", "HR@500", "coverage@10", "novelty@10",
               "diversity@10", "tail_share@10", "popularity@10")
    table = Table(title=title, title_justify="left")
    table.add_column("stage")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_column("NDCG@10 95% CI", justify="right")
    for stage, report in reports.items():
        low, high = report.ndcg10_ci
        table.add_row(stage, *(f"{report.metrics[c]:.4f}" if c in report.metrics else "-"
                               for c in columns), f"[{low:.4f}, {high:.4f}]")
    table.caption = (f"{next(iter(reports.values())).n_users:,} users · full ranking, visible "
                     "history excluded · tail = outside the 20% most popular items")
    return table


def segment_table(rows: list[Row], title: str) -> Table:
    """One row per group of users (``activity_segments``), one column per metric and stage."""
    table = Table(title=title, title_justify="left")
    for column in rows[0] if rows else ("history", "users"):
        table.add_column(column, justify="left" if column == "history" else "right")
    for row in rows:
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()))
    table.caption = "visible interactions per user · full ranking, visible history excluded"
    return table
