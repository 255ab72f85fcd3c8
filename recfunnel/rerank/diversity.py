"""Diversity: maximal marginal relevance over item embeddings, and a cap on items per genre."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recfunnel.rerank.selection import Groups
from recfunnel.rerank.slate import ItemFacts, Slate


@dataclass
class MMR:
    """Each pick pays ``weight`` times its highest cosine similarity to the items already picked
    (relevance is the slate's score scaled to [0, 1]). Weight 0 keeps the ranking order."""

    weight: float = 0.1
    name: str = "mmr"

    def vectors(self, slate: Slate, items: ItemFacts) -> np.ndarray | None:
        """Unit vectors of the slate's items (None when the weight is 0): the similarity of two
        items is their dot product, and a selection needs only its picks' rows of it."""
        return items.vectors[slate.items] if self.weight else None


@dataclass
class GenreCap:
    """At most ``max_per_genre`` items of any one genre in the final list."""

    max_per_genre: int = 4
    name: str = "genre-cap"

    def groups(self, slate: Slate, items: ItemFacts, k: int) -> Groups:
        genres = items.genres[slate.items].toarray() > 0
        return Groups(genres, np.zeros(genres.shape[1], dtype=np.int64),
                      np.full(genres.shape[1], self.max_per_genre))
