"""The ``recfunnel`` command line: fit, recommend, export, evaluate, report, baselines, index,
items, data synth, demo."""

from __future__ import annotations

import inspect
import json
import logging
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from recfunnel.artifacts import (
    System, add_items, load_system, rebuild_index, save_system, write_manifest,
)
from recfunnel.data import download
from recfunnel.data.dataset import Dataset
from recfunnel.data.interaction_log import item_table
from recfunnel.data.tables import read_table
from recfunnel.data.loading import load
from recfunnel.data.split import temporal_leave_one_out
from recfunnel.data.synth import SynthConfig, generate, write
from recfunnel.errors import DataError, RecfunnelError
from recfunnel.eval.tables import comparison_table, funnel_table, report_table, segment_table
from recfunnel.pipeline import fit_funnel, select_and_fit
from recfunnel.report import FINAL_K, FunnelEvaluation, evaluate_funnel, gain_lines, write_report
from recfunnel.rerank.chain import RerankConfig
from recfunnel.serving.funnel import Funnel
from recfunnel.retrieval.registry import BASELINES, MODELS, model_class
from recfunnel.index.ann import IndexConfig
from recfunnel.index.offline import indexable, load_store
from recfunnel.retrieval.topk import PAD
from recfunnel.store.redis_store import RedisStore

console = Console(width=None if sys.stdout.isatty() else 160)  # wide tables in logs and files
log = logging.getLogger("recfunnel")


class _FriendlyErrors(TyperGroup):
    """A user's mistake is one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except RecfunnelError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(cls=_FriendlyErrors, no_args_is_help=True, add_completion=False,
                  help="A YouTube-style recommendation funnel: retrieval, ranking, re-ranking.")
data_app = typer.Typer(no_args_is_help=True, help="Generate and inspect data.")
app.add_typer(data_app, name="data")
index_app = typer.Typer(no_args_is_help=True, help="The ANN index over item embeddings.")
app.add_typer(index_app, name="index")
items_app = typer.Typer(no_args_is_help=True, help="Change the catalog without retraining.")
app.add_typer(items_app, name="items")


class DataFormat(str, Enum):
    auto = "auto"
    ml_1m = "ml-1m"
    ml_100k = "ml-100k"
    interactions = "interactions"


class SynthFormat(str, Enum):
    ml_1m = "ml-1m"
    ml_100k = "ml-100k"
    interactions = "interactions"


class Stage(str, Enum):
    retrieval = "retrieval"
    ranking = "ranking"
    final = "final"


DataOpt = Annotated[str, typer.Option(
    "--data", help="Dataset directory or log file, or a name: ml-1m, ml-100k (found locally or downloaded).")]
FormatOpt = Annotated[DataFormat, typer.Option("--format", help="Input layout; auto detects it.")]
DataDirOpt = Annotated[Optional[Path], typer.Option(
    "--data-dir", envvar=download.DATA_DIR_ENV, help="Directory holding ml-1m/ and ml-100k/ copies.")]
UserFeaturesOpt = Annotated[Optional[Path], typer.Option(
    "--user-features", help="CSV/Parquet user table (user_id + columns), for --format interactions.")]
ItemFeaturesOpt = Annotated[Optional[Path], typer.Option(
    "--item-features", help="CSV/Parquet item table (item_id, title, genres, year, ...).")]
ArtifactsOpt = Annotated[Path, typer.Option("--artifacts", help="Directory written by `recfunnel fit`.")]


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")


def _load(data: str, format: DataFormat, data_dir: Path | None,
          user_features: Path | None = None, item_features: Path | None = None) -> Dataset:
    dataset = load(data, format.value, data_dir=data_dir, user_features=user_features,
                   item_features=item_features)
    console.print(dataset.summary())
    return dataset


@app.command()
def fit(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="Artifact directory to write.")] = Path("artifacts"),
    format: FormatOpt = DataFormat.auto,
    model: Annotated[str, typer.Option("--model", help=f"Retrieval model: {', '.join(MODELS)}.")] = "ease",
    holdout: Annotated[bool, typer.Option(
        "--holdout/--no-holdout",
        help="Hold out each user's last interaction for `evaluate` (default), or train on all.")] = True,
    data_dir: DataDirOpt = None,
    user_features: UserFeaturesOpt = None,
    item_features: ItemFeaturesOpt = None,
    ranking: Annotated[bool, typer.Option(
        "--ranking/--no-ranking",
        help="Train the ranking model on the two-tower candidates (two-tower only).")] = True,
    rerank: Annotated[Optional[Path], typer.Option(
        "--rerank", help="JSON re-ranking rules, e.g. {\"mmr_weight\": 0.2, "
                         "\"exclude_genres\": [\"Horror\"]}; defaults otherwise.")] = None,
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", help="Retrieval model parameter NAME=VALUE (a JSON value or a string), "
                        "repeatable, e.g. --param use_user_id=true --param dim=128; fixes it "
                        "instead of the defaults or the selection grid.")] = None,
) -> None:
    """Train every stage into one artifact directory, then score each stage on the held-out
    split: retrieval (selected on validation, refit), ranking, re-ranking."""
    cls = model_class(model)
    params = _model_params(cls, param or [])
    rules = _rerank_config(rerank)
    dataset = _load(data, format, data_dir, user_features, item_features)
    if rules.exclude_genres:
        unknown = set(rules.exclude_genres) - set(dataset.genre_vocabulary())
        if unknown:
            raise RecfunnelError(f"{rerank}: unknown genres {sorted(unknown)}; the catalog has "
                                 f"{dataset.genre_vocabulary()}")
    split = temporal_leave_one_out(dataset.interactions)
    if cls.name == "two-tower" and ranking:
        funnel = fit_funnel(dataset, split, holdout=holdout, params=params)
        trained, ranker, history, extra = funnel.retrieval, funnel.ranker, funnel.history, funnel.info
        seconds = extra["fit_seconds"]
        console.print(f"ranking model trained on {extra['ranking_examples']['queries']:,} "
                      f"candidate lists; validation NDCG@10 {ranker.valid_ndcg_:.4f}")
    else:
        grid = cls.param_grid | {name: [value] for name, value in params.items()}
        fitted = select_and_fit(cls, dataset, split, grid=grid, holdout=holdout)
        for trial in fitted.trials:
            console.print(f"  validation NDCG@10 {trial.score:.4f}  {trial.params}  "
                          f"({trial.seconds:.1f}s)")
        trained, ranker, history, seconds = fitted.model, None, fitted.history, fitted.fit_seconds
        extra = {"selection": [vars(t) for t in fitted.trials], "fit_seconds": seconds}
    path = save_system(out, dataset, history, split.test if holdout else None, trained, extra,
                       ranker, rules)
    console.print(f"{cls.name} {trained.get_params()} trained in {seconds:.1f}s "
                  f"on {len(history):,} interactions; saved to {path}")
    if holdout and len(split.test):
        system = load_system(path)
        evaluation = evaluate_funnel(system)
        system.manifest["test"] = evaluation.to_dict()
        write_manifest(path, system.manifest)
        _print_funnel(evaluation, f"{cls.name} funnel: held-out test (last item per user)",
                      cls.name)


def _model_params(cls: type, assignments: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs for ``cls``'s constructor, values parsed as JSON where they are; a
    name the model does not take, or a value it rejects, is a user mistake."""
    known = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
    params: dict[str, Any] = {}
    for assignment in assignments:
        name, equals, raw = assignment.partition("=")
        if not equals or name not in known:
            raise RecfunnelError(f"--param {assignment!r}: expected NAME=VALUE with NAME one of "
                                 f"{cls.name}'s parameters: {', '.join(known)}")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    try:
        cls(**params)
    except (TypeError, ValueError) as err:
        raise RecfunnelError(f"--param: {cls.name} does not take {params}: {err}") from None
    return params


def _rerank_config(path: Path | None) -> RerankConfig:
    if path is None:
        return RerankConfig()
    try:
        values = json.loads(path.read_text())
        return RerankConfig(**values)
    except FileNotFoundError:
        raise RecfunnelError(f"{path}: no such file") from None
    except (json.JSONDecodeError, TypeError, AttributeError) as err:
        raise RecfunnelError(f"{path}: not a re-ranking configuration ({err}); keys: "
                             f"{', '.join(RerankConfig().to_dict())}") from None


@app.command()
def evaluate(
    artifacts: ArtifactsOpt,
    rank_depth: Annotated[int | None, typer.Option(
        "--rank-depth", min=1,
        help=f"Candidates the ranking model reorders (default: {Funnel.rank_depth}).")] = None,
) -> None:
    """Print the funnel report on the held-out split saved by `fit`: candidate recall, ranking
    and final accuracy, coverage, novelty, diversity and tail share per stage."""
    system = load_system(artifacts)
    evaluation = evaluate_funnel(system, rank_depth=rank_depth)
    name = system.manifest["stages"]["retrieval"]["model"]
    console.print(report_table(evaluation.reports["retrieval"], "retrieval stage at every depth"))
    _print_funnel(evaluation, f"{name} funnel: held-out test (last item per user); final list "
                              f"of {FINAL_K}", name)
    console.print(segment_table(evaluation.segments, "by user activity: the same held-out items, "
                                                     "users grouped by history length"))


def _print_funnel(evaluation: FunnelEvaluation, title: str, model: str) -> None:
    """The stages, and, where retrieval merges several candidate sources, the model alone."""
    alone = {} if evaluation.model_alone is None else {f"{model} alone": evaluation.model_alone}
    console.print(funnel_table(alone | evaluation.reports, title))
    for line in gain_lines(evaluation):
        console.print(line)


@app.command()
def report(
    artifacts: ArtifactsOpt,
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path("report.html"),
) -> None:
    """Write an HTML page: metric by stage, accuracy vs diversity as the MMR weight varies, and
    the popularity of recommended items."""
    system = load_system(artifacts)
    console.print(f"wrote {write_report(system, out)}")


@app.command()
def recommend(
    artifacts: ArtifactsOpt,
    user: Annotated[str, typer.Option("--user", help="Raw user id, as in the data files.")],
    k: Annotated[int, typer.Option("--k", min=1, help="How many items.")] = 10,
) -> None:
    """Print a user's top-k items with titles and scores."""
    system = load_system(artifacts)
    console.print(recommendation_table(system, user, k))


def recommendation_table(system: System, raw_user: str, k: int) -> Table:
    dataset = system.dataset
    index = dataset.user_index(raw_user)
    if index is None:
        sample = ", ".join(map(str, dataset.users["user_id"].head(3)))
        raise RecfunnelError(f"unknown user {raw_user!r} ({dataset.n_users:,} users, e.g. {sample})")
    slate = system.funnel().run(np.array([index]), system.history, k=k).final[0]
    seen = dataset.interactions[dataset.interactions["user"] == index]
    recent = seen.sort_values("timestamp", kind="stable")["item"].tail(3)
    table = Table(title=f"Top {k} for user {raw_user}", title_justify="left",
                  caption="recently watched: " + "; ".join(dataset.items["title"].iloc[recent]))
    for column in ("rank", "item_id", "title", "genres", "score", "why"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    for rank, (item, score, why) in enumerate(zip(slate.items, slate.scores, slate.explanations),
                                              start=1):
        row = dataset.items.iloc[item]
        table.add_row(str(rank), str(row["item_id"]), str(row.get("title", "")),
                      ", ".join(row["genres"]) if "genres" in row else "", f"{score:.4f}",
                      _explain(why))
    return table


def _explain(why: dict) -> str:
    # the source that found the item, and the retrieval model's score of it
    parts = [f"{why['source']} (retrieval {why['retrieval_score']:.3f})"]
    if "ranking_score" in why:
        parts.append(f"ranked {why['ranking_score']:.2f}")
    parts += [f"{rule} {value:+.3f}" if isinstance(value, float) else f"{rule}: {value}"
              for rule, value in why["adjustments"].items()]
    if why.get("rank_before_selection"):
        parts.append(f"was #{why['rank_before_selection'] + 1}")
    return "; ".join(parts)


@app.command()
def export(
    artifacts: ArtifactsOpt,
    out: Annotated[Path, typer.Option("--out", help="recs.csv or recs.parquet.")],
    k: Annotated[int, typer.Option("--k", min=1)] = 500,
    stage: Annotated[Stage, typer.Option("--stage", help="Which stage's list to write.")] = Stage.retrieval,
) -> None:
    """Write user_id,item_id,rank,score for every user with history, visible items excluded:
    retrieval's candidates (the first k of the stage's list, 500 long or k when longer), the
    ranking model's order of them, or the re-ranked final list."""
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise RecfunnelError(f"{out}: the output must end in .csv or .parquet")
    system = load_system(artifacts)
    users = np.flatnonzero(system.history.lengths() > 0)
    if len(users) < system.dataset.n_users:
        log.warning("%d users have no visible history and are not exported",
                    system.dataset.n_users - len(users))
    if stage is Stage.retrieval:
        # the stage's list cut at k: merged sources fill a shorter list in other proportions
        items, scores = system.recommend(users, max(k, system.funnel().candidates))
        items, scores = items[:, :k], scores[:, :k]
    else:
        if stage is Stage.ranking and system.ranker is None:
            raise RecfunnelError(f"{artifacts}: no ranking stage was trained (it needs --model "
                                 "two-tower); export --stage retrieval or final")
        funnel = system.funnel()
        depth = funnel.rank_depth if stage is Stage.ranking else funnel.pool
        if k > depth:
            log.warning("the %s stage holds %d items per user; exporting %d, not %d",
                        stage.value, depth, depth, k)
        lists = funnel.run(users, system.history, k=min(k, depth)).lists[stage.value]
        items, scores = lists.items[:, :k], lists.scores[:, :k]
    width = items.shape[1]
    real = items != PAD
    rows = pd.DataFrame({
        "user_id": np.repeat(system.dataset.users["user_id"].to_numpy()[users], width)[real.ravel()],
        "item_id": system.dataset.items["item_id"].to_numpy()[items[real]],
        "rank": np.tile(np.arange(1, width + 1), len(users))[real.ravel()],
        "score": scores[real],
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        rows.to_csv(out, index=False, float_format="%.6g")
    else:
        rows.to_parquet(out, index=False)
    console.print(f"wrote {len(rows):,} rows for {len(users):,} users ({stage.value}) to {out}")


@app.command()
def baselines(
    data: DataOpt,
    format: FormatOpt = DataFormat.auto,
    data_dir: DataDirOpt = None,
    models: Annotated[str, typer.Option("--models", help="Comma-separated.")] = ",".join(BASELINES),
) -> None:
    """Fit MostPopular, EASE and ALS on the same split and print their test metrics."""
    classes = [model_class(name.strip()) for name in models.split(",") if name.strip()]
    dataset = _load(data, format, data_dir)
    split = temporal_leave_one_out(dataset.interactions)
    rows = {}
    for cls in classes:
        start = time.perf_counter()
        fitted = select_and_fit(cls, dataset, split)
        if fitted.test is None:
            raise DataError("no user has 3+ interactions, so there is no test split to report on")
        rows[cls.name] = (fitted.test, time.perf_counter() - start, fitted.model.get_params())
    console.print(comparison_table(rows, f"{dataset.name}: temporal leave-one-out, full ranking "
                                         "(fit s includes validation-based selection)"))


class IndexKind(str, Enum):
    auto = "auto"
    flat = "flat"
    ivf_flat = "ivf-flat"
    ivf_sq8 = "ivf-sq8"
    hnsw = "hnsw"


class StoreKind(str, Enum):
    sqlite = "sqlite"
    redis = "redis"


@index_app.command("build")
def index_build(
    artifacts: ArtifactsOpt,
    kind: Annotated[IndexKind, typer.Option("--kind", help="auto: by catalog size.")] = IndexKind.auto,
    nlist: Annotated[Optional[int], typer.Option("--nlist", min=1, help="IVF lists.")] = None,
    refine: Annotated[Optional[int], typer.Option(
        "--refine", min=0, help="IVF: re-score refine x 100 quantised hits with the exact "
                                "vectors; 0: off. Default: 2 for ivf-sq8, else 0.")] = None,
    store: Annotated[StoreKind, typer.Option(
        "--store", help="Also load the feature store: the artifact's SQLite file (always "
                        "written by fit) or a Redis server.")] = StoreKind.sqlite,
    redis_url: Annotated[str, typer.Option("--redis-url")] = "redis://localhost:6379/0",
) -> None:
    """Re-embed the catalog, rebuild the ANN index, record its recall@100 vs exact search."""
    system = load_system(artifacts)
    if not indexable(system.retrieval):
        raise RecfunnelError(f"{artifacts}: the {system.retrieval.name} model has no embeddings "
                             "to index; fit with --model two-tower")
    info = rebuild_index(system, IndexConfig(kind=kind.value, nlist=nlist, refine=refine))
    config = info["config"]
    setting = {"hnsw": f", ef_search {config['ef_search']}"}.get(
        config["kind"], f", nprobe {config['nprobe']}" if config["kind"].startswith("ivf") else "")
    console.print(f"index {config['kind']} over {info['items']:,} items in "
                  f"{info['build_seconds']:.1f}s: recall@100 vs exact {info['recall@100']:.4f}"
                  f"{setting}, {info['bytes_per_item']} bytes/item")
    if store is StoreKind.redis:
        with RedisStore(redis_url) as redis_store:
            load_store(redis_store, system.retrieval, system.dataset)
        console.print(f"loaded the feature store at {redis_url}")


@app.command()
def serve(
    artifacts: ArtifactsOpt,
    store: Annotated[StoreKind, typer.Option(
        "--store", help="sqlite: the artifact's own file; redis: a server loaded with "
                        "`index build --store redis`.")] = StoreKind.sqlite,
    redis_url: Annotated[str, typer.Option("--redis-url")] = "redis://localhost:6379/0",
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, help="Server processes on the one port, each answering one request "
                                 "at a time: about one per core for throughput.")] = 1,
) -> None:
    """Serve the funnel over HTTP: GET /users/{id}/recommendations, POST /events, POST /items,
    GET /items/{id}/similar, /health, /metrics, a web page at /, API docs at /docs. The server
    follows the artifact directory: a new version written there is loaded and swapped in."""
    import uvicorn

    from recfunnel.serving.app import create_app
    from recfunnel.serving.service import Service, StoreConfig
    from recfunnel.serving.workers import SERVER_OPTIONS, serve_workers

    config = StoreConfig(store.value, redis_url)
    where = f"serving {artifacts} on http://{host}:{port} (docs at /docs)"
    if workers == 1:
        application = create_app(artifacts, config)
        console.print(where)
        uvicorn.run(application, host=host, port=port, **SERVER_OPTIONS)
        return
    Service.load(artifacts, config).close()  # a user's mistake shows here, not once per worker
    console.print(f"{where} with {workers} worker processes")
    serve_workers(artifacts, config, host, port, workers)


@items_app.command("add")
def items_add(
    file: Annotated[Path, typer.Argument(help="CSV/Parquet: item_id, title, genres (a|b), year.")],
    artifacts: ArtifactsOpt,
) -> None:
    """Embed new items from their content and make them retrievable at once, without retraining."""
    system = load_system(artifacts)
    new = add_items(system, item_table(read_table(file)))
    console.print(f"added {len(new):,} items (indices {new[0]}..{new[-1]}); the catalog now has "
                  f"{system.dataset.n_items:,} items")


@data_app.command("synth")
def synth(
    out: Annotated[Path, typer.Option("--out")],
    users: Annotated[int, typer.Option("--users", min=1)] = 6040,
    items: Annotated[int, typer.Option("--items", min=2)] = 3706,
    interactions: Annotated[int, typer.Option("--interactions", min=1)] = 1_000_209,
    format: Annotated[SynthFormat, typer.Option("--format")] = SynthFormat.ml_1m,
    clusters: Annotated[int, typer.Option("--clusters", min=1)] = 20,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Generate synthetic data with learnable structure in a real file format."""
    data = generate(SynthConfig(users=users, items=items, interactions=interactions,
                                clusters=clusters, seed=seed))
    paths = write(data, out, format.value)
    console.print(f"wrote {len(data.interactions):,} interactions, {users:,} users, {items:,} items "
                  f"as {format.value}: {', '.join(p.name for p in paths)} in {out}")


@app.command()
def demo(
    data_dir: DataDirOpt = None,
    out: Annotated[Path, typer.Option("--out")] = Path("artifacts/demo"),
    model: Annotated[str, typer.Option(
        "--model", help="Retrieval model; two-tower trains the whole funnel.")] = "two-tower",
) -> None:
    """The whole job on MovieLens-1M (ML-100K when ML-1M's ratings cannot be had): train,
    evaluate, and recommend for one user."""
    try:
        source = download.fetch("ml-1m", data_dir)
    except DataError as err:
        source = download.find_local("ml-100k", data_dir)
        if source is None:
            raise
        console.print(f"[yellow]MovieLens-1M ratings are not available ({err}).\n"
                      f"Using MovieLens-100K from {source} instead.[/yellow]")
    fit(data=str(source), out=out, format=DataFormat.auto, model=model, holdout=True,
        data_dir=data_dir, user_features=None, item_features=None)
    system = load_system(out)
    first_user = str(system.dataset.users["user_id"].iloc[0])
    console.print(recommendation_table(system, first_user, 10))


def main() -> None:
    app()
