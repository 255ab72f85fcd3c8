"""Boost recent items: the newest release year in the catalog gets the full boost, and it halves
every ``half_life`` years of age."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recfunnel.rerank.slate import ItemFacts, Slate, UserFacts


@dataclass
class FreshnessBoost:
    weight: float = 0.1  # in units of the slate's score range (best minus worst candidate)
    half_life: float = 2.0  # years
    name: str = "freshness"

    def apply(self, slate: Slate, user: UserFacts, items: ItemFacts) -> Slate:
        if not len(slate) or self.weight == 0 or np.isnan(items.newest):
            return slate
        freshness = 0.5 ** (items.age[slate.items] / self.half_life)  # 0 where the age is unknown
        spread = float(np.ptp(slate.scores)) or 1.0
        return slate.adjust(self.name, self.weight * spread * freshness)
