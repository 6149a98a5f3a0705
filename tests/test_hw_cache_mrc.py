"""The one-pass LRU miss-ratio curve (traces.mrc) against simulated fully associative LRU
hardware caches (one set, ways = capacity in lines) at every capacity."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.cache.hardware import HardwareCache
from traces.mrc import StackDistanceMRC

LINE = 64


def simulated_hit_rates(keys: np.ndarray, capacities: range) -> np.ndarray:
    """Hit rate of a one-set LRU HardwareCache holding ``c`` lines, for each ``c``."""
    addresses = keys * LINE
    return np.array([HardwareCache(c * LINE, c, LINE, "lru").access(addresses).mean()
                     for c in capacities])


def check_every_capacity(keys: np.ndarray, chunks: int, min_positions: int) -> None:
    mrc = StackDistanceMRC(int(keys.max()) + 1, min_positions=min_positions)
    for chunk in np.array_split(keys, chunks):
        mrc.update(chunk)
    capacities = range(1, np.unique(keys).size + 2)      # up to one past the distinct keys
    expected = simulated_hit_rates(keys, capacities)
    np.testing.assert_array_equal(mrc.hit_rates(np.array(capacities)), expected)


def test_zipf_trace_agrees_at_every_capacity():
    rng = np.random.default_rng(11)
    keys = rng.zipf(1.2, 3000) % 150
    check_every_capacity(keys, chunks=5, min_positions=32)


@settings(max_examples=40, deadline=None)
@given(keys=st.lists(st.integers(0, 30), min_size=1, max_size=200),
       chunks=st.integers(1, 4), min_positions=st.sampled_from([1, 4, 64]))
def test_any_trace_agrees_at_every_capacity(keys, chunks, min_positions):
    check_every_capacity(np.array(keys, dtype=np.int64), chunks, min_positions)
