import numpy as np

from recfunnel.eval.segments import activity_segments
from recfunnel.retrieval.topk import PAD


def test_users_are_grouped_by_history_length_and_scored_per_stage():
    targets = np.array([7, 7, 7, 7])
    deep = np.full((4, 500), PAD)
    deep[0, 0] = 7  # light user: hit at rank 1
    deep[1, 150] = 7  # light user: within 500, not 100
    deep[3, 50] = 7  # heavy user: within 100; user 2 (heavy) is missed
    final = np.array([[7, 1], [1, 2], [1, 7], [1, 2]])
    rows = activity_segments({"retrieval": deep, "final": final}, targets,
                             lengths=np.array([5, 29, 300, 251]), edges=(30, 60, 120, 250))
    assert [(r["history"], r["users"]) for r in rows] == [("0-29", 2), ("250+", 2)]
    light, heavy = rows
    assert (light["retrieval HR@100"], light["retrieval HR@500"]) == (0.5, 1.0)
    assert (heavy["retrieval HR@100"], heavy["retrieval HR@500"]) == (0.5, 0.5)
    assert light["retrieval NDCG@10"] == 0.5 and heavy["retrieval NDCG@10"] == 0.0
    assert "final HR@100" not in light  # a 2-item list is scored at 10 only
    assert light["final NDCG@10"] == 0.5
    assert heavy["final NDCG@10"] == 0.5 * (1 / np.log2(3))
