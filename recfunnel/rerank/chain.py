"""The re-ranker: a configurable chain of rules from ranked candidates to the final list.

Filters remove candidates, boosts move scores, and the final ``k`` are then picked one at a time:
the best remaining item by score minus the diversity penalty, among those the constraints (tail
quota first, then genre cap) allow. When no remaining item satisfies every constraint, the last
constraints are relaxed first, so the list is always filled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from recfunnel.rerank.diversity import MMR, GenreCap
from recfunnel.rerank.fairness import TailQuota
from recfunnel.rerank.filters import ExcludeGenres, RemoveDisliked, RemoveSeen
from recfunnel.rerank.freshness import FreshnessBoost
from recfunnel.rerank.selection import greedy_picks
from recfunnel.rerank.slate import ItemFacts, Slate, UserFacts


@dataclass
class RerankConfig:
    remove_seen: bool = True
    remove_disliked: bool = True
    exclude_genres: list[str] = field(default_factory=list)
    freshness_weight: float = 0.05
    freshness_half_life: float = 2.0
    mmr_weight: float = 0.3
    max_per_genre: int | None = None
    tail_share: float = 0.2

    def to_dict(self) -> dict:
        return asdict(self)


class Reranker:
    def __init__(self, config: RerankConfig, items: ItemFacts):
        self.config, self.items = config, items
        c = config
        self.filters = ([RemoveSeen()] if c.remove_seen else []) + (
            [RemoveDisliked()] if c.remove_disliked else []) + (
            [ExcludeGenres(c.exclude_genres)] if c.exclude_genres else [])
        self.boosts = [FreshnessBoost(c.freshness_weight, c.freshness_half_life)]
        self.diversity = MMR(c.mmr_weight)
        self.constraints = ([TailQuota(c.tail_share)] if c.tail_share > 0 else []) + (
            [GenreCap(c.max_per_genre)] if c.max_per_genre else [])

    def rerank(self, slate: Slate, user: UserFacts, k: int) -> Slate:
        for rule in self.filters + self.boosts:
            slate = rule.apply(slate, user, self.items)
        return self.select(slate, k)

    def select(self, slate: Slate, k: int) -> Slate:
        """Greedy pick of the final ``k`` (``recfunnel.rerank.selection``), recording what each
        rule did to each pick."""
        k = min(k, len(slate))
        if not k:
            return slate.keep(np.zeros(len(slate), dtype=bool))
        spread = float(np.ptp(slate.scores)) or 1.0
        value = (slate.scores - slate.scores.min()) / spread  # relevance
        picks = greedy_picks(value, self.diversity.vectors(slate, self.items),
                             self.diversity.weight,
                             [c.groups(slate, self.items, k) for c in self.constraints], k)
        notes: dict[str, dict[int, float | str]] = {}  # rule -> position in the slate -> note
        for pick, cost, free, displaced in zip(picks.chosen.tolist(), picks.penalty.tolist(),
                                               picks.free.tolist(), picks.displaced.tolist()):
            if cost:
                notes.setdefault(self.diversity.name, {})[pick] = -cost * spread
            for constraint, moved in zip(self.constraints, displaced):
                if moved:
                    notes.setdefault(constraint.name, {})[pick] = \
                        f"took the slot of item {int(slate.items[free])}"
        for rule, noted in notes.items():
            slate = slate.note(rule, np.array(list(noted)), list(noted.values()))
        selection_rank = np.full(int(slate.origin.max()) + 1, -1)
        selection_rank[slate.origin] = np.arange(len(slate))
        picked = picks.chosen
        return Slate(slate.items[picked], slate.scores[picked], slate.origin[picked],
                     slate.details | {"rank_before_selection": selection_rank}, slate.notes)
