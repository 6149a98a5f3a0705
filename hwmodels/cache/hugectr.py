"""HugeCTR HPS's GPU embedding cache, one per table, kind ``hugectr``.

Reproduces the "dynamic" embedding cache of the Hierarchical Parameter Server
(HugeCTR/src/hps/embedding_cache.cpp, ``EmbeddingCache``) built on ``gpu_cache::gpu_cache``
(gpu_cache/src/nv_gpu_cache.cu, gpu_cache/include/nv_gpu_cache.hpp):

- Geometry: each table has its own cache of ``int(fraction * rows)`` rows (HPS
  ``gpucacheper``, ``cache_size_percentage_``), at least 64, rounded up to whole slab sets:
  ``sets = ceil(rows_in_cache / 64)``. A slab set is ``SET_ASSOCIATIVITY = 2`` slabs of
  ``SLAB_SIZE = 32`` slots.
- Placement: a key's set is ``MurmurHash3_32(key) % sets`` (x86 32-bit MurmurHash3 of the
  8-byte key, seed 0, ``hash_functions.cuh``); its first slab is ``key % 2`` (``Mod_Hash``).
  Keys are the table's own row ids.
- Per lookup and table (``lookup_from_device``): the keys are deduplicated, then ``Query``
  raises the table's global counter by one and probes each key from its first slab
  (``get_kernel``): found: a hit, its slot stamped with the counter; a slab with an empty slot:
  a miss. The missing keys are then inserted (``Replace``, ``insert_replace_kernel``): into the
  lowest empty slot of the first slab that has one, else over the least recently stamped slot of
  the set (ties: nearer slab to the first one, then lower slot), stamped with the counter.
- Counters: ``num_queries`` (``Query`` calls), ``unique_keys`` (keys queried after
  deduplication), ``missing_keys`` (``d_missing_len``), ``inserts`` (into empty slots),
  ``replacements`` (LRU victims).

Simplifies: the GPU runs a batch's probes and inserts in parallel under per-set locks in an
order it does not fix; here they run in the order of the keys' first occurrence. Every miss is
inserted before the next lookup: HPS inserts synchronously when the batch's hit rate is below
``hit_rate_threshold`` and otherwise in the background (returning default vectors meanwhile),
which this model does not distinguish. No refresh from the parameter server.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from numba import njit
from pydantic import Field

from hwmodels.cache.row_cache import ROW_CACHES, BatchUniques, CacheOptions, RowCache, per_key

SLAB_SIZE = 32
SET_ASSOCIATIVITY = 2
SET_SLOTS = SLAB_SIZE * SET_ASSOCIATIVITY
EMPTY = -1
MASK32 = np.uint64(0xFFFFFFFF)


@njit(cache=True, inline="always")
def _rotl32(x, r):
    return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & MASK32


@njit(cache=True, inline="always")
def murmur3_32(key):
    """``MurmurHash3_32<long long>::hash``: x86 MurmurHash3 of the key's 8 bytes, seed 0."""
    data = np.uint64(key)
    h = np.uint64(0)
    for block in (data & MASK32, data >> np.uint64(32)):
        k = (block * np.uint64(0xCC9E2D51)) & MASK32
        k = _rotl32(k, 15)
        k = (k * np.uint64(0x1B873593)) & MASK32
        h ^= k
        h = _rotl32(h, 13)
        h = (h * np.uint64(5) + np.uint64(0xE6546B64)) & MASK32
    h ^= np.uint64(8)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & MASK32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & MASK32
    h ^= h >> np.uint64(16)
    return np.int64(h)


@njit(cache=True, inline="always")
def _query(key, set_base, first_slab, state, stamp, now):
    """``get_kernel`` for one key: its slot (stamped) if found, else -1."""
    slab = first_slab
    for _ in range(SET_ASSOCIATIVITY):
        base = set_base + slab * SLAB_SIZE
        empty_seen = False
        for line in range(base, base + SLAB_SIZE):
            if state[line] == key:
                stamp[line] = now
                return line
            empty_seen |= state[line] == EMPTY
        if empty_seen:
            return EMPTY
        slab = (slab + 1) % SET_ASSOCIATIVITY
    return EMPTY


@njit(cache=True, inline="always")
def _replace(key, set_base, first_slab, state, stamp, now):
    """``insert_replace_kernel`` for one key: returns (slot, 1 if it replaced a key else 0)."""
    slab = first_slab
    victim = EMPTY
    for _ in range(SET_ASSOCIATIVITY):
        base = set_base + slab * SLAB_SIZE
        for line in range(base, base + SLAB_SIZE):
            if state[line] == key:
                stamp[line] = now
                return line, 0
        for line in range(base, base + SLAB_SIZE):
            if state[line] == EMPTY:
                state[line] = key
                stamp[line] = now
                return line, 0
        for line in range(base, base + SLAB_SIZE):
            if victim == EMPTY or stamp[line] < stamp[victim]:
                victim = line
        slab = (slab + 1) % SET_ASSOCIATIVITY
    state[victim] = key
    stamp[victim] = now
    return victim, 1


@njit(cache=True)
def lookup_tables(keys, tables, cache_base, num_sets, state, stamp, counter, found, loc):
    """Serve the unique keys of a batch grouped by table (first-occurrence order within a
    table): per table one ``Query`` of all its keys, then one ``Replace`` of its misses.
    Returns (queries, misses, inserts, replacements)."""
    queries = misses = inserts = replacements = 0
    start = 0
    n = keys.size
    while start < n:
        t = tables[start]
        end = start
        while end < n and tables[end] == t:
            end += 1
        counter[t] += 1
        queries += 1
        now = counter[t]
        for i in range(start, end):
            set_base = cache_base[t] + (murmur3_32(keys[i]) % num_sets[t]) * SET_SLOTS
            loc[i] = _query(keys[i], set_base, keys[i] % SET_ASSOCIATIVITY, state, stamp, now)
            found[i] = loc[i] != EMPTY
        for i in range(start, end):
            if found[i]:
                continue
            misses += 1
            set_base = cache_base[t] + (murmur3_32(keys[i]) % num_sets[t]) * SET_SLOTS
            loc[i], replaced = _replace(keys[i], set_base, keys[i] % SET_ASSOCIATIVITY, state,
                                        stamp, now)
            replacements += replaced
            inserts += 1 - replaced
        start = end
    return queries, misses, inserts, replacements


class HugeCtrOptions(CacheOptions):
    """``fraction``: HPS ``gpucacheper``, the cached fraction of each table (None: the cache's
    rows over all rows, i.e. the ``load_factor``)."""

    fraction: Annotated[float, Field(gt=0, le=1)] | None = None


@ROW_CACHES.register("hugectr")
class HugeCtrCache(RowCache):
    """One HPS GPU embedding cache per table; see the module docstring."""

    options_model = HugeCtrOptions

    @classmethod
    def own_load_factor(cls, options: HugeCtrOptions) -> float | None:
        return options.fraction

    def __init__(self, options: HugeCtrOptions, *, slots: int, table_rows: np.ndarray,
                 frequency: np.ndarray | None = None, seed: int = 0):
        super().__init__()
        table_rows = np.asarray(table_rows, dtype=np.int64)
        self.unique_keys = BatchUniques(int(np.sum(table_rows)))
        fraction = options.fraction
        if fraction is None:
            fraction = min(1.0, slots / float(table_rows.sum()))
        rows_in_cache = np.maximum((fraction * table_rows.astype(np.float64)).astype(np.int64),
                                   SET_SLOTS)
        self.num_sets = -(-rows_in_cache // SET_SLOTS)
        self.cache_base = np.concatenate([[0], np.cumsum(self.num_sets * SET_SLOTS)[:-1]])
        self.slots = int(np.sum(self.num_sets) * SET_SLOTS)
        self.row_end = np.cumsum(table_rows)
        self.row_base = self.row_end - table_rows
        self.state = np.full(self.slots, EMPTY, dtype=np.int64)
        self.stamp = np.zeros(self.slots, dtype=np.int64)
        self.counter = np.zeros(table_rows.size, dtype=np.int64)
        self.stats = dict.fromkeys(
            ("num_queries", "unique_keys", "missing_keys", "inserts", "replacements"), 0)

    def _serve(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uniq, first, inverse, _ = self.unique_keys(keys)
        tables = np.searchsorted(self.row_end, uniq, side="right")
        order = np.lexsort((first, tables))
        local = uniq[order] - self.row_base[tables[order]]
        found = np.empty(uniq.size, dtype=np.bool_)
        loc = np.empty(uniq.size, dtype=np.int64)
        queries, misses, inserts, replaced = lookup_tables(
            local, tables[order], self.cache_base, self.num_sets, self.state, self.stamp,
            self.counter, found, loc)
        self.evictions += replaced
        unique_found = np.empty_like(found)
        unique_loc = np.empty_like(loc)
        unique_found[order] = found
        unique_loc[order] = loc
        stats = self.stats
        stats["num_queries"] += queries
        stats["unique_keys"] += uniq.size
        stats["missing_keys"] += misses
        stats["inserts"] += inserts
        stats["replacements"] += replaced
        return per_key(unique_loc, unique_found, first, inverse)

    def counters(self) -> dict[str, int]:
        return dict(self.stats)
