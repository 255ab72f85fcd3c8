import numpy as np
import pytest

from recfunnel.data.loading import load
from recfunnel.data.synth import SynthConfig, generate, write
from recfunnel.errors import RecfunnelError


@pytest.mark.parametrize("format", ["ml-1m", "ml-100k", "interactions"])
def test_every_format_round_trips_through_the_loaders(tmp_path, small_synth, format):
    write(small_synth, tmp_path, format)
    d = load(tmp_path)
    assert d.name == {"ml-1m": "ml-1m", "ml-100k": "ml-100k", "interactions": "interactions"}[format]
    assert (d.n_users, d.n_items, len(d.interactions)) == (300, 200, 6000)
    assert d.genre_matrix().sum(axis=1).min() >= 1
    assert d.interactions["rating"].between(1, 5).all()


def test_exact_count_and_no_repeated_pairs():
    data = generate(SynthConfig(users=500, items=100, interactions=10_000, seed=3))
    assert len(data.interactions) == 10_000
    assert not data.interactions.duplicated(["user_id", "item_id"]).any()


def test_same_seed_same_data_other_seed_other_data():
    a, b = (generate(SynthConfig(users=50, items=40, interactions=400, seed=s)) for s in (1, 1))
    c = generate(SynthConfig(users=50, items=40, interactions=400, seed=2))
    assert a.interactions.equals(b.interactions) and not a.interactions.equals(c.interactions)


def test_structure_is_learnable(small_synth):
    """Users mostly stay in their taste clusters, and items' popularity is skewed."""
    inter = small_synth.interactions
    item_cluster = small_synth.item_cluster[inter["item_id"].to_numpy() - 1]
    user_cluster = small_synth.user_cluster[inter["user_id"].to_numpy() - 1]
    assert (item_cluster == user_cluster).mean() > 0.4  # chance would be 1/8
    counts = np.sort(inter["item_id"].value_counts().to_numpy())[::-1]
    assert counts[: len(counts) // 5].sum() > 0.35 * counts.sum()


def test_impossible_density_is_refused():
    with pytest.raises(RecfunnelError, match="do not fit"):
        generate(SynthConfig(users=10, items=8, interactions=1000))
