"""Rules that remove candidates outright."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recfunnel.data.arrays import contained
from recfunnel.rerank.slate import ItemFacts, Slate, UserFacts


@dataclass
class RemoveSeen:
    name: str = "remove-seen"

    def apply(self, slate: Slate, user: UserFacts, items: ItemFacts) -> Slate:
        return slate.keep(~contained(slate.items, user.seen))


@dataclass
class RemoveDisliked:
    """Needed on its own when seen items may come back (re-watching): a dislike never does."""

    name: str = "remove-disliked"

    def apply(self, slate: Slate, user: UserFacts, items: ItemFacts) -> Slate:
        return slate.keep(~contained(slate.items, user.disliked))


@dataclass
class ExcludeGenres:
    """A business filter: no item of these genres."""

    genres: list[str] = field(default_factory=list)
    name: str = "exclude-genres"

    def apply(self, slate: Slate, user: UserFacts, items: ItemFacts) -> Slate:
        unknown = set(self.genres) - set(items.genre_names)
        if unknown:
            raise ValueError(f"exclude-genres: unknown genres {sorted(unknown)}; "
                             f"the catalog has {items.genre_names}")
        columns = [items.genre_names.index(g) for g in self.genres]
        hits = np.asarray(items.genres[slate.items][:, columns].sum(axis=1)).ravel()
        return slate.keep(hits == 0)
