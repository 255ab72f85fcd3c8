"""Fairness to the long tail: a guaranteed minimum share of the final list."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recfunnel.rerank.selection import Groups
from recfunnel.rerank.slate import ItemFacts, Slate


@dataclass
class TailQuota:
    """At least ``share`` of the ``k`` slots go to long-tail items (when the slate has them):
    once the remaining slots are only just enough, only tail items may take them."""

    share: float = 0.2
    name: str = "tail-quota"

    def groups(self, slate: Slate, items: ItemFacts, k: int) -> Groups:
        return Groups(items.tail[slate.items][:, None], np.array([math.ceil(self.share * k)]),
                      np.array([k]))
