"""FBGEMM TBE UVM caching (``EmbeddingLocation.MANAGED_CACHING``), kind ``fbgemm_uvm``.

Reproduces, per batch, what ``SplitTableBatchedEmbeddingBagsCodegen._prefetch``
(fbgemm_gpu/split_table_batched_embeddings_ops_training.py) does with the ops of
fbgemm_gpu/src/split_embeddings_cache/:

- Geometry (``_apply_cache_state``): 32-way sets (``DEFAULT_ASSOC`` on CUDA),
  ``sets = (int(total_rows * cache_load_factor) + 31) // 32``, at least 1. Rows are the
  linear indices of ``linearize_cache_indices`` (table's row offset + row), i.e. global row ids.
- Set of a row: ``cache_slot`` in common.cuh, the MurmurHash3 64-bit finaliser of the linear
  index modulo the number of sets.
- LRU (``lru_cache_populate_cuda``): the batch's sorted unique rows are looked up
  (``lru_cache_find_uncached_kernel``; a hit stamps its way with the batch's timestep, so rows
  used in this batch cannot be evicted); the misses, grouped by set in ascending row order, are
  inserted by ``lru_cache_insert_kernel`` into the ways in ascending order of their stamp
  (FBGEMM's warp bitonic sort, reproduced lane for lane so ties fall as on the GPU), stopping
  at the first way stamped in this batch: misses left over are conflict misses.
- LFU (``lfu_cache_populate_cuda``): a per-row access count that persists across evictions
  (``lfu_update_counts_kernel``) is raised by the batch's counts; the misses of each set, most
  frequent first (``lfu_cache_find_uncached_kernel``'s sort key), replace the ways in ascending
  order of their row's count (empty ways first) while the way's count does not exceed the
  incoming row's; at most 32 candidates per set per batch. Rows used in the batch are not
  protected: LFU may evict them, and then they are read uncached.
- Lookup (``lxu_cache_lookup_kernel``): every key of the batch is looked up after the prefetch;
  a row not in the cache is read from UVM (slot -1) and counted in ``num_conflict_misses``.
- Counters (``uvm_cache_stats_index`` in common.cuh): ``num_calls`` (prefetches),
  ``num_requested_indices`` (keys), ``num_unique_indices``, ``num_unique_misses`` (unique rows
  not cached before the prefetch), ``num_conflict_unique_misses`` (unique misses not inserted),
  ``num_conflict_misses`` (keys read uncached). FBGEMM gathers the first five only in the LRU
  path; here they are kept, with the same definitions, for LFU too.

Simplifies: one prefetch per batch, immediately before its lookup (no prefetch pipeline, so no
cache-line locking); the cache only holds rows (no optimizer state, no precision conversion);
no pruned (negative) indices.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numba import njit

from hwmodels.cache.row_cache import (
    ROW_CACHES,
    UNCACHED,
    BatchUniques,
    CacheOptions,
    RowCache,
    per_key,
)

WAYS = 32                 # DEFAULT_ASSOC: one warp of ways per set
EMPTY = -1                # kCacheStateInvalid
LFU_COUNTER_BITS = 40     # kLFUCounterBits: the LFU sort key is set << 40 | (2^40 - 1 - count)


@njit(cache=True, inline="always")
def cache_set(key, num_sets):
    """``cache_slot(h_in, C)``: MurmurHash3's 64-bit finaliser of the row, modulo the sets."""
    h = np.uint64(key)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return np.int64(h % np.uint64(num_sets))


@njit(cache=True, inline="always")
def _exchange(cost, way, other_cost, other_way, mask, bit):
    """One compare-exchange stage of the warp: lane l trades with lane l ^ mask."""
    for lane in range(WAYS):
        other_cost[lane] = cost[lane ^ mask]
        other_way[lane] = way[lane ^ mask]
    for lane in range(WAYS):
        lower = (lane & bit) == 0  # the lower lane of the pair keeps the smaller cost
        if (cost[lane] > other_cost[lane]) if lower else (cost[lane] < other_cost[lane]):
            cost[lane] = other_cost[lane]
            way[lane] = other_way[lane]


@njit(cache=True, inline="always")
def warp_sort(cost, way, other_cost, other_way):
    """``BitonicSort<K, V, Dir=true>::sort``: ascending merges of 2, 4, ..., 32 lanes, each
    ``warpBitonicMergeLE16<L, IsBitonic=false>`` (a reversed first exchange, then halving
    strides). Equal costs never swap, so ties end where FBGEMM's network leaves them."""
    half = 1
    while half <= WAYS // 2:
        _exchange(cost, way, other_cost, other_way, 2 * half - 1, half)
        stride = half // 2
        while stride > 0:
            _exchange(cost, way, other_cost, other_way, stride, stride)
            stride //= 2
        half *= 2


@njit(cache=True, inline="always")
def _sorted_ways(costs_of_set, scratch):
    """The ways of a set in FBGEMM's eviction order, warp-sorted by cost: costs into
    ``scratch[0]``, ways into ``scratch[1]`` (rows 2 and 3 are the exchange buffers)."""
    for lane in range(WAYS):
        scratch[0, lane] = costs_of_set[lane]
        scratch[1, lane] = lane
    warp_sort(scratch[0], scratch[1], scratch[2], scratch[3])


@njit(cache=True, inline="always")
def _segment(sort_key, order, start, count):
    """The set of the miss at ``start`` (sorted by set) and the end of that set's misses."""
    s = sort_key[order[start]] >> LFU_COUNTER_BITS
    end = start + 1
    while end < count and sort_key[order[end]] >> LFU_COUNTER_BITS == s:
        end += 1
    return s, end


@njit(cache=True, inline="always")
def _find(key, state, base):
    for line in range(base, base + WAYS):
        if state[line] == key:
            return line
    return EMPTY


@njit(cache=True)
def populate_lru(uniq, state, lru_state, num_sets, time_stamp, found, loc):
    """Prefetch the sorted unique rows ``uniq`` under LRU; returns (unique misses, conflict
    unique misses, evictions). ``found`` marks rows cached before, ``loc`` gets each row's
    line after the prefetch (-1: not cached)."""
    n = uniq.size
    sort_key = np.empty(n, dtype=np.int64)  # the set, in the LFU key's position
    miss_row = np.empty(n, dtype=np.int64)
    misses = 0
    for i in range(n):
        s = cache_set(uniq[i], num_sets)
        line = _find(uniq[i], state, s * WAYS)
        found[i] = line != EMPTY
        loc[i] = line
        if line != EMPTY:
            lru_state[line] = time_stamp
        else:
            sort_key[misses] = s << LFU_COUNTER_BITS
            miss_row[misses] = i
            misses += 1
    order = np.argsort(sort_key[:misses], kind="mergesort")
    scratch = np.empty((4, WAYS), dtype=np.int64)
    cost, way = scratch[0], scratch[1]
    conflicts = 0
    evictions = 0
    start = 0
    while start < misses:
        s, end = _segment(sort_key, order, start, misses)
        base = s * WAYS
        _sorted_ways(lru_state[base:base + WAYS], scratch)
        inserted = 0
        for lane in range(min(end - start, WAYS)):
            if cost[lane] == time_stamp:
                break
            line = base + way[lane]
            if state[line] != EMPTY:
                evictions += 1
            i = miss_row[order[start + inserted]]
            state[line] = uniq[i]
            lru_state[line] = time_stamp
            loc[i] = line
            inserted += 1
        conflicts += end - start - inserted
        start = end
    return misses, conflicts, evictions


@njit(cache=True)
def populate_lfu(uniq, counts, state, lfu_state, num_sets, found, loc):
    """Prefetch the sorted unique rows ``uniq`` (with their counts in the batch) under LFU;
    returns (unique misses, conflict unique misses, evictions). ``found`` and ``loc`` as in
    ``populate_lru``; ``loc`` is taken after the prefetch, as ``lxu_cache_lookup`` does."""
    n = uniq.size
    for i in range(n):
        lfu_state[uniq[i]] += counts[i]
    sort_key = np.empty(n, dtype=np.int64)
    miss_row = np.empty(n, dtype=np.int64)
    misses = 0
    for i in range(n):
        s = cache_set(uniq[i], num_sets)
        loc[i] = _find(uniq[i], state, s * WAYS)
        found[i] = loc[i] != EMPTY
        if not found[i]:
            sort_key[misses] = (s << LFU_COUNTER_BITS) | (
                (1 << LFU_COUNTER_BITS) - 1 - lfu_state[uniq[i]])
            miss_row[misses] = i
            misses += 1
    order = np.argsort(sort_key[:misses], kind="mergesort")
    costs_of_set = np.empty(WAYS, dtype=np.int64)
    scratch = np.empty((4, WAYS), dtype=np.int64)
    cost, way = scratch[0], scratch[1]
    conflicts = 0
    evictions = 0
    start = 0
    while start < misses:
        s, end = _segment(sort_key, order, start, misses)
        base = s * WAYS
        for lane in range(WAYS):
            row = state[base + lane]
            costs_of_set[lane] = lfu_state[row] if row != EMPTY else -1
        _sorted_ways(costs_of_set, scratch)
        inserted = 0
        for lane in range(min(end - start, WAYS)):
            i = miss_row[order[start + lane]]
            row = uniq[i]
            if cost[lane] > lfu_state[row]:
                break
            line = base + way[lane]
            if state[line] != EMPTY:
                evictions += 1
            state[line] = row
            loc[i] = line
            inserted += 1
        conflicts += end - start - inserted
        start = end
    for i in range(n):
        # a row found before the prefetch may have been evicted by it (LFU does not lock)
        if found[i] and state[loc[i]] != uniq[i]:
            loc[i] = EMPTY
    return misses, conflicts, evictions


class FbgemmUvmOptions(CacheOptions):
    """``policy``: FBGEMM's ``cache_algorithm`` (``CacheAlgorithm.LRU`` or ``LFU``)."""

    policy: Literal["lru", "lfu"] = "lru"


@ROW_CACHES.register("fbgemm_uvm")
class FbgemmUvmCache(RowCache):
    """FBGEMM's 32-way UVM cache in front of managed (UVM) tables; see the module docstring."""

    options_model = FbgemmUvmOptions

    def __init__(self, options: FbgemmUvmOptions, *, slots: int, table_rows: np.ndarray,
                 frequency: np.ndarray | None = None, seed: int = 0):
        super().__init__()
        self.policy = options.policy
        self.unique_keys = BatchUniques(int(np.sum(table_rows)))
        self.num_sets = max(1, -(-int(slots) // WAYS))
        self.slots = self.num_sets * WAYS
        self.state = np.full(self.slots, EMPTY, dtype=np.int64)
        if self.policy == "lru":
            self.lru_state = np.zeros(self.slots, dtype=np.int64)
        else:
            self.lfu_state = np.zeros(int(np.sum(table_rows)), dtype=np.int64)
        self.time_stamp = 0
        self.stats = dict.fromkeys(
            ("num_calls", "num_requested_indices", "num_unique_indices", "num_unique_misses",
             "num_conflict_unique_misses", "num_conflict_misses"), 0)

    @classmethod
    def memory_bytes(cls, options: CacheOptions, slots: int, table_rows: np.ndarray) -> int:
        """Per slot (whole sets of ``WAYS``) its state, and its LRU stamp or, for LFU, a count
        per row of the key space; plus the batch-uniques scratch per row."""
        assert isinstance(options, FbgemmUvmOptions)
        key_space = int(np.sum(table_rows))
        cached = max(1, -(-int(slots) // WAYS)) * WAYS
        per_policy = 8 * cached if options.policy == "lru" else 8 * key_space
        return 8 * cached + per_policy + BatchUniques.BYTES_PER_KEY * key_space

    @staticmethod
    def slots_for_load_factor(load_factor: float, total_rows: int) -> int:
        """Rows FBGEMM sizes the cache for: ``int(total_rows * cache_load_factor)`` (an empty
        cache becomes one set, as there)."""
        return max(1, int(total_rows * load_factor))

    def _serve(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uniq, first, inverse, counts = self.unique_keys(keys)
        found = np.empty(uniq.size, dtype=np.bool_)
        loc = np.empty(uniq.size, dtype=np.int64)
        if self.policy == "lru":
            self.time_stamp += 1
            misses, conflicts, evicted = populate_lru(uniq, self.state, self.lru_state,
                                                      self.num_sets, self.time_stamp, found, loc)
        else:
            misses, conflicts, evicted = populate_lfu(uniq, counts, self.state, self.lfu_state,
                                                      self.num_sets, found, loc)
        self.evictions += evicted
        hit, slot = per_key(loc, found, first, inverse)
        stats = self.stats
        stats["num_calls"] += 1
        stats["num_requested_indices"] += keys.size
        stats["num_unique_indices"] += uniq.size
        stats["num_unique_misses"] += misses
        stats["num_conflict_unique_misses"] += conflicts
        stats["num_conflict_misses"] += int(np.count_nonzero(slot == UNCACHED))
        return hit, slot

    def counters(self) -> dict[str, int]:
        return dict(self.stats)
