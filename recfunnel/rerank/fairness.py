"""Fairness to the long tail: a guaranteed minimum share of the final list."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recfunnel.rerank.slate import ItemFacts


@dataclass
class TailQuota:
    """At least ``share`` of the ``k`` slots go to long-tail items (when the slate has them):
    once the remaining slots are only just enough, only tail items may take them."""

    share: float = 0.2
    name: str = "tail-quota"

    def members(self, items: ItemFacts) -> np.ndarray:
        """[items, 1]: the one group, the tail."""
        return items.tail[:, None]

    def limits(self, k: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
        """Picks each group needs at least and may take at most, in a list of ``k``."""
        return np.full(groups, math.ceil(self.share * k)), np.full(groups, k)
