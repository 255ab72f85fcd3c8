"""Fairness to the long tail: a guaranteed minimum share of the final list."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recfunnel.rerank.slate import ItemFacts, Slate


@dataclass
class TailQuota:
    """At least ``share`` of the ``k`` slots go to long-tail items (when the slate has them):
    once the remaining slots are only just enough, only tail items may take them."""

    share: float = 0.2
    name: str = "tail-quota"

    def allowed(self, slate: Slate, chosen: list[int], slots_left: int, k: int,
                items: ItemFacts) -> np.ndarray:
        tail = items.tail[slate.items]
        need = math.ceil(self.share * k) - int(tail[chosen].sum())
        return tail if need >= slots_left else np.ones(len(slate), dtype=bool)
