"""Retrieval models by name, as the CLI and the artifact manifest refer to them."""

from __future__ import annotations

from recfunnel.errors import RecfunnelError
from recfunnel.retrieval.als import ALS
from recfunnel.retrieval.base import Recommender
from recfunnel.retrieval.ease import EASE
from recfunnel.retrieval.popularity import MostPopular
from recfunnel.retrieval.two_tower_recommender import TwoTower

MODELS: dict[str, type[Recommender]] = {m.name: m for m in (TwoTower, MostPopular, EASE, ALS)}
BASELINES = ("most-popular", "ease", "als")


def model_class(name: str) -> type[Recommender]:
    if name not in MODELS:
        raise RecfunnelError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]
