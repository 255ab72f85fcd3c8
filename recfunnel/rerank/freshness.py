"""Boost recent items: the newest release year in the catalog gets the full boost, and it halves
every ``half_life`` years of age."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recfunnel.rerank.slate import ItemFacts


@dataclass
class FreshnessBoost:
    weight: float = 0.1  # in units of the slate's score range (best minus worst candidate)
    half_life: float = 2.0  # years
    name: str = "freshness"

    def freshness(self, items: ItemFacts) -> np.ndarray:
        """Per item of the catalog, its boost in units of ``weight`` times the score range: 1
        for the newest release, 0 where the year is unknown; none at all (an empty array) when
        the weight is 0 or no year is known."""
        if self.weight == 0 or np.isnan(items.newest):
            return np.zeros(0)
        return 0.5 ** (items.age / self.half_life)
