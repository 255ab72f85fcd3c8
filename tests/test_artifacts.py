"""The artifact directory shared by processes: a change made from an older copy is refused
instead of silently overwriting another's, and a change waits for a reader to finish."""

import shutil
import threading
import time

import pandas as pd
import pytest

from recfunnel.artifacts import LOCK_FILE, add_items, load_system, reading, version_stamp
from recfunnel.errors import StaleError


@pytest.fixture()
def served(tmp_path, small_funnel_dir):
    return shutil.copytree(small_funnel_dir, tmp_path / "served")


def new_item(item_id: int) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [item_id], "title": [f"New {item_id} (2001)"],
                         "genres": [["Comedy"]], "year": [2001.0]})


def test_a_change_from_an_older_copy_is_refused_not_lost(served):
    first, second = load_system(served), load_system(served)
    stamp = version_stamp(served)
    assert first.stamp == second.stamp == stamp

    add_items(first, new_item(900001))
    assert version_stamp(served) == first.stamp != stamp
    with pytest.raises(StaleError, match="changed on disk"):
        add_items(second, new_item(900002))  # it would have dropped 900001 from the catalog

    add_items(load_system(served), new_item(900002))
    ids = set(load_system(served).dataset.items["item_id"])
    assert {900001, 900002} <= ids


def test_a_change_waits_for_a_reader(served):
    system = load_system(served)
    done = threading.Event()
    writer = threading.Thread(target=lambda: (add_items(system, new_item(900001)), done.set()))
    with reading(served):
        writer.start()
        time.sleep(0.5)
        assert not done.is_set()  # the files the reader is reading stay in place
    writer.join(timeout=30)
    assert done.is_set()


def test_reading_leaves_a_directory_without_artifacts_untouched(tmp_path):
    with reading(tmp_path):
        pass
    assert not (tmp_path / LOCK_FILE).exists()


def test_cooccurrence_weights_are_solved_by_fit_not_by_every_load(served, monkeypatch):
    """fit saves the ranking table's EASE weights; a process loading the artifacts maps them
    (no solve), and items added later get zero rows and columns."""
    import numpy as np

    from recfunnel.ranking.features import cooccurrence_weights
    from recfunnel.retrieval.ease import EASE

    system = load_system(served)
    expected = cooccurrence_weights(system.dataset, system.history)
    monkeypatch.setattr(EASE, "fit", lambda *a, **k: pytest.fail("EASE solved on load"))
    table = load_system(served).funnel().table
    assert isinstance(table.cooccurrence, np.memmap)
    np.testing.assert_allclose(table.cooccurrence, expected, atol=1e-6)
    grown = load_system(served)
    add_items(grown, new_item(900003))
    weights = load_system(served).funnel().table.cooccurrence
    assert weights.shape == (len(expected) + 1,) * 2 and not weights[-1].any()
    np.testing.assert_allclose(weights[:-1, :-1], expected, atol=1e-6)


def test_the_candidate_sources_map_the_16_bit_weights_fit_saved(served):
    """Server processes share one copy of the co-occurrence source's weights (the file's pages)
    instead of each quantising its own; the answers are those of weights quantised on load,
    before and after items are added."""
    import numpy as np

    from recfunnel.data.arrays import Int16Rows

    system = load_system(served)
    rows = system.funnel().generator._cooccurrence_rows
    assert isinstance(rows.values, np.memmap) and not rows.values.flags.writeable
    own = Int16Rows.of(system.funnel().table.cooccurrence)
    assert rows.scale == own.scale and np.array_equal(rows.values, own.values)
    add_items(system, new_item(900004))
    grown = load_system(served).funnel().generator._cooccurrence_rows
    assert grown.values.shape == (len(rows.values) + 1,) * 2 and not grown.values[-1].any()
    assert np.array_equal(grown.values[:-1, :-1], rows.values)
