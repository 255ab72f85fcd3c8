"""Compiled loops cache their machine code where Numba can, and still compile where it cannot."""

import numba.core.caching

from recfunnel.compiled import compiled


def add_one(x):
    return x + 1


def test_cached_on_disk_where_a_directory_is_writable():
    function = compiled()(add_one)
    assert function(1) == 2
    assert isinstance(function._cache, numba.core.caching.FunctionCache)


def test_compiled_without_a_cache_where_none_is_writable(monkeypatch):
    # what Numba finds in a read-only install without a writable home: no place for a cache
    monkeypatch.setattr(numba.core.caching.CacheImpl, "_locator_classes", [])
    function = compiled()(add_one)
    assert function(41) == 42
    assert not isinstance(function._cache, numba.core.caching.FunctionCache)
