"""One-pass LRU miss-ratio curves against a straightforward fully associative LRU cache."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from traces.batch import Batch
from traces.generators import synthesize
from traces.mrc import StackDistanceMRC, lru_mrc
from traces.schema import TableSpec, TraceMeta


def lru_hits(keys: list[int], capacity: int) -> int:
    """Hits of a fully associative LRU cache of ``capacity`` entries, simulated directly."""
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for key in keys:
        if key in cache:
            hits += 1
            cache.move_to_end(key)
        else:
            cache[key] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits


@settings(max_examples=150, deadline=None)
@given(keys=st.lists(st.integers(0, 24), min_size=1, max_size=250),
       cuts=st.lists(st.integers(0, 250), max_size=4),
       min_positions=st.sampled_from([1, 2, 5, 64]))
def test_hit_rate_equals_lru_at_every_capacity(keys, cuts, min_positions):
    mrc = StackDistanceMRC(25, min_positions=min_positions)  # tiny: forces compaction
    bounds = sorted({0, len(keys), *(c for c in cuts if c < len(keys))})
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        mrc.update(np.array(keys[start:stop]))
    unique = len(set(keys))
    capacities = np.arange(1, unique + 1)
    expected = [lru_hits(keys, c) / len(keys) for c in capacities]
    np.testing.assert_allclose(mrc.hit_rates(capacities), expected, rtol=0, atol=1e-12)
    assert mrc.unique_keys == unique and mrc.accesses == len(keys)
    assert mrc.histogram.sum() == len(keys) - unique


def test_longer_skewed_trace_against_a_stack_simulation():
    rng = np.random.default_rng(0)
    keys = (rng.zipf(1.3, 6000) % 400).tolist()
    mrc = StackDistanceMRC(400, min_positions=16)
    for chunk in np.array_split(np.array(keys), 7):
        mrc.update(chunk)
    stack: list[int] = []  # most recent first
    distances = []
    for key in keys:
        if key in stack:
            distances.append(stack.index(key))
            stack.remove(key)
        stack.insert(0, key)
    histogram = np.bincount(distances)
    np.testing.assert_array_equal(mrc.histogram, histogram)
    for capacity in (1, 7, 50, len(stack)):
        assert mrc.hit_rates(np.array([capacity]))[0] == lru_hits(keys, capacity) / len(keys)


def test_capacity_zero_and_beyond_the_keys():
    mrc = StackDistanceMRC(10)
    mrc.update(np.array([1, 2, 1, 2, 3]))
    np.testing.assert_allclose(mrc.hit_rates(np.array([0, 2, 10**6])), [0.0, 0.4, 0.4])


def test_lru_mrc_over_batches_uses_global_rows_and_log_spaced_capacities():
    meta = TraceMeta([TableSpec(5, 4), TableSpec(5, 4)], batch_size=1)
    # row 3 of table 0 and row 3 of table 1 are different keys (3 and 8)
    batches = [Batch(0, np.array([3, 3]), np.array([0, 1, 2]), 2, 1),
               Batch(1, np.array([3, 3]), np.array([0, 1, 2]), 2, 1)]
    capacities, hit_rates = lru_mrc(meta, batches, capacities=np.array([1, 2]))
    np.testing.assert_allclose(hit_rates, [0.0, 0.5])

    meta, generated = synthesize([TableSpec(2000, 8)] * 3, 4, batches=20, batch_size=16,
                                 alpha=1.1, seed=1)
    capacities, hit_rates = lru_mrc(meta, generated)
    assert 10 <= capacities.size <= 20 and capacities[0] == 1
    assert np.all(np.diff(capacities) > 0) and np.all(np.diff(hit_rates) >= 0)
    lookups = 20 * 16 * 3 * 4
    assert hit_rates[-1] == (lookups - capacities[-1]) / lookups  # last = all distinct rows
