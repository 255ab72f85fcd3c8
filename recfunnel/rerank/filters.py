"""Rules that remove candidates outright: a user's own (what they saw, what they disliked) and
the catalog's (a business rule over genres)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recfunnel.rerank.slate import ItemFacts, UserFacts


@dataclass
class RemoveSeen:
    name: str = "remove-seen"

    def removed(self, user: UserFacts) -> np.ndarray:
        """The items this rule takes out of the user's list."""
        return user.seen


@dataclass
class RemoveDisliked:
    """Needed on its own when seen items may come back (re-watching): a dislike never does."""

    name: str = "remove-disliked"

    def removed(self, user: UserFacts) -> np.ndarray:
        return user.disliked


@dataclass
class ExcludeGenres:
    """A business filter: no item of these genres."""

    genres: list[str] = field(default_factory=list)
    name: str = "exclude-genres"

    def allowed(self, items: ItemFacts) -> np.ndarray:
        """Per item of the catalog, whether it may be recommended (has none of the genres)."""
        unknown = set(self.genres) - set(items.genre_names)
        if unknown:
            raise ValueError(f"exclude-genres: unknown genres {sorted(unknown)}; "
                             f"the catalog has {items.genre_names}")
        columns = [items.genre_names.index(g) for g in self.genres]
        return np.asarray(items.genres[:, columns].sum(axis=1)).ravel() == 0
