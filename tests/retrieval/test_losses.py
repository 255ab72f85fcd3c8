"""The loss maths on tiny hand-made cases."""

import math

import torch
import torch.nn.functional as F

from recfunnel.retrieval.losses import (
    StreamingFrequency, binary_loss, mine_hard_negatives, sampled_softmax_loss,
)


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


def test_softmax_is_cross_entropy_over_in_batch_candidates():
    users, items = unit([1, 0], [0, 1]), unit([1, 0], [1, 1])
    loss = sampled_softmax_loss(users, items, torch.tensor([7, 8]), torch.tensor([7, 8]),
                                temperature=1.0)
    logits = users @ items.T
    expected = F.cross_entropy(logits, torch.tensor([0, 1]))
    assert torch.isclose(loss, expected)


def test_logq_shifts_each_logit_by_minus_log_q():
    users, items = unit([1, 0], [0, 1]), unit([1, 0], [0.5, 1])
    log_q = torch.log(torch.tensor([0.5, 0.01]))
    loss = sampled_softmax_loss(users, items, torch.tensor([1, 2]), torch.tensor([1, 2]),
                                temperature=0.5, log_q=log_q)
    logits = users @ items.T / 0.5 - log_q
    assert torch.isclose(loss, F.cross_entropy(logits, torch.tensor([0, 1])))
    # a popular (often sampled) negative is penalised less than a rare one
    no_q = sampled_softmax_loss(users, items, torch.tensor([1, 2]), torch.tensor([1, 2]),
                                temperature=0.5)
    assert loss.item() != no_q.item()


def test_accidental_hits_are_masked():
    """Rows 0 and 1 share the positive item 5: neither may treat the other's copy as a negative."""
    users = unit([1, 0], [0, 1], [1, 1])
    items = unit([1, 0], [0, 1], [1, 1])
    ids = torch.tensor([5, 5, 9])
    loss = sampled_softmax_loss(users, items, ids, ids, temperature=1.0)
    logits = users @ items.T
    logits[0, 1] = logits[1, 0] = -1e9
    assert torch.isclose(loss, F.cross_entropy(logits, torch.tensor([0, 1, 2])))


def test_row_hard_negatives_join_the_softmax_and_the_positive_is_guarded():
    users, items = unit([1, 0]), unit([1, 0])
    hard = unit([0.9, 0.1], [1, 0]).unsqueeze(0)  # second hard negative is the positive itself
    loss = sampled_softmax_loss(users, items, torch.tensor([3]), torch.tensor([3]), temperature=1.0,
                                row_negatives=hard, row_negative_ids=torch.tensor([[4, 3]]))
    logits = torch.cat([users @ items.T, (users @ hard[0].T)[:, :1]], dim=1)
    assert torch.isclose(loss, F.cross_entropy(logits, torch.tensor([0])))


def test_hard_negatives_are_the_top_scored_non_positives():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5, 0.1]])
    positives = torch.tensor([[False, True, False, False, False, False]])
    assert mine_hard_negatives(scores, positives, 2).tolist() == [[0, 2]]
    assert mine_hard_negatives(scores, positives, 2, skip_top=1).tolist() == [[2, 3]]


def test_binary_loss_is_bce_on_positive_and_negatives():
    users, pos = unit([1, 0]), unit([1, 0])
    neg = unit([0, 1], [-1, 0]).unsqueeze(0)
    loss = binary_loss(users, pos, neg, temperature=1.0)
    expected = -math.log(torch.sigmoid(torch.tensor(1.0))) \
        - math.log(1 - torch.sigmoid(torch.tensor(0.0))) - math.log(1 - torch.sigmoid(torch.tensor(-1.0)))
    assert math.isclose(loss.item(), expected, rel_tol=1e-5)


def test_streaming_frequency_learns_the_rate():
    est = StreamingFrequency(buckets=1000, alpha=0.1)
    for step in range(1, 401):
        est.update(torch.tensor([1] + ([2] if step % 4 == 0 else [])), step)
    p = est.probability(torch.tensor([1, 2]))
    assert abs(p[0].item() - 1.0) < 0.02 and abs(p[1].item() - 0.25) < 0.02
