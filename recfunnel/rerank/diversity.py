"""Diversity: maximal marginal relevance over item embeddings, and a cap on items per genre."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recfunnel.rerank.slate import ItemFacts


@dataclass
class MMR:
    """Each pick pays ``weight`` times its highest cosine similarity to the items already picked
    (relevance is the slate's score scaled to [0, 1]). Weight 0 keeps the ranking order."""

    weight: float = 0.1
    name: str = "mmr"

    def vectors(self, items: ItemFacts) -> np.ndarray | None:
        """Unit vectors of the items, a row each (None when the weight is 0): the similarity of
        two items is their dot product, and a selection needs only its picks' rows of it."""
        return items.vectors if self.weight else None


@dataclass
class GenreCap:
    """At most ``max_per_genre`` items of any one genre in the final list."""

    max_per_genre: int = 4
    name: str = "genre-cap"

    def members(self, items: ItemFacts) -> np.ndarray:
        """[items, genres]: a group per genre."""
        return items.genres.toarray() > 0

    def limits(self, k: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
        """Picks each group needs at least and may take at most, in a list of ``k``."""
        return np.zeros(groups, dtype=np.int64), np.full(groups, self.max_per_genre)
