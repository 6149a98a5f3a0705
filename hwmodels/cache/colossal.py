"""Colossal-AI's frequency-aware embedding cache, kind ``colossal``.

Reproduces ``CachedParamMgr`` (colossalai/legacy/nn/parallel/layers/cache_embedding/
cache_mgr.py) over all tables' rows as one weight:

- ``reorder(ids_freq_mapping, warmup_ratio)``: with ``EvictionStrategy.DATASET`` rows are
  renumbered by descending profiled frequency (``idx_map``; a smaller number is a hotter row);
  ``ceil(cache_rows * warmup_ratio)`` rows are preloaded into slots 0, 1, ...: the hottest rows
  (DATASET), or with ``EvictionStrategy.LFU`` the most frequent rows with their profiled count
  as initial frequency (rows 0, 1, ... with frequency 0 when no profile is given).
- ``prepare_ids``: the batch's unique rows must all fit in the cache (the assertion there;
  ``InputError`` here); rows not cached are misses. If they do not fit in the free slots,
  ``_prepare_rows_on_cuda`` evicts exactly the shortfall among cached rows not used by this
  batch (``evict_backlist``): DATASET evicts the largest renumbered ids (the coldest in the
  profile), LFU the smallest frequency counts. Misses, ascending, take the lowest free slots;
  under LFU a filled slot's count restarts at 0, then every row of the batch adds its count.
- Fully associative; every row of a batch is cached after it (hits and fills, no bypass).
- Counters: ``num_hits``/``num_miss`` (unique rows, ``num_hits_history``/``num_miss_history``),
  ``cache_miss``/``total_cache`` (keys: ``_cache_miss`` counts every occurrence of a missed
  row), ``rows_cpu_to_cuda``/``rows_cuda_to_cpu`` (rows moved, ``_cpu_to_cuda_numel`` /
  ``_cuda_to_cpu_numel`` in rows), ``warmup_rows``.

Simplifies: ``torch.argsort``/``torch.topk`` leave the order of equal values open; here equal
frequencies rank the lower row id first (renumbering, LFU warm-up) and LFU evicts the lower
slot first among equal counts. No copy buffers or streams (``buffer_size``, ``async_copy``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from numba import njit
from pydantic import Field

from embsim.errors import InputError
from embsim.limits import MAX_BATCHES, count
from hwmodels.cache.kernels import _sift_down, _sift_up
from hwmodels.cache.row_cache import (
    ROW_CACHES,
    BatchUniques,
    CacheOptions,
    RowCache,
    per_key,
    require_frequency,
)

EMPTY = -1


@njit(cache=True, inline="always")
def _push(heap, pos, score, size, slot):
    heap[size] = slot
    pos[slot] = size
    _sift_up(heap, pos, score, size)
    return size + 1


@njit(cache=True, inline="always")
def _pop(heap, pos, score, size):
    slot = heap[0]
    size -= 1
    heap[0] = heap[size]
    pos[heap[0]] = 0
    _sift_down(heap, pos, score, 0, size)
    return slot, size


@njit(cache=True)
def prepare_rows(uniq, counts, cached, inverted, score, heap, pos, size, used, lfu, found, loc):
    """One ``prepare_ids``: ``uniq`` are the batch's unique (renumbered) rows, ascending.

    The heap holds every filled slot, its root the next victim (lowest ``score``: minus the
    renumbered id for DATASET; ``count * slots + slot`` for LFU). Returns (unique misses,
    evictions, heap size, slots ever filled).
    """
    capacity = cached.size
    n = uniq.size
    miss_row = np.empty(n, dtype=np.int64)
    misses = 0
    for i in range(n):
        found[i] = inverted[uniq[i]] != EMPTY
        if not found[i]:
            miss_row[misses] = i
            misses += 1
    shortfall = misses - (capacity - size)
    evicted = np.empty(max(shortfall, 0), dtype=np.int64)
    if shortfall > 0:
        protected = np.empty(n, dtype=np.int64)
        kept = 0
        taken = 0
        while taken < shortfall:
            slot, size = _pop(heap, pos, score, size)
            row = cached[slot]
            at = np.searchsorted(uniq, row)
            if at < n and uniq[at] == row:  # a cached row of this batch: never a victim
                protected[kept] = slot
                kept += 1
                continue
            inverted[row] = EMPTY
            cached[slot] = EMPTY
            evicted[taken] = slot
            taken += 1
        for k in range(kept):
            size = _push(heap, pos, score, size, protected[k])
        evicted.sort()
    for m in range(misses):
        if m < evicted.size:
            slot = evicted[m]
        else:
            slot = used
            used += 1
        row = uniq[miss_row[m]]
        cached[slot] = row
        inverted[row] = slot
        score[slot] = slot if lfu else -row
        size = _push(heap, pos, score, size, slot)
    for i in range(n):
        loc[i] = inverted[uniq[i]]
        if lfu:
            score[loc[i]] += counts[i] * capacity
            _sift_down(heap, pos, score, pos[loc[i]], size)
    return misses, evicted.size, size, used


class ColossalOptions(CacheOptions):
    """``strategy``: ``EvictionStrategy`` (DATASET, the default there, or LFU);
    ``warmup_ratio``: ``reorder``'s preloaded fraction of the cache (0.7 there);
    ``profile_batches``: leading batches of the trace that give the frequency profile
    (None: the whole trace, as Colossal-AI's examples count the dataset)."""

    strategy: Literal["dataset", "lfu"] = "dataset"
    warmup_ratio: Annotated[float, Field(ge=0, le=1)] = 0.7
    profile_batches: count(MAX_BATCHES) | None = None


@ROW_CACHES.register("colossal")
class ColossalCache(RowCache):
    """Colossal-AI's ``CachedParamMgr`` over all rows; see the module docstring."""

    options_model = ColossalOptions
    needs_profile = True

    def __init__(self, options: ColossalOptions, *, slots: int, table_rows: np.ndarray,
                 frequency: np.ndarray | None = None, seed: int = 0):
        super().__init__()
        key_space = int(np.sum(table_rows))
        self.unique_keys = BatchUniques(int(np.sum(table_rows)))
        self.lfu = options.strategy == "lfu"
        self.slots = int(slots)
        self.cached = np.full(self.slots, EMPTY, dtype=np.int64)
        self.inverted = np.full(key_space, EMPTY, dtype=np.int64)
        self.score = np.zeros(self.slots, dtype=np.int64)
        self.heap = np.zeros(self.slots, dtype=np.int64)
        self.pos = np.zeros(self.slots, dtype=np.int64)
        preload = min(int(np.ceil(self.slots * options.warmup_ratio)), key_space)
        if self.lfu:
            self.renumber = None
            if frequency is None:
                rows, counts = np.arange(preload), np.zeros(preload, dtype=np.int64)
            else:
                frequency = require_frequency(frequency, key_space, "colossal")
                rows = np.argsort(-frequency, kind="stable")[:preload]
                counts = frequency[rows]
            self.score[:preload] = counts * self.slots + np.arange(preload)
        else:
            frequency = require_frequency(frequency, key_space, "colossal")
            self.renumber = np.empty(key_space, dtype=np.int64)
            ranked = np.argsort(-frequency, kind="stable")
            self.renumber[ranked] = np.arange(key_space)
            rows = np.arange(preload)
            self.score[:preload] = -rows
        self.cached[:preload] = rows
        self.inverted[rows] = np.arange(preload)
        order = np.argsort(self.score[:preload], kind="stable")  # a sorted array is a heap
        self.heap[:preload] = order
        self.pos[order] = np.arange(preload)
        self.size = preload
        self.used = preload
        keys = rows if self.renumber is None else ranked[:preload]
        self._preloaded = (np.arange(preload, dtype=np.int64), np.asarray(keys, dtype=np.int64))
        self.stats = {"num_hits": 0, "num_miss": 0, "cache_miss": 0, "total_cache": 0,
                      "rows_cpu_to_cuda": 0, "rows_cuda_to_cpu": 0, "warmup_rows": preload}

    @classmethod
    def memory_bytes(cls, options: CacheOptions, slots: int, table_rows: np.ndarray) -> int:
        """Cached row, score, heap and position per slot; per row of the key space its slot
        (``inverted``) and the batch-uniques scratch, plus, while the profile is ranked, the
        ranking and (``dataset``) the renumbering with its ``arange``."""
        assert isinstance(options, ColossalOptions)
        per_key = 8 + BatchUniques.BYTES_PER_KEY + (16 if options.strategy == "lfu" else 24)
        return 32 * int(slots) + per_key * int(np.sum(table_rows))

    def _serve(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = keys if self.renumber is None else self.renumber[keys]
        uniq, first, inverse, counts = self.unique_keys(rows)
        if uniq.size > self.slots:
            raise InputError(
                f"a batch has {uniq.size} unique rows but the cache holds {self.slots} rows; "
                "Colossal-AI's CachedParamMgr.prepare_ids requires every batch's unique rows to "
                "fit in the cache: enlarge the cache or shrink the batch", field="system.cache")
        found = np.empty(uniq.size, dtype=np.bool_)
        loc = np.empty(uniq.size, dtype=np.int64)
        misses, evicted, self.size, self.used = prepare_rows(
            uniq, counts, self.cached, self.inverted, self.score, self.heap, self.pos,
            self.size, self.used, self.lfu, found, loc)
        self.evictions += evicted
        stats = self.stats
        stats["num_hits"] += uniq.size - misses
        stats["num_miss"] += misses
        stats["cache_miss"] += int(counts[~found].sum())
        stats["total_cache"] += keys.size
        stats["rows_cpu_to_cuda"] += misses
        stats["rows_cuda_to_cpu"] += evicted
        return per_key(loc, found, first, inverse)

    def counters(self) -> dict[str, int]:
        return dict(self.stats)

    def preloaded(self) -> tuple[np.ndarray, np.ndarray]:
        return self._preloaded
