"""Set-associative hardware caches against plain-Python references of each policy."""

from __future__ import annotations

import numpy as np
import pytest
from hw_cache_reference import READ, WRITE, WRITEBACK, ReferenceCache
from hypothesis import given, settings
from hypothesis import strategies as st

from embsim.errors import InputError
from hwmodels.cache.hardware import HardwareCache, Requests
from hwmodels.cache.policies import POLICIES as REGISTERED

LINE = 64
POLICIES = ["lru", "fifo", "lfu", "random", "plru", "srrip", "brrip"]


def run_both(policy, sets, ways, lines, writes, offsets, split, *, write_back=True,
             write_allocate=True, seed=0):
    """Serve the trace with the kernel (in two calls) and the reference; return both."""
    cache = HardwareCache(sets * ways * LINE, ways, LINE, policy, write_back=write_back,
                          write_allocate=write_allocate, seed=seed)
    addresses = np.array(lines, dtype=np.int64) * LINE + np.array(offsets, dtype=np.int64)
    is_write = np.array(writes, dtype=bool)
    hits, sent = [], []
    for part in (slice(0, split), slice(split, None)):
        hits.append(cache.access(addresses[part], is_write[part]))
        sent += list(zip((cache.next_level.addresses // LINE).tolist(),
                         cache.next_level.kinds.tolist(), strict=True))
    reference = ReferenceCache(sets, ways, policy, write_back=write_back,
                               write_allocate=write_allocate, seed=seed)
    expected = [reference.access(line, WRITE if w else READ)
                for line, w in zip(lines, writes, strict=True)]
    return cache, np.concatenate(hits), sent, np.array(expected, dtype=bool), reference.out


trace = st.integers(1, 300).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 40), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n),
    st.lists(st.integers(0, LINE - 1), min_size=n, max_size=n),
    st.integers(0, n)))


@settings(max_examples=50, deadline=None)
@given(policy=st.sampled_from(POLICIES), sets=st.integers(1, 5),
       ways=st.sampled_from([1, 2, 4, 8]), trace=trace, seed=st.integers(0, 2**32))
def test_every_policy_matches_its_reference(policy, sets, ways, trace, seed):
    lines, writes, offsets, split = trace
    cache, hits, sent, expected, expected_sent = run_both(policy, sets, ways, lines, writes,
                                                          offsets, split, seed=seed)
    assert np.array_equal(hits, expected)
    assert sent == expected_sent
    stats = cache.stats()
    assert stats["hits"] == expected.sum() and stats["accesses"] == len(lines)
    assert stats["writebacks"] == sum(kind == WRITEBACK for _, kind in sent)
    assert stats["fills"] == len(lines) - stats["hits"]
    assert stats["evictions"] == stats["fills"] - cache.resident_lines().size
    assert cache.resident_lines().size <= sets * ways


@settings(max_examples=50, deadline=None)
@given(policy=st.sampled_from(["lru", "fifo"]), sets=st.integers(1, 6),
       ways=st.integers(1, 6), trace=trace, write_back=st.booleans(),
       write_allocate=st.booleans())
def test_lru_and_fifo_match_ordered_dicts_under_every_write_policy(policy, sets, ways, trace,
                                                                   write_back, write_allocate):
    lines, writes, offsets, split = trace
    _, hits, sent, expected, expected_sent = run_both(
        policy, sets, ways, lines, writes, offsets, split, write_back=write_back,
        write_allocate=write_allocate)
    assert np.array_equal(hits, expected)
    assert sent == expected_sent


@settings(max_examples=30, deadline=None)
@given(policy=st.sampled_from(POLICIES), ways=st.sampled_from([2, 4, 8]),
       stride_sets=st.integers(1, 4), extra=st.integers(1, 3), rounds=st.integers(2, 8),
       seed=st.integers(0, 1000))
def test_adversarial_sweeps_of_one_set(policy, ways, stride_sets, extra, rounds, seed):
    """Cyclic sweeps of ways + extra lines that all map to set 0 (the worst case of LRU)."""
    sets = 4 * stride_sets
    cycle = [k * sets for k in range(ways + extra)]
    lines = cycle * rounds + cycle[::-1] * 2
    n = len(lines)
    _, hits, sent, expected, expected_sent = run_both(policy, sets, ways, lines, [False] * n,
                                                      [0] * n, n // 3, seed=seed)
    assert np.array_equal(hits, expected)
    assert sent == expected_sent
    if policy in ("lru", "fifo"):
        assert not hits[: len(cycle) * rounds].any()   # every access of the sweep misses


def test_lru_and_fifo_differ_as_the_textbook_says():
    # 2 ways, one set: A B A C A. LRU keeps A (2 hits); FIFO evicts A for C (1 hit).
    trace = np.array([0, 1, 0, 2, 0]) * LINE
    lru = HardwareCache(2 * LINE, 2, LINE, "lru").access(trace)
    fifo = HardwareCache(2 * LINE, 2, LINE, "fifo").access(trace)
    assert lru.tolist() == [False, False, True, False, True]
    assert fifo.tolist() == [False, False, True, False, False]


def test_write_back_sends_the_dirty_victim_before_the_fill():
    cache = HardwareCache(LINE, 1, LINE, "lru")
    cache.access(np.array([0, 64, 128]), np.array([True, False, False]))
    # store 0: fetch 0; load 1: write back dirty 0, then fetch 1; load 2: clean 1 is dropped
    assert cache.next_level.addresses.tolist() == [0, 0, 64, 128]
    assert cache.next_level.kinds.tolist() == [READ, WRITEBACK, READ, READ]
    assert cache.next_level.is_write.tolist() == [False, True, False, False]
    stats = cache.stats()
    assert (stats["write_misses"], stats["read_misses"], stats["writebacks"]) == (1, 2, 1)


def test_srrip_resists_a_scan_that_flushes_lru():
    """A hot pair re-used between one-off scan lines: SRRIP inserts the scan lines at
    RRPV 2 and keeps the promoted (RRPV 0) hot lines; LRU lets the scan flush them."""
    hot = [0, 1]
    trace = []
    for k in range(20):
        trace += hot + hot + [100 + 3 * k, 101 + 3 * k, 102 + 3 * k]
    addresses = np.array(trace) * LINE
    srrip = HardwareCache(4 * LINE, 4, LINE, "srrip").access(addresses)
    lru = HardwareCache(4 * LINE, 4, LINE, "lru").access(addresses)
    hot_positions = np.isin(np.array(trace), hot)
    assert srrip[hot_positions][4:].all()
    assert srrip.sum() > lru.sum()


def test_random_and_brrip_are_seeded():
    rng = np.random.default_rng(3)
    addresses = rng.integers(0, 64, 2000) * LINE
    for policy in ("random", "brrip"):
        first = HardwareCache(16 * LINE, 16, LINE, policy, seed=5).access(addresses)
        again = HardwareCache(16 * LINE, 16, LINE, policy, seed=5).access(addresses)
        other = HardwareCache(16 * LINE, 16, LINE, policy, seed=6).access(addresses)
        assert np.array_equal(first, again)
        assert not np.array_equal(first, other)


def test_sets_that_are_not_a_power_of_two_index_by_modulo():
    cache = HardwareCache(3 * 2 * LINE, 2, LINE, "lru")
    assert cache.num_sets == 3
    cache.access(np.array([0, 3, 6]) * LINE)      # lines 0, 3, 6 all map to set 0
    assert cache.resident_lines().tolist() == [3, 6]


def test_chained_levels_accept_write_backs_without_fetching():
    l1 = HardwareCache(LINE, 1, LINE, "lru")
    l2 = HardwareCache(4 * LINE, 4, LINE, "lru")
    l1.access(np.array([0, 64]), np.array([True, False]))
    l2.access_requests(l1.next_level)
    # L2 sees READ 0 (miss), WRITEBACK 0 (hit, now dirty), READ 1 (miss)
    assert l2.stats()["hits"] == 1 and l2.dirty_lines().tolist() == [0]
    l2.access_requests(Requests(np.array([640]), np.array([WRITEBACK], dtype=np.int8)))
    assert l2.next_level.addresses.size == 0          # a missing write-back is not fetched
    assert l2.dirty_lines().tolist() == [0, 10]


@pytest.mark.parametrize(("args", "field", "message"), [
    ((1000, 4, 64, "lru"), "size", "a cache size that is not a multiple of line x ways"),
    ((3 * 64 * 4, 3, 64, "plru"), "ways", "power-of-two number of ways"),
    ((4096, 4, 48, "lru"), "line", "line size must be a power of two"),
    ((4096, 0, 64, "lru"), "ways", "positive whole number"),
    ((4096.5, 4, 64, "lru"), "size", "positive whole number"),
    ((4096, 4, 64, "mru"), "policy", "expected one of: brrip, fifo, lfu, lru, plru, random, "
                                     "srrip"),
])
def test_bad_geometry_and_policy_name_the_field(args, field, message):
    with pytest.raises(InputError, match=message) as err:
        HardwareCache(*args, source="system.yaml", field="levels.1")
    assert err.value.field == f"levels.1.{field}"
    assert err.value.source == "system.yaml"


def test_every_registered_policy_is_tested():
    assert sorted(REGISTERED) == sorted(POLICIES)
