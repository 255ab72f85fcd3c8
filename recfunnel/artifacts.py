"""A trained system is one directory: tables as Parquet, models as safetensors, a JSON manifest.

The directory is written under a temporary name and renamed into place, so a reader (the server)
sees either the old system or the new one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.numpy import load_file, save_file

import recfunnel
from recfunnel.data.dataset import Dataset
from recfunnel.errors import RecfunnelError
from recfunnel.retrieval.base import Recommender
from recfunnel.retrieval.registry import model_class
from recfunnel.retrieval.topk import rank_users

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass
class System:
    """What ``fit`` saved: the catalog and users, the visible history, held-out pairs, the model."""

    path: Path
    manifest: dict[str, Any]
    dataset: Dataset  # interactions = the visible history the model was trained on
    heldout: pd.DataFrame | None
    retrieval: Recommender

    def __post_init__(self) -> None:
        self.history = self.dataset.history()

    def recommend(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores per user, their visible history excluded."""
        return rank_users(lambda batch: self.retrieval.score(batch, self.history), users,
                          self.history.matrix, k, desc="recommending")


def save_system(out: Path, dataset: Dataset, history: pd.DataFrame, heldout: pd.DataFrame | None,
                retrieval: Recommender, extra: dict[str, Any]) -> Path:
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        dataset.users.to_parquet(tmp / "users.parquet", index=False)
        dataset.items.to_parquet(tmp / "items.parquet", index=False)
        history.to_parquet(tmp / "history.parquet", index=False)
        if heldout is not None:
            heldout.to_parquet(tmp / "heldout.parquet", index=False)
        # safetensors writes raw buffers: a transposed (non-contiguous) array would come back scrambled
        arrays = {k: np.ascontiguousarray(v) for k, v in retrieval.state().items()}
        save_file(arrays, str(tmp / "retrieval.safetensors"))
        manifest = {
            "format_version": FORMAT_VERSION,
            "recfunnel_version": recfunnel.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dataset": {"name": dataset.name, "users": dataset.n_users, "items": dataset.n_items,
                        "interactions": len(dataset.interactions)},
            "holdout": heldout is not None,
            "stages": {"retrieval": {"model": retrieval.name, "params": retrieval.get_params(),
                                     "file": "retrieval.safetensors"}},
            **extra,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default))
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_system(path: Path) -> System:
    manifest_path = path / MANIFEST
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
    users = pd.read_parquet(path / "users.parquet")
    items = pd.read_parquet(path / "items.parquet")
    if "genres" in items:
        items["genres"] = items["genres"].apply(list)
    history = pd.read_parquet(path / "history.parquet")
    heldout_path = path / "heldout.parquet"
    heldout = pd.read_parquet(heldout_path) if heldout_path.is_file() else None
    dataset = Dataset(manifest["dataset"]["name"], history, users, items)
    return System(path, manifest, dataset, heldout, retrieval)


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
