"""FBGEMM UVM cache (kind fbgemm_uvm) against a plain-Python transcription of FBGEMM's ops."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.cache.fbgemm_uvm import WAYS, FbgemmUvmCache, FbgemmUvmOptions, cache_set, warp_sort
from hwmodels.cache.row_cache import build_row_cache

M64 = (1 << 64) - 1


def reference_set(key: int, sets: int) -> int:
    """common.cuh ``cache_slot``: MurmurHash3 fmix64, modulo the sets."""
    h = key & M64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    h ^= h >> 33
    return h % sets


def reference_warp_sort(costs):
    """bitonic_sort.cuh ``BitonicSort<K, V, true>``: lanes exchange in lock step."""
    k, v = list(costs), list(range(WAYS))

    def stage(mask, bit):
        other_k = [k[lane ^ mask] for lane in range(WAYS)]
        other_v = [v[lane ^ mask] for lane in range(WAYS)]
        for lane in range(WAYS):
            small = not lane & bit
            if (k[lane] > other_k[lane]) if small else (k[lane] < other_k[lane]):
                k[lane], v[lane] = other_k[lane], other_v[lane]

    for size in (1, 2, 4, 8, 16):
        stage(2 * size - 1, size)
        stride = size // 2
        while stride:
            stage(stride, stride)
            stride //= 2
    return k, v


class ReferenceFbgemm:
    """lru/lfu_cache_populate then lxu_cache_lookup, one batch at a time, in plain Python."""

    def __init__(self, sets: int, policy: str):
        self.sets, self.policy = sets, policy
        self.rows = [[-1] * WAYS for _ in range(sets)]
        self.lru = [[0] * WAYS for _ in range(sets)]
        self.lfu = Counter()
        self.timestep = 1
        self.stats = Counter()
        self.evictions = 0

    def batch(self, keys):
        self.timestep += 1
        counts = Counter(keys)
        uniq = sorted(counts)
        self.stats["num_calls"] += 1
        self.stats["num_requested_indices"] += len(keys)
        self.stats["num_unique_indices"] += len(uniq)
        if self.policy == "lfu":
            self.lfu.update(counts)
        cached_before, misses = set(), {}
        for row in uniq:
            s = reference_set(row, self.sets)
            if row in self.rows[s]:
                cached_before.add(row)
                if self.policy == "lru":
                    self.lru[s][self.rows[s].index(row)] = self.timestep
            else:
                misses.setdefault(s, []).append(row)
        self.stats["num_unique_misses"] += sum(map(len, misses.values()))
        for s in sorted(misses):
            self.stats["num_conflict_unique_misses"] += len(misses[s]) - self.insert(s, misses[s])
        return self.lookup(keys, cached_before)

    def insert(self, s, rows):
        if self.policy == "lru":
            cost, way = reference_warp_sort(self.lru[s])
        else:
            rows = sorted(rows, key=lambda r: (-self.lfu[r], r))
            cost, way = reference_warp_sort(
                [self.lfu[r] if r != -1 else -1 for r in self.rows[s]])
        inserted = 0
        for lane in range(min(len(rows), WAYS)):
            if self.policy == "lru" and cost[lane] == self.timestep:
                break
            if self.policy == "lfu" and cost[lane] > self.lfu[rows[lane]]:
                break
            self.evictions += self.rows[s][way[lane]] != -1
            self.rows[s][way[lane]] = rows[inserted]
            self.lru[s][way[lane]] = self.timestep
            inserted += 1
        return inserted

    def lookup(self, keys, cached_before):
        hits, slots, seen = [], [], set()
        for key in keys:
            s = reference_set(key, self.sets)
            slot = s * WAYS + self.rows[s].index(key) if key in self.rows[s] else -1
            hits.append(slot >= 0 and (key in cached_before or key in seen))
            slots.append(slot)
            seen.add(key)
            self.stats["num_conflict_misses"] += slot < 0
        return np.array(hits, dtype=bool), np.array(slots)


def make(policy: str, sets: int, rows: int = 1000) -> FbgemmUvmCache:
    return build_row_cache("fbgemm_uvm", {"policy": policy}, slots=sets * WAYS,
                           table_rows=np.array([rows]))


def keys_of_set(target: int, sets: int, count: int) -> list[int]:
    return [k for k in range(100_000) if reference_set(k, sets) == target][:count]


def test_hash_matches_fmix64():
    for key in [0, 1, 2, 31, 12345, 2**40 + 7]:
        for sets in [1, 3, 32, 1000]:
            assert cache_set(key, sets) == reference_set(key, sets)


@settings(max_examples=60, deadline=None)
@given(costs=st.lists(st.integers(-1, 5), min_size=WAYS, max_size=WAYS))
def test_warp_sort_sorts_and_matches_lanes(costs):
    cost = np.array(costs, dtype=np.int64)
    way = np.arange(WAYS, dtype=np.int64)
    warp_sort(cost, way, np.empty(WAYS, np.int64), np.empty(WAYS, np.int64))
    assert list(cost) == sorted(costs)
    assert sorted(way) == list(range(WAYS))
    assert [costs[w] for w in way] == list(cost)
    assert (list(cost), list(way)) == reference_warp_sort(costs)


def test_sets_follow_fbgemm_formula():
    # (int(total * load_factor) + 31) // 32 sets, at least one
    for total, load_factor, sets in [(1000, 0.05, 2), (1000, 0.064, 2), (1000, 0.065, 3),
                                     (1000, 0.0001, 1), (10**6, 0.2, 6250)]:
        slots = FbgemmUvmCache.slots_for_load_factor(load_factor, total)
        cache = FbgemmUvmCache(FbgemmUvmOptions(), slots=slots, table_rows=np.array([total]))
        assert cache.num_sets == sets and cache.slots == sets * WAYS


@pytest.mark.parametrize("policy", ["lru", "lfu"])
def test_33_rows_of_one_set_give_one_conflict_unique_miss(policy):
    rows = keys_of_set(1, 4, 33)
    keys = np.array(rows + [rows[-1], rows[0]], dtype=np.int64)
    cache = make(policy, 4)
    hit, slot = cache.lookup(keys)
    stats = cache.counters()
    assert stats["num_unique_misses"] == 33
    assert stats["num_conflict_unique_misses"] == 1
    # rows go in in ascending order, so the largest is left out, read uncached twice
    left_out = max(rows) if policy == "lru" else max(rows[1:-1])
    assert stats["num_conflict_misses"] == int(np.sum(keys == left_out)) == (
        2 if left_out == rows[-1] else 1)
    assert np.all(slot[keys == left_out] == -1)
    assert np.all(slot[keys != left_out] // WAYS == 1)
    assert not hit[:33].any() and hit[34]  # a repeat of an inserted row hits
    assert cache.hits + cache.misses == keys.size


def test_repeats_count_requested_and_unique_indices():
    cache = make("lru", 2)
    cache.lookup(np.array([5, 5, 7, 5, 9]))
    cache.lookup(np.array([7, 7]))
    stats = cache.counters()
    assert stats["num_calls"] == 2
    assert stats["num_requested_indices"] == 7
    assert stats["num_unique_indices"] == 4
    assert stats["num_unique_misses"] == 3
    assert cache.hits == 2 + 2 and cache.misses == 3


def test_rows_of_the_batch_are_not_evicted_under_lru():
    rows = keys_of_set(0, 1, 33)
    cache = make("lru", 1)
    cache.lookup(np.array(rows[:32]))
    hit, slot = cache.lookup(np.array(rows))  # all 32 cached rows are used again
    assert hit[:32].all() and slot[32] == -1
    assert cache.counters()["num_conflict_unique_misses"] == 1 and cache.evictions == 0


def test_lru_and_lfu_choose_different_victims():
    rows = list(range(32))
    first = np.array(rows + [0] * 4)         # row 0: 5 uses, stamped in batch 1
    second = np.array(rows[1:])              # rows 1..31: 2 uses, stamped in batch 2
    third = np.array([100, 100, 100])        # a new row used 3 times
    outcome = {}
    for policy in ("lru", "lfu"):
        cache = make(policy, 1)
        for batch in (first, second, third):
            cache.lookup(batch)
        assert cache.evictions == 1
        hit, _ = cache.lookup(np.array([0]))
        outcome[policy] = bool(hit[0])
    assert outcome == {"lru": False, "lfu": True}  # LRU evicts the oldest, LFU the rarest


def test_lfu_does_not_insert_rows_rarer_than_every_way():
    cache = make("lfu", 1)
    cache.lookup(np.repeat(np.arange(32), 3))
    hit, slot = cache.lookup(np.array([500, 500]))
    assert not hit.any() and (slot == -1).all()
    assert cache.counters()["num_conflict_misses"] == 2


def test_lfu_replaces_a_way_whose_count_ties_the_incoming_row():
    cache = make("lfu", 1)
    cache.lookup(np.arange(32))
    hit, slot = cache.lookup(np.array([500]))  # count 1 against ways of count 1: inserted
    assert not hit[0] and slot[0] >= 0 and cache.evictions == 1


# batches of up to 90 keys over 120 rows overflow a set often, so conflicts get exercised
batch = st.integers(1, 90).flatmap(
    lambda n: st.lists(st.integers(0, 119), min_size=n, max_size=n))
batches = st.lists(batch, min_size=2, max_size=6)


@settings(max_examples=60, deadline=None)
@given(batches=batches, sets=st.integers(1, 3), policy=st.sampled_from(["lru", "lfu"]))
def test_matches_reference(batches, sets, policy):
    cache, reference = make(policy, sets, rows=120), ReferenceFbgemm(sets, policy)
    for batch in batches:
        hit, slot = cache.lookup(np.array(batch, dtype=np.int64))
        want_hit, want_slot = reference.batch(batch)
        assert np.array_equal(hit, want_hit)
        assert np.array_equal(slot, want_slot)
    assert cache.counters() == {name: reference.stats[name] for name in cache.counters()}
    assert cache.evictions == reference.evictions
    assert cache.hits + cache.misses == sum(map(len, batches))
