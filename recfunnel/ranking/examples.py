"""Training examples for the ranking model: each user's last few interactions, each seen from
the moment before it, so that the retrieval model that produces the candidates never trained on
the positives (otherwise retrieval's scores would look better to the ranker than they are). The
candidates come from the same sources, merged the same way, as a live request's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recfunnel.data.dataset import Dataset
from recfunnel.index.ann import IndexConfig, ItemIndex
from recfunnel.index.candidates import CandidateGenerator
from recfunnel.ranking.ranker import Queries
from recfunnel.retrieval.two_tower_recommender import TwoTower


def hold_out_last(interactions: pd.DataFrame, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``(rest, position)``: position counts from each user's end (0 = last, time order, ties in
    file order) for the last ``n`` interactions of users with more than ``n + 1``, -1 elsewhere;
    ``rest`` is what the retrieval model may train on."""
    order = np.lexsort((np.arange(len(interactions)), interactions["timestamp"].to_numpy()))
    ordered = interactions.iloc[order]
    from_end = np.empty(len(interactions), dtype=np.int64)
    from_end[order] = ordered.groupby("user", sort=False).cumcount(ascending=False).to_numpy()
    size = interactions.groupby("user")["user"].transform("size").to_numpy()
    position = np.where((size > n + 1) & (from_end < n), from_end, -1)
    return interactions[position < 0], position


def ranking_queries(retrieval: TwoTower, dataset: Dataset, interactions: pd.DataFrame,
                    position: np.ndarray, n_candidates: int,
                    cooccurrence: np.ndarray | None = None) -> Queries:
    """Labelled candidates for every held-out ``position``: the history is everything the user
    did before that interaction (popularity included), the label is the interaction itself.
    ``cooccurrence``: the item-item weights of the co-occurrence source (``ItemTable``)."""
    index = ItemIndex.build(retrieval.item_vectors_, IndexConfig(kind="flat"))
    genres = dataset.genre_matrix()
    parts = []
    for k in range(int(position.max(initial=-1)) + 1):
        before = dataset.history(interactions[(position < 0) | (position > k)])
        targets = interactions[position == k].sort_values("user", kind="stable")
        generator = CandidateGenerator.over(index, retrieval.item_vectors_, before, genres,
                                            cooccurrence=cooccurrence)
        parts.append(Queries.generate(generator, retrieval, before, targets["user"].to_numpy(),
                                      n_candidates, targets))
    return Queries.concat(parts)
