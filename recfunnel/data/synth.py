"""Synthetic interaction data with learnable structure, written in the real file formats.

For tests and scale benchmarks only, never as a stand-in for real results. The generative story:
items belong to latent taste clusters (which decide their genres, era and title words) and have a
power-law popularity; each user has a primary and a secondary cluster, and drifts from the first
towards the second over their timeline, so recent history predicts the next item better than old
history. Demographics depend on the primary cluster, so cold users are not pure noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from recfunnel.data.movielens import ML100K_GENRES
from recfunnel.errors import RecfunnelError

GENRES = ML100K_GENRES[1:]
AGES = np.array([1, 18, 25, 35, 45, 50, 56])
WORDS = np.array("""love night dark city star war man woman last house day blood return king lost
story dead life secret game river heart time ghost world summer moon road fire girl boy island
shadow dream hunter storm empire silent wild golden killer family""".split())
SYNTH_FORMATS = ("ml-1m", "ml-100k", "interactions")


@dataclass
class SynthConfig:
    users: int = 1000
    items: int = 500
    interactions: int = 20_000
    clusters: int = 20
    popularity_exponent: float = 1.0  # Zipf exponent of item popularity inside a cluster
    noise: float = 0.1  # share of interactions drawn from global popularity, ignoring taste
    drift: float = 0.6  # how far a user moves from primary to secondary cluster by their last item
    seed: int = 0


@dataclass
class SynthData:
    """Raw tables with the same columns as a user's own log: ``user_id``, ``item_id``, ...;
    ``item_cluster``/``user_cluster`` are the hidden truth, kept for tests."""

    interactions: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    item_cluster: np.ndarray
    user_cluster: np.ndarray


def generate(config: SynthConfig) -> SynthData:
    c = config
    if c.users < 1 or c.items < 2 or c.interactions < c.users:
        raise RecfunnelError("synthetic data needs users >= 1, items >= 2, interactions >= users")
    if c.interactions > c.users * max(1, c.items // 4):
        raise RecfunnelError(f"{c.interactions:,} interactions do not fit {c.users:,} users x "
                             f"{c.items:,} items (each user sees at most a quarter of the catalog)")
    rng = np.random.default_rng(c.seed)
    n_clusters = max(1, min(c.clusters, c.items // 2))
    item_cluster = rng.permutation(np.arange(c.items) % n_clusters)
    members = [np.flatnonzero(item_cluster == k) for k in range(n_clusters)]
    # Zipf weights inside each cluster, in a random order so popularity is not tied to the id.
    weights = np.empty(c.items)
    for idx in members:
        weights[rng.permutation(idx)] = 1.0 / np.arange(1, len(idx) + 1) ** c.popularity_exponent
    cluster_cdf = _cluster_cdfs(members, weights)
    global_cdf = np.cumsum(weights) / weights.sum()

    primary = rng.integers(0, n_clusters, c.users)
    secondary = (primary + rng.integers(1, max(2, n_clusters), c.users)) % n_clusters
    counts = _activity(rng, c.users, c.items, c.interactions)
    users = np.repeat(np.arange(c.users), counts)
    position = _positions(counts)
    items = np.empty(len(users), dtype=np.int64)
    pending = np.arange(len(users))
    for attempt in tqdm(range(50), desc="sampling interactions", disable=None, leave=False):
        u = users[pending]
        to_secondary = rng.random(len(pending)) < c.drift * position[pending]
        cluster = np.where(to_secondary, secondary[u], primary[u])
        items[pending] = _sample(rng, cluster, cluster_cdf, members)
        noisy = rng.random(len(pending)) < c.noise
        items[pending[noisy]] = np.searchsorted(global_cdf, rng.random(noisy.sum()))
        if attempt >= 10:  # a user who exhausted their clusters explores the whole catalog
            items[pending] = rng.integers(0, c.items, len(pending))
        duplicate = pd.DataFrame({"u": users, "i": items}).duplicated().to_numpy()
        pending = np.flatnonzero(duplicate)
        if len(pending) == 0:
            break
    keep = np.ones(len(users), dtype=bool)
    keep[pending] = False  # pairs still repeated after 50 redraws (only users near saturation)
    users, items = users[keep], items[keep]

    affinity = (item_cluster[items] == primary[users]) | (item_cluster[items] == secondary[users])
    rating = np.clip(np.round(2.6 + 1.4 * affinity + rng.normal(0, 0.9, len(users))), 1, 5)
    start = rng.integers(956_703_932, 1_040_000_000, c.users)
    gaps = rng.exponential(3600.0, len(users)).astype(np.int64) + 1
    timestamp = start[users] + _cumsum_within(gaps, users)
    interactions = pd.DataFrame({"user_id": users + 1, "item_id": items + 1,
                                 "rating": rating.astype(np.int64), "timestamp": timestamp})
    return SynthData(interactions, _user_table(rng, primary, n_clusters),
                     _item_table(rng, item_cluster, n_clusters), item_cluster, primary)


def _cluster_cdfs(members: list[np.ndarray], weights: np.ndarray) -> list[np.ndarray]:
    return [np.cumsum(weights[idx]) / weights[idx].sum() for idx in members]


def _sample(rng: np.random.Generator, cluster: np.ndarray, cdfs: list[np.ndarray],
            members: list[np.ndarray]) -> np.ndarray:
    out = np.empty(len(cluster), dtype=np.int64)
    for k in np.unique(cluster):
        rows = np.flatnonzero(cluster == k)
        picks = np.searchsorted(cdfs[k], rng.random(len(rows)))
        out[rows] = members[k][np.minimum(picks, len(members[k]) - 1)]
    return out


def _activity(rng: np.random.Generator, n_users: int, n_items: int, total: int) -> np.ndarray:
    """Interactions per user: heavy-tailed, between 1 and a quarter of the catalog, summing to ``total``."""
    cap = max(1, n_items // 4)
    raw = rng.lognormal(0.0, 1.0, n_users)
    counts = np.minimum(cap, 1 + np.floor(raw / raw.sum() * (total - n_users)).astype(np.int64))
    while (remainder := total - counts.sum()) > 0:
        room = np.flatnonzero(counts < cap)
        if len(room) == 0:
            break
        np.add.at(counts, room[rng.integers(0, len(room), min(remainder, len(room)))], 1)
        np.minimum(counts, cap, out=counts)
    return counts


def _positions(counts: np.ndarray) -> np.ndarray:
    """For each interaction, its position in its user's timeline scaled to [0, 1]."""
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return within / np.maximum(1, np.repeat(counts, counts) - 1)


def _cumsum_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    total = np.cumsum(values)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    offset = np.repeat(total[starts] - values[starts], np.diff(np.r_[starts, len(values)]))
    return total - offset


def _user_table(rng: np.random.Generator, primary: np.ndarray, n_clusters: int) -> pd.DataFrame:
    n = len(primary)
    age_pref = rng.dirichlet(np.ones(len(AGES)) * 0.5, n_clusters)
    ages = np.array([rng.choice(AGES, p=age_pref[k]) for k in range(n_clusters)])[primary]
    ages = np.where(rng.random(n) < 0.3, rng.choice(AGES, n), ages)
    female_share = rng.uniform(0.1, 0.9, n_clusters)[primary]
    occupation = np.where(rng.random(n) < 0.5, primary % 21, rng.integers(0, 21, n))
    return pd.DataFrame({
        "user_id": np.arange(1, n + 1),
        "gender": np.where(rng.random(n) < female_share, "F", "M"),
        "age": ages,
        "occupation": occupation,
        "zip": [f"{z:05d}" for z in rng.integers(0, 100_000, n)],
    })


def _item_table(rng: np.random.Generator, cluster: np.ndarray, n_clusters: int) -> pd.DataFrame:
    n = len(cluster)
    home = rng.integers(0, len(GENRES), (n_clusters, 2))
    era = rng.integers(1930, 2000, n_clusters)
    word_bias = rng.integers(0, len(WORDS), (n_clusters, 3))
    years = np.clip(era[cluster] + np.round(rng.normal(0, 5, n)), 1919, 2000).astype(int)
    extra = rng.integers(0, len(GENRES), n)
    genres = [
        "|".join(dict.fromkeys([GENRES[home[k, 0]]] + ([GENRES[home[k, 1]]] if r < 0.5 else [])
                               + ([GENRES[e]] if r > 0.8 else [])))
        for k, r, e in zip(cluster, rng.random(n), extra)
    ]
    first = np.where(rng.random(n) < 0.7, word_bias[cluster, rng.integers(0, 3, n)],
                     rng.integers(0, len(WORDS), n))
    second = rng.integers(0, len(WORDS), n)
    titles = [f"The {WORDS[a].title()} {WORDS[b].title()} {i + 1} ({y})"
              for i, (a, b, y) in enumerate(zip(first, second, years))]
    return pd.DataFrame({"item_id": np.arange(1, n + 1), "title": titles, "genres": genres,
                         "year": years})


def write(data: SynthData, out: Path, format: str = "ml-1m") -> list[Path]:
    """Write ``data`` as MovieLens-1M, MovieLens-100K or a CSV log with feature tables."""
    if format not in SYNTH_FORMATS:
        raise RecfunnelError(f"unknown format {format!r}; choose one of {', '.join(SYNTH_FORMATS)}")
    out.mkdir(parents=True, exist_ok=True)
    inter, users, items = data.interactions, data.users, data.items
    if format == "ml-1m":
        files = {
            "ratings.dat": inter[["user_id", "item_id", "rating", "timestamp"]],
            "users.dat": users[["user_id", "gender", "age", "occupation", "zip"]],
            "movies.dat": items[["item_id", "title", "genres"]],
        }
        return [_write_sep(frame, out / name, "::") for name, frame in files.items()]
    if format == "ml-100k":
        flags = pd.DataFrame({g: items["genres"].str.split("|").apply(lambda gs, g=g: int(g in gs))
                              for g in ML100K_GENRES})
        item_rows = pd.concat([
            items[["item_id", "title"]],
            pd.DataFrame({"release": [f"01-Jan-{y}" for y in items["year"]], "video": "",
                          "url": ""}),
            flags,
        ], axis=1)
        files = {
            "u.data": inter[["user_id", "item_id", "rating", "timestamp"]],
            "u.user": users[["user_id", "age", "gender", "occupation", "zip"]],
            "u.item": item_rows,
        }
        return [_write_sep(frame, out / name, "\t" if name == "u.data" else "|")
                for name, frame in files.items()]
    paths = [out / "interactions.csv", out / "users.csv", out / "items.csv"]
    for frame, path in zip((inter, users, items), paths):
        frame.to_csv(path, index=False)
    return paths


def _write_sep(frame: pd.DataFrame, path: Path, sep: str, chunk_rows: int = 1_000_000) -> Path:
    """Header-less, separator-joined lines (pandas writes tab-separated; '::' is swapped in)."""
    with open(path, "w", encoding="latin-1", newline="\n") as f:
        for start in range(0, len(frame), chunk_rows):
            text = frame.iloc[start:start + chunk_rows].to_csv(
                sep="\t", header=False, index=False, quoting=3, lineterminator="\n")
            f.write(text if sep == "\t" else text.replace("\t", sep))
    return path
