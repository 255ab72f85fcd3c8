"""The re-ranker: a configurable chain of rules from ranked candidates to the final list.

Filters remove candidates, the freshness boost moves scores, and the final ``k`` are then picked
one at a time: the best remaining item by score minus the diversity penalty, among those the
constraints (tail quota first, then genre cap) allow. When no remaining item satisfies every
constraint, the last constraints are relaxed first, so the list is always filled.

The rules hand over data (the items a user's filters remove, per catalog item what the business
filters allow, its freshness, its groups), taken from the catalog once; a request's filtering and
boosting is then one compiled call and its selection another: the stage took 0.10-0.12 ms of a
live request on ML-100K, against 0.15-0.19 ms as some thirty NumPy calls (BENCHMARKS.md).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import numpy as np

from recfunnel.compiled import compiled
from recfunnel.rerank.diversity import MMR, GenreCap
from recfunnel.rerank.fairness import TailQuota
from recfunnel.rerank.filters import ExcludeGenres, RemoveDisliked, RemoveSeen
from recfunnel.rerank.freshness import FreshnessBoost
from recfunnel.rerank.selection import Groups
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
            [RemoveDisliked()] if c.remove_disliked else [])
        self.exclusion = ExcludeGenres(c.exclude_genres) if c.exclude_genres else None
        self.boost = FreshnessBoost(c.freshness_weight, c.freshness_half_life)
        self.diversity = MMR(c.mmr_weight)
        self.constraints = ([TailQuota(c.tail_share)] if c.tail_share > 0 else []) + (
            [GenreCap(c.max_per_genre)] if c.max_per_genre else [])
        # what the rules read of the catalog, once
        self._allowed = (self.exclusion.allowed(items) if self.exclusion is not None
                         else np.ones(0, dtype=bool))
        self._freshness = self.boost.freshness(items)
        self._groups = Groups.of([c.members(items) for c in self.constraints])
        self._limits = functools.cache(self._limits_of)  # per request otherwise

    def rerank(self, slate: Slate, user: UserFacts, k: int) -> Slate:
        """The final ``k`` of ``slate`` (best first) for ``user``, each rule's doing noted."""
        removed = np.concatenate([f.removed(user) for f in self.filters] or [_NONE])
        order, scores, boosts = _filter_and_boost(slate.items, slate.scores, removed,
                                                  self._allowed, self._freshness,
                                                  self.boost.weight)
        notes = slate.notes
        boosted = np.flatnonzero(boosts)
        if len(boosted):
            notes += ((self.boost.name, slate.origin[order[boosted]], boosts[boosted]),)
        return self.select(Slate(slate.items[order], scores, slate.origin[order], slate.details,
                                 notes), k)

    def select(self, slate: Slate, k: int) -> Slate:
        """Greedy pick of the final ``k`` (``recfunnel.rerank.selection``), recording what each
        rule did to each pick."""
        k = min(k, len(slate))
        if not k:
            return slate.keep(np.zeros(len(slate), dtype=bool))
        lowest = slate.scores[-1]  # a slate is best first
        spread = float(slate.scores[0] - lowest) or 1.0
        value = (slate.scores - lowest) / spread  # relevance
        picks = self._groups.picks(value, self.diversity.vectors(self.items),
                                   self.diversity.weight, *self._limits(k), k, rows=slate.items)
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

    def _limits_of(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Every group's at_least and at_most in a list of ``k``, side by side."""
        counts = np.bincount(self._groups.owner, minlength=len(self.constraints))
        limits = [c.limits(k, int(n)) for c, n in zip(self.constraints, counts)]
        if not limits:
            return _NONE, _NONE
        at_least, at_most = (np.concatenate(parts) for parts in zip(*limits))
        return at_least, at_most


@compiled()
def _filter_and_boost(items: np.ndarray, scores: np.ndarray, removed: np.ndarray,
                      allowed: np.ndarray, freshness: np.ndarray,
                      weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The slate's positions left by the filters (not in ``removed``; ``allowed`` per catalog
    item, when given), re-sorted by their scores plus the freshness boost (``weight`` times
    the remaining scores' range times the item's ``freshness``, when given), best first and
    stable; their new scores, and the boost each got."""
    removed = np.sort(removed)
    keep = np.empty(len(items), dtype=np.int64)
    n = 0
    for position in range(len(items)):
        item = items[position]
        at = np.searchsorted(removed, item)
        if at < len(removed) and removed[at] == item:
            continue
        if len(allowed) and not allowed[item]:
            continue
        keep[n] = position
        n += 1
    keep = keep[:n]
    kept = scores[keep]
    boosts = np.zeros(n)
    if n and len(freshness):
        spread = kept.max() - kept.min()
        scale = weight * (spread if spread != 0 else 1.0)
        for j in range(n):
            boosts[j] = scale * freshness[items[keep[j]]]
    boosted = kept + boosts
    order = np.argsort(-boosted, kind="mergesort")
    return keep[order], boosted[order], boosts[order]


_NONE = np.zeros(0, dtype=np.int64)
