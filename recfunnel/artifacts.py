"""A trained system is one directory: tables as Parquet, models as safetensors, a JSON manifest.

The directory is written under a temporary name and renamed into place, so a reader (the server)
sees either the old system or the new one, never a half-written one.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import shutil
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from safetensors.numpy import load_file, save_file

import recfunnel
from recfunnel.data.arrays import Int16Rows
from recfunnel.data.dataset import Dataset
from recfunnel.errors import ConflictError, RecfunnelError, StaleError
from recfunnel.index.ann import IndexConfig, ItemIndex
from recfunnel.index.candidates import CandidateGenerator
from recfunnel.index.offline import build_item_index, indexable, load_store
from recfunnel.ranking.features import ItemTable, cooccurrence_weights
from recfunnel.ranking.ranker import Ranker
from recfunnel.rerank.chain import RerankConfig, Reranker
from recfunnel.rerank.slate import ItemFacts
from recfunnel.retrieval.base import Recommender
from recfunnel.retrieval.registry import model_class
from recfunnel.serving.funnel import Funnel
from recfunnel.store.base import FeatureStore, records
from recfunnel.store.sqlite_store import SQLiteStore

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INDEX_FILE = "index.faiss"
ITEMS_FILE = "items.parquet"
STORE_FILE = "store.sqlite"
RANKING_FILE = "ranking.safetensors"
COOCCURRENCE_FILE = "cooccurrence.npy"
COOCCURRENCE_INT16_FILE = "cooccurrence_int16.npy"
LOCK_FILE = ".lock"


@dataclass
class System:
    """What ``fit`` saved: the catalog and users, the visible history, held-out pairs, the model."""

    path: Path
    manifest: dict[str, Any]
    dataset: Dataset  # interactions = the visible history the model was trained on
    heldout: pd.DataFrame | None
    retrieval: Recommender
    ranker: Ranker | None = None
    stamp: tuple[int, int] | None = None  # the version on disk it was loaded from (version_stamp)

    def __post_init__(self) -> None:
        self.history = self.dataset.history()

    @property
    def rerank_config(self) -> RerankConfig:
        return RerankConfig(**self.manifest["stages"].get("rerank", {}))

    def funnel(self, rerank: RerankConfig | None = None, rank_depth: int | None = None) -> Funnel:
        """Retrieval -> ranking (when trained) -> re-ranking, over the visible history;
        ``rerank`` overrides the configuration saved by ``fit``, ``rank_depth`` the number of
        candidates the ranking model reorders."""
        vectors = self.retrieval.item_vectors_ if indexable(self.retrieval) else None
        if not hasattr(self, "_facts"):
            self._facts = ItemFacts.build(self.dataset, self.history, vectors)
            earlier = getattr(self, "_table", None)  # before items were added
            self._table = (ItemTable.build(self.dataset, self.history, vectors,
                                           earlier.cooccurrence if earlier is not None
                                           else self._saved_cooccurrence())
                           if self.ranker is not None else None)
            # the co-occurrence source shares the ranking features' item-item weights, as fit
            # saved them in 16 bits (one copy for all the processes that map the file)
            weights = self._saved_cooccurrence_rows()
            if weights is None and self._table is not None:
                weights = self._table.cooccurrence
            self._generator = (CandidateGenerator.over(
                self.index, vectors, self.history, self.dataset.genre_matrix(),
                cooccurrence=weights) if self.index is not None else None)
        stage = self.manifest["stages"].get("ranking", {})
        funnel = Funnel(self.retrieval, Reranker(rerank or self.rerank_config, self._facts),
                        self.ranker, self._table, self._generator,
                        candidates=stage.get("candidates", 500))
        return replace(funnel, rank_depth=rank_depth) if rank_depth else funnel

    def _saved_cooccurrence(self) -> np.ndarray | None:
        """The ranking table's item-item weights as ``fit`` solved them, memory-mapped (server
        processes share the pages); None for artifacts written before they were saved."""
        name = self.manifest["stages"]["ranking"].get("cooccurrence")
        return None if name is None else np.load(self.path / name, mmap_mode="r")

    def _saved_cooccurrence_rows(self) -> Int16Rows | None:
        """The same weights in 16 bits, memory-mapped; None for artifacts written before they
        were saved, and once items have been added (the generator then quantises the float
        weights, padded, itself)."""
        saved = self.manifest["stages"].get("ranking", {}).get("cooccurrence_int16")
        if saved is None:
            return None
        rows = Int16Rows.load(self.path / saved["file"], saved["scale"])
        return rows if len(rows.values) == self.dataset.n_items else None

    @property
    def index(self) -> ItemIndex | None:
        """The ANN index over the item vectors, when the retrieval model has vectors."""
        info = self.manifest.get("index")
        if info is None:
            return None
        if not hasattr(self, "_index"):
            self._index = ItemIndex.load(self.path / _file(self.manifest, "index"),
                                         IndexConfig(**info["config"]))
        return self._index

    @property
    def store_path(self) -> Path:
        return self.path / STORE_FILE

    def recommend(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The retrieval stage's top-``k`` item indices and scores per user, visible history
        excluded (for a model with an index: its candidate sources, merged as served)."""
        lists = self.funnel().retrieve(np.asarray(users, dtype=np.int64), self.history, k)
        return lists.items, lists.scores


def save_system(out: Path, dataset: Dataset, history: pd.DataFrame, heldout: pd.DataFrame | None,
                retrieval: Recommender, extra: dict[str, Any], ranker: Ranker | None = None,
                rerank: RerankConfig | None = None, candidates: int = 500) -> Path:
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        dataset.users.to_parquet(tmp / "users.parquet", index=False)
        dataset.items.to_parquet(tmp / ITEMS_FILE, index=False)
        history.to_parquet(tmp / "history.parquet", index=False)
        if heldout is not None:
            heldout.to_parquet(tmp / "heldout.parquet", index=False)
        _save_state(retrieval, tmp / "retrieval.safetensors")
        stages: dict[str, Any] = {"retrieval": {"model": retrieval.name,
                                                "params": retrieval.get_params(),
                                                "file": "retrieval.safetensors"}}
        if ranker is not None:
            _save_state(ranker, tmp / RANKING_FILE)
            stages["ranking"] = {"model": "target-attention", "params": ranker.get_params(),
                                 "file": RANKING_FILE, "candidates": candidates}
            # solved once here, not by every process that loads the artifacts
            weights = cooccurrence_weights(dataset, dataset.history(history))
            if weights is not None:
                np.save(tmp / COOCCURRENCE_FILE, weights)
                stages["ranking"]["cooccurrence"] = COOCCURRENCE_FILE
                scale = Int16Rows.of(weights).save(tmp / COOCCURRENCE_INT16_FILE)
                stages["ranking"]["cooccurrence_int16"] = {"file": COOCCURRENCE_INT16_FILE,
                                                           "scale": scale}
        stages["rerank"] = (rerank or RerankConfig()).to_dict()
        index_info = _write_index_and_store(tmp, dataset, history, retrieval)
        manifest = {
            "format_version": FORMAT_VERSION,
            "recfunnel_version": recfunnel.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dataset": {"name": dataset.name, "users": dataset.n_users, "items": dataset.n_items,
                        "interactions": len(dataset.interactions)},
            "holdout": heldout is not None,
            "stages": stages,
            **({"index": index_info, "store": STORE_FILE} if index_info else {}),
            **extra,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default))
        (tmp / LOCK_FILE).touch()  # what processes changing or reading the directory lock
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_index_and_store(directory: Path, dataset: Dataset, history: pd.DataFrame,
                           retrieval: Recommender) -> dict[str, Any] | None:
    """For a model with item vectors: the ANN index and the embedded feature store."""
    if not indexable(retrieval):
        return None
    visible = Dataset(dataset.name, history, dataset.users, dataset.items)
    index, info = build_item_index(retrieval, visible.history())
    _save_index(index, info, directory / INDEX_FILE)
    with SQLiteStore(directory / STORE_FILE) as store:
        load_store(store, retrieval, visible)
    return info


def rebuild_index(system: System, config: IndexConfig) -> dict[str, Any]:
    """Rebuild ``system``'s index with ``config`` (see :func:`_commit` for atomicity)."""
    index, info = build_item_index(system.retrieval, system.history, config)
    with _changing(system):
        _commit(system, system.manifest | {"index": info},
                {"index": lambda path: _save_index(index, info, path)})
    system._index = index
    system.__dict__.pop("_facts", None)  # the funnel's candidate sources search the new index
    return info


def add_items(system: System, items: pd.DataFrame,
              store: FeatureStore | None = None) -> np.ndarray:
    """Embed new items from their content, insert them into the feature store (``store``, or the
    artifact's SQLite file) and the index, and save the extended catalog, index and model as one
    change (:func:`_commit`). Returns the new item indices. The store is written first: a crash
    before the commit leaves it with items the catalog does not name yet, which adding the same
    items again overwrites. Raises :class:`StaleError` when another process (a server worker,
    ``items add``) changed the directory since ``system`` was loaded from it."""
    with _changing(system):
        return _add_items(system, items, store)


def _add_items(system: System, items: pd.DataFrame, store: FeatureStore | None) -> np.ndarray:
    if system.index is None:
        raise RecfunnelError(f"{system.path}: the {system.retrieval.name} model has no item tower; "
                             "adding items needs a two-tower artifact")
    if (pd.api.types.is_integer_dtype(system.dataset.items["item_id"])
            and not pd.api.types.is_integer_dtype(items["item_id"])):
        raise RecfunnelError("the catalog's item ids are integers; the new items' ids must be too")
    known = set(system.dataset.items["item_id"].astype(str))
    clash = [i for i in items["item_id"].astype(str) if i in known]
    if clash:
        raise ConflictError(f"item ids already in the catalog: {', '.join(clash[:5])}")
    vectors = system.retrieval.add_items(items)
    catalog = pd.concat([system.dataset.items, items[system.dataset.items.columns.intersection(
        items.columns)]], ignore_index=True)
    new = np.arange(system.dataset.n_items, len(catalog))
    if store is None:
        with SQLiteStore(system.store_path) as sqlite:
            sqlite.put_items(new, records(catalog.iloc[new]), vectors)
    else:
        store.put_items(new, records(catalog.iloc[new]), vectors)
    system.index.add(vectors)
    manifest = copy.deepcopy(system.manifest)
    manifest["dataset"]["items"] = len(catalog)
    manifest["index"]["items"] = system.index.size
    _commit(system, manifest, {
        "index": system.index.save,
        "items": lambda path: catalog.to_parquet(path, index=False),
        "retrieval": lambda path: _save_state(system.retrieval, path)})
    system.dataset.items = catalog
    system.history = system.dataset.history()
    system.__dict__.pop("_facts", None)  # the funnel's item tables and sources: the new catalog
    # (the ranking table keeps its co-occurrence weights: the history has not changed)
    return new


def _file(manifest: dict[str, Any], role: str) -> str:
    """The artifact file holding ``role`` (index, items, retrieval), as the manifest names it."""
    if role == "retrieval":
        return manifest["stages"]["retrieval"]["file"]
    return manifest.get("files", {}).get(role, {"index": INDEX_FILE, "items": ITEMS_FILE}[role])


def _commit(system: System, manifest: dict[str, Any],
            writers: dict[str, Callable[[Path], Any]]) -> None:
    """Write each role's file under a new name, then ``manifest`` (the system's, changed) naming
    them: the one atomic step, so a reader, or a crash, sees the old files or the new ones, never
    a mix. Then remove the files it replaced."""
    version = uuid.uuid4().hex[:8]
    manifest = copy.deepcopy(manifest)
    replaced = {role: _file(manifest, role) for role in writers}
    written = {role: f"{role}-{version}{Path(name).suffix}" for role, name in replaced.items()}
    try:
        for role, write in writers.items():
            replace_file(system.path / written[role], write)
            if role == "retrieval":
                manifest["stages"]["retrieval"]["file"] = written[role]
            else:
                manifest.setdefault("files", {})[role] = written[role]
        write_manifest(system.path, manifest)
    except BaseException:
        for name in written.values():
            (system.path / name).unlink(missing_ok=True)
        raise
    system.manifest = manifest
    system.stamp = version_stamp(system.path)
    for name in replaced.values():
        (system.path / name).unlink(missing_ok=True)


def version_stamp(path: Path) -> tuple[int, int] | None:
    """Identifies the version of the artifacts at ``path`` (None when there are none): every
    change writes a new manifest and renames it into place, so the file's inode and time change."""
    try:
        stat = (path / MANIFEST).stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """A shared lock on the artifact directory: no other process changes it (and removes the
    files a change replaces) while this one reads a version from it. A directory this process
    cannot write to, or that holds no artifacts, is read without one."""
    try:
        handle = open(path / LOCK_FILE, "a") if (path / MANIFEST).is_file() else None
    except OSError:
        handle = None
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield  # closing the file releases the lock


@contextlib.contextmanager
def _changing(system: System) -> Iterator[None]:
    """Holds an exclusive lock on the artifact directory between processes (the kernel releases
    it if one dies) while ``system`` changes it; raises :class:`StaleError` when the directory
    is no longer the version ``system`` was loaded from, whose change would be lost."""
    with open(system.path / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if version_stamp(system.path) != system.stamp:
            raise StaleError(f"{system.path}: the artifacts changed on disk since they were "
                             "loaded; load them again")
        yield


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    replace_file(path / MANIFEST, lambda p: p.write_text(
        json.dumps(manifest, indent=2, default=_json_default)))


def replace_file(path: Path, write: Callable[[Path], Any]) -> None:
    """Write ``path`` under a temporary name beside it, then rename it into place."""
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_state(model: Recommender | Ranker, path: Path) -> None:
    # safetensors writes raw buffers: a transposed (non-contiguous) array would come back scrambled
    save_file({k: np.ascontiguousarray(v) for k, v in model.state().items()}, str(path))


def _save_index(index: ItemIndex, info: dict[str, Any], path: Path) -> None:
    index.save(path)
    info["bytes_per_item"] = round(path.stat().st_size / max(1, index.size), 1)


def load_system(path: Path) -> System:
    manifest_path = path / MANIFEST
    stamp = version_stamp(path)  # before reading: a change from here on shows as a newer stamp
    if not manifest_path.is_file():
        raise RecfunnelError(f"{path}: not a recfunnel artifact directory (no {MANIFEST}); "
                             "create one with `recfunnel fit --out DIR`")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RecfunnelError(f"{path}: artifact format {manifest.get('format_version')} is not "
                             f"supported by this recfunnel (format {FORMAT_VERSION}); refit")
    stage = manifest["stages"]["retrieval"]
    retrieval = model_class(stage["model"])(**stage["params"])
    retrieval.load_state(load_file(str(path / stage["file"])))
    ranker = None
    if "ranking" in manifest["stages"]:
        ranking = manifest["stages"]["ranking"]
        ranker = Ranker(**ranking["params"]).load_state(load_file(str(path / ranking["file"])),
                                                        retrieval.dim)
    users = pd.read_parquet(path / "users.parquet")
    items = pd.read_parquet(path / _file(manifest, "items"))
    if "genres" in items:
        items["genres"] = items["genres"].apply(list)
    history = pd.read_parquet(path / "history.parquet")
    heldout_path = path / "heldout.parquet"
    heldout = pd.read_parquet(heldout_path) if heldout_path.is_file() else None
    dataset = Dataset(manifest["dataset"]["name"], history, users, items)
    return System(path, manifest, dataset, heldout, retrieval, ranker, stamp)


def _swap_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    if not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise RecfunnelError(f"{out}: exists and is not a recfunnel artifact directory; "
                             "refusing to overwrite it")
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")
