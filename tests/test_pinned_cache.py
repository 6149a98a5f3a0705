"""Static hot-row pinning (kind pinned): the top rows of a profiled prefix of the trace."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.cache.row_cache import build_row_cache


def pinned(slots, frequency):
    return build_row_cache("pinned", {"profile_batches": 2}, slots=slots,
                           table_rows=np.array([len(frequency)]), frequency=np.array(frequency))


def test_top_rows_are_pinned_hottest_first_ties_to_lower_ids():
    cache = pinned(3, [0, 4, 2, 4, 1, 2])
    hit, slot = cache.lookup(np.array([1, 3, 2, 5, 4, 0, 1]))
    assert slot.tolist() == [0, 1, 2, -1, -1, -1, 0]  # rows 1, 3 (4 each), then 2 (2, < row 5)
    assert hit.tolist() == [True, True, True, False, False, False, True]
    assert cache.counters() == {"pinned_rows": 3, "unpinned_keys": 3}
    assert cache.evictions == 0 and cache.hits == 4 and cache.misses == 3


def test_rows_never_seen_are_not_pinned():
    cache = pinned(4, [0, 3, 0, 0, 1])
    assert cache.counters()["pinned_rows"] == 2
    assert cache.lookup(np.array([0, 2, 3]))[0].sum() == 0


@settings(max_examples=40, deadline=None)
@given(trace=st.lists(st.lists(st.integers(0, 29), min_size=1, max_size=40), min_size=3,
                      max_size=8), slots=st.integers(1, 30), prefix=st.integers(1, 3))
def test_profiled_prefix_decides_every_later_hit(trace, slots, prefix):
    frequency = np.bincount(np.concatenate([np.array(b) for b in trace[:prefix]]), minlength=30)
    ranked = sorted((r for r in range(30) if frequency[r] > 0),
                    key=lambda r: (-frequency[r], r))[:slots]
    cache = pinned(slots, frequency)
    for batch in trace:
        hit, slot = cache.lookup(np.array(batch))
        assert hit.tolist() == [k in ranked for k in batch]
        assert slot.tolist() == [ranked.index(k) if k in ranked else -1 for k in batch]
