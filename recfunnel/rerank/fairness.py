"""Fairness to the long tail: a guaranteed minimum share of the final list."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recfunnel.rerank.slate import Allowed, ItemFacts, Slate


@dataclass
class TailQuota:
    """At least ``share`` of the ``k`` slots go to long-tail items (when the slate has them):
    once the remaining slots are only just enough, only tail items may take them."""

    share: float = 0.2
    name: str = "tail-quota"

    def start(self, slate: Slate, items: ItemFacts, k: int) -> Allowed:
        tail = items.tail[slate.items]
        is_tail = tail.tolist()  # a handful of lookups per pick: cheaper in Python than NumPy
        quota = math.ceil(self.share * k)

        def allowed(chosen: list[int], slots_left: int) -> np.ndarray | None:
            return tail if quota - sum(is_tail[i] for i in chosen) >= slots_left else None
        return allowed
