"""Software cache kernels against textbook reference implementations."""

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embsim.errors import InputError
from hwmodels.cache.kernels import set_of
from hwmodels.cache.software import SoftwareCache


def reference_lru(keys, sets, ways):
    """Per-set OrderedDict LRU with the kernel's set mapping."""
    table = [OrderedDict() for _ in range(sets)]
    hits = []
    for key in keys:
        s = table[set_of(int(key), sets)] if sets > 1 else table[0]
        if key in s:
            s.move_to_end(key)
            hits.append(True)
        else:
            s[key] = None
            if len(s) > ways:
                s.popitem(last=False)
            hits.append(False)
    return np.array(hits)


def reference_lfu(keys, capacity):
    """Fully associative LFU (counts since fill), ties to the least recently used."""
    count, last = {}, {}
    hits = []
    for t, key in enumerate(keys):
        if key in count:
            count[key] += 1
            hits.append(True)
        else:
            if len(count) == capacity:
                victim = min(count, key=lambda k: (count[k], last[k]))
                del count[victim], last[victim]
            count[key] = 1
            hits.append(False)
        last[key] = t
    return np.array(hits)


keys_strategy = st.lists(st.integers(0, 40), min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(keys=keys_strategy, capacity=st.integers(1, 45), split=st.integers(0, 300))
def test_fully_associative_lru_matches_reference(keys, capacity, split):
    keys = np.array(keys, dtype=np.int64)
    cache = SoftwareCache(capacity, None, "lru", 41)
    hit_a, _ = cache.lookup(keys[:split])
    hit_b, _ = cache.lookup(keys[split:])
    expected = reference_lru(keys, 1, capacity)
    assert np.array_equal(np.concatenate([hit_a, hit_b]), expected)
    assert cache.hits + cache.misses == keys.size


@settings(max_examples=60, deadline=None)
@given(keys=keys_strategy, sets=st.integers(1, 6), ways=st.integers(1, 5))
def test_set_associative_lru_matches_reference(keys, sets, ways):
    keys = np.array(keys, dtype=np.int64)
    cache = SoftwareCache(sets * ways, ways, "lru", 41)
    hit, _ = cache.lookup(keys)
    assert cache.num_sets == sets
    assert np.array_equal(hit, reference_lru(keys, sets, ways))


@settings(max_examples=60, deadline=None)
@given(keys=keys_strategy, capacity=st.integers(1, 45))
def test_lfu_matches_reference_in_both_organisations(keys, capacity):
    keys = np.array(keys, dtype=np.int64)
    expected = reference_lfu(keys.tolist(), capacity)
    full = SoftwareCache(capacity, None, "lfu", 41)
    one_set = SoftwareCache(capacity, capacity + 1, "lfu", 41)
    assert np.array_equal(full.lookup(keys)[0], expected)
    assert np.array_equal(one_set.lookup(keys)[0], expected)


@settings(max_examples=40, deadline=None)
@given(keys=keys_strategy, ways=st.sampled_from([None, 2, 4]), policy=st.sampled_from(
    ["lru", "lfu"]))
def test_slots_hold_exactly_the_keys_that_hit(keys, ways, policy):
    """A hit returns the slot the key was filled into; a slot holds one key at a time."""
    cache = SoftwareCache(8, ways, policy, 41)
    holder: dict[int, int] = {}
    for key in keys:
        hit, slot = cache.lookup(np.array([key]))
        if hit[0]:
            assert holder[int(slot[0])] == key
        holder[int(slot[0])] = key
    assert len(set(holder)) <= cache.slots


def test_large_cache_hit_rate_is_one_minus_unique_over_total():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 5000, 20000)
    for ways in (None, 32):
        cache = SoftwareCache(20000, ways, "lru", 5000)
        cache.lookup(keys)
        assert cache.hit_rate == pytest.approx(1 - np.unique(keys).size / keys.size)
        assert cache.evictions == 0


def test_unknown_policy_and_empty_cache():
    with pytest.raises(InputError, match="expected one of: fifo, lfu, lru"):
        SoftwareCache(8, 4, "mru", 10)
    with pytest.raises(InputError, match="expected one of: fifo, lfu, lru"):
        SoftwareCache(8, 4, "plru", 10)         # a hardware-only policy
    with pytest.raises(InputError, match="at least one row"):
        SoftwareCache(0, 4, "lru", 10)


def test_prefetch_is_a_hint_that_changes_nothing():
    """A kernel that prefetches every element it reads (and one past the end: a hint never
    faults) computes what numpy does; prefetching a non-array is refused at compile time."""
    from numba import njit
    from numba.core.errors import TypingError

    from hwmodels.prefetch import prefetch

    @njit
    def prefetched_sum(values):
        total = 0.0
        for i in range(values.size):
            prefetch(values, i + 1)
            total += values[i]
        return total

    values = np.random.default_rng(0).random(1000)
    assert prefetched_sum(values) == pytest.approx(values.sum())

    @njit
    def prefetch_a_number(x):
        prefetch(x, 0)

    with pytest.raises(TypingError):
        prefetch_a_number(1.0)
