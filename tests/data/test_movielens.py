import numpy as np
import pytest

from recfunnel.data.loading import load
from recfunnel.data.movielens import load_ml1m
from recfunnel.errors import DataError


def test_ml100k_real_files(ml100k_dir):
    d = load(ml100k_dir)
    assert d.name == "ml-100k"
    assert (d.n_users, d.n_items, len(d.interactions)) == (943, 1682, 100_000)
    assert d.interactions["rating"].between(1, 5).all()
    toy = d.items.iloc[d.item_index(1)]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    assert toy["year"] == 1995
    assert d.users.iloc[d.user_index(1)][["age", "gender", "occupation", "zip"]].tolist() == \
        [24, "M", "technician", "85711"]
    assert d.genre_matrix().shape == (1682, 19)
    assert d.matrix().nnz == 100_000


def test_ml100k_indices_point_at_the_raw_ids(ml100k_dir):
    d = load(ml100k_dir)
    first = d.interactions.iloc[0]  # u.data line 1: 196 242 3 881250949
    assert d.users["user_id"].iloc[int(first["user"])] == 196
    assert d.items["item_id"].iloc[int(first["item"])] == 242
    assert first["timestamp"] == 881250949 and first["rating"] == 3


def test_ml1m_real_users_and_movies(tmp_path, ml1m_dir, small_synth):
    """The shared ML-1M has no ratings.dat: pair its real users/movies with a small ratings file."""
    for name in ("users.dat", "movies.dat"):
        (tmp_path / name).write_bytes((ml1m_dir / name).read_bytes())
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n"
                                          "6040::3952::4::956703932\n")
    d = load_ml1m(tmp_path)
    assert (d.n_users, d.n_items, len(d.interactions)) == (6040, 3883, 3)
    toy = d.items.iloc[d.item_index(1)]
    assert toy["title"] == "Toy Story (1995)" and toy["year"] == 1995
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    assert d.users.iloc[0][["gender", "age", "occupation", "zip"]].tolist() == ["F", 1, "10", "48067"]
    assert not np.isnan(d.items["year"]).any()


def test_ml1m_without_ratings_says_so(ml1m_dir):
    with pytest.raises(DataError, match="no ratings.dat"):
        load(ml1m_dir)
