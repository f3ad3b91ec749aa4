"""The bounded LRU cache behind the variant, block, skeleton and summary caches."""

from __future__ import annotations

from digest.lru import LRUCache


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache["a"] = 1
    cache["b"] = 2
    assert cache.get("a") == 1  # read: now the most recently used
    cache["c"] = 3
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_writing_an_entry_again_refreshes_it_and_a_miss_is_none() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache["a"] = 1
    cache["b"] = 2
    cache["a"] = 10
    cache["c"] = 3
    assert cache.get("a") == 10 and "b" not in cache
    assert cache.get("missing") is None
    assert len(cache) == 2


def test_membership_does_not_refresh() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache["a"] = 1
    cache["b"] = 2
    assert "a" in cache
    cache["c"] = 3
    assert "a" not in cache and "b" in cache
