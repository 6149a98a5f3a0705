"""Colossal-AI cache (kind colossal) against a plain-Python transcription of CachedParamMgr."""

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embsim.errors import InputError
from hwmodels.cache.row_cache import build_row_cache


class ReferenceColossal:
    """``reorder`` then ``prepare_ids`` per batch, slot by slot."""

    def __init__(self, slots, frequency, strategy, warmup_ratio):
        n = len(frequency)
        self.strategy, self.slots = strategy, slots
        self.cached = [-1] * slots           # cached_idx_map
        self.inverted = [-1] * n             # inverted_cached_idx
        self.freq = [None] * slots           # freq_cnter (None: empty)
        by_heat = sorted(range(n), key=lambda r: (-frequency[r], r))
        self.idx_map = list(range(n))
        if strategy == "dataset":
            for position, row in enumerate(by_heat):
                self.idx_map[row] = position
        preload = min(math.ceil(slots * warmup_ratio), n)
        rows = by_heat[:preload] if strategy == "lfu" else list(range(preload))
        for slot, row in enumerate(rows):
            self.cached[slot], self.inverted[row] = row, slot
            self.freq[slot] = frequency[row] if strategy == "lfu" else None
        self.evicted = 0

    def batch(self, keys):
        rows = [self.idx_map[k] for k in keys]
        counts = Counter(rows)
        uniq = sorted(counts)
        assert len(uniq) <= self.slots
        misses = [r for r in uniq if self.inverted[r] == -1]
        cached_before = set(uniq) - set(misses)
        shortfall = len(misses) - self.cached.count(-1)
        if shortfall > 0:
            candidates = [s for s in range(self.slots)
                          if self.cached[s] != -1 and self.cached[s] not in counts]
            if self.strategy == "dataset":
                victims = sorted(candidates, key=lambda s: -self.cached[s])[:shortfall]
            else:
                victims = sorted(candidates, key=lambda s: (self.freq[s], s))[:shortfall]
            for s in victims:
                self.inverted[self.cached[s]], self.cached[s] = -1, -1
            self.evicted += len(victims)
        free = [s for s in range(self.slots) if self.cached[s] == -1][:len(misses)]
        for s, row in zip(free, misses, strict=True):
            self.cached[s], self.inverted[row], self.freq[s] = row, s, 0
        if self.strategy == "lfu":
            for row, count in counts.items():
                self.freq[self.inverted[row]] += count
        hits, slots, seen = [], [], set()
        for row in rows:
            hits.append(row in cached_before or row in seen)
            slots.append(self.inverted[row])
            seen.add(row)
        return np.array(hits, dtype=bool), np.array(slots)


def make(strategy, slots, frequency, warmup_ratio=0.7, table_rows=None):
    rows = np.array([len(frequency)]) if table_rows is None else np.array(table_rows)
    return build_row_cache("colossal", {"strategy": strategy, "warmup_ratio": warmup_ratio},
                           slots=slots, table_rows=rows,
                           frequency=None if frequency is None else np.array(frequency))


FREQ = [5, 1, 0, 3, 9, 2, 0, 0, 0, 4]


def test_dataset_strategy_by_hand():
    # hotness order: rows 4, 0, 9, 3, 5, 1, 2, 6, 7, 8; two slots preloaded with rows 4 and 0
    cache = make("dataset", 4, FREQ, warmup_ratio=0.5, table_rows=[6, 4])
    hit, slot = cache.lookup(np.array([4, 0, 2, 2, 7]))
    assert hit.tolist() == [True, True, False, True, False]
    assert slot.tolist() == [0, 1, 2, 2, 3]
    # rows 1, 5, 6 miss; the coldest cached rows not in the batch go: 7, 2 and 0
    hit, slot = cache.lookup(np.array([1, 5, 6, 6]))
    assert hit.tolist() == [False, False, False, True]
    assert slot.tolist() == [2, 1, 3, 3]
    assert cache.evictions == 3
    assert cache.counters() == {"num_hits": 2, "num_miss": 5, "cache_miss": 7,
                                "total_cache": 9, "rows_cpu_to_cuda": 5,
                                "rows_cuda_to_cpu": 3, "warmup_rows": 2}


def test_lfu_strategy_by_hand():
    # preload the two most frequent rows (4 then 0) with their profiled counts 9 and 5
    cache = make("lfu", 4, FREQ, warmup_ratio=0.5)
    cache.lookup(np.array([4, 0, 2, 2, 7]))      # counts now 10, 6, 2 (row 2), 1 (row 7)
    hit, slot = cache.lookup(np.array([1, 5, 6, 6]))
    assert slot.tolist() == [1, 2, 3, 3]         # rows 7, 2, 0 evicted: slots 3, 2, 1
    hit, _ = cache.lookup(np.array([4]))
    assert hit.all()


def test_batch_larger_than_the_cache_is_an_input_error():
    cache = make("dataset", 4, FREQ)
    with pytest.raises(InputError, match="5 unique rows but the cache holds 4 rows"):
        cache.lookup(np.array([0, 1, 2, 3, 4, 4]))


@pytest.mark.parametrize("ratio, preload", [(0.0, 0), (0.5, 2), (0.7, 3), (1.0, 4)])
def test_warmup_preloads_the_hottest_rows(ratio, preload):
    cache = make("dataset", 4, FREQ, warmup_ratio=ratio)
    assert cache.counters()["warmup_rows"] == preload
    hot = [4, 0, 9, 3][:preload]
    assert cache.lookup(np.array(hot))[0].all()
    assert not cache.lookup(np.array([8]))[0][0]


def test_dataset_strategy_needs_a_profile():
    with pytest.raises(ValueError, match="needs a frequency profile"):
        make("dataset", 4, None, table_rows=[10])


batch = st.integers(1, 12).flatmap(lambda n: st.lists(st.integers(0, 19), min_size=n,
                                                       max_size=n))


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(batch, min_size=1, max_size=8),
       frequency=st.lists(st.integers(0, 6), min_size=20, max_size=20),
       slots=st.integers(12, 20), ratio=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
       strategy=st.sampled_from(["dataset", "lfu"]))
def test_matches_reference(batches, frequency, slots, ratio, strategy):
    cache = make(strategy, slots, frequency, warmup_ratio=ratio)
    reference = ReferenceColossal(slots, frequency, strategy, ratio)
    for keys in batches:
        hit, slot = cache.lookup(np.array(keys))
        want_hit, want_slot = reference.batch(keys)
        assert np.array_equal(hit, want_hit) and np.array_equal(slot, want_slot)
    assert cache.evictions == reference.evicted
    assert cache.hits + cache.misses == sum(map(len, batches))


def test_lfu_without_profile_preloads_the_first_rows():
    cache = make("lfu", 4, None, warmup_ratio=0.5, table_rows=[10])
    hit, slot = cache.lookup(np.array([0, 1, 2]))
    assert hit.tolist() == [True, True, False] and slot.tolist() == [0, 1, 2]
