"""Placement policies: where rows live, closed forms and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embsim.errors import InputError
from simulator.core.placement import TierRoom, place


def rooms(*budgets: int, alignment: int = 64) -> list[TierRoom]:
    return [TierRoom(f"t{i}", b, alignment) for i, b in enumerate(budgets)]


def test_whole_tables_smallest_first_into_the_first_tier_with_room():
    rows = np.array([100, 10, 50])
    stride = np.array([64, 64, 64])           # 6400, 640 and 3200 bytes
    p = place("whole_tables", rooms(4000, 10_000), rows, stride, None, source="x.yaml")
    assert p.table_tier.tolist() == [1, 0, 0]  # 640 + 3200 fit in 4000; 6400 does not
    assert p.table_base.tolist() == [0, 0, 640]
    tier, addr = p.locate(np.array([0, 99, 100, 110, 159]))
    assert tier.tolist() == [1, 1, 0, 0, 0]
    assert addr.tolist() == [0, 99 * 64, 0, 640, 640 + 49 * 64]


def test_hot_rows_puts_the_most_read_rows_first():
    rows = np.array([4, 4])
    stride = np.array([64, 128])
    freq = np.array([0, 9, 1, 1, 5, 0, 7, 0])   # global rows 1 (t0), 6 (t1), 4 (t1) hottest
    # room for 64 + 128 bytes after 2 tables x 64 B alignment slack
    p = place("hot_rows", rooms(2 * 64 + 192, 4096), rows, stride, freq, source="x.yaml")
    tier, addr = p.locate(np.arange(8))
    assert tier.tolist() == [1, 0, 1, 1, 1, 1, 0, 1]
    assert addr[1] == 0 and addr[6] == 64       # table 0's region, then table 1's
    # ties (rows 2 and 3, read once each) keep row-id order in the slow tier
    assert addr[3] - addr[2] == 64


def test_placement_that_does_not_fit_names_the_tiers():
    with pytest.raises(InputError, match="tiers 't0', 't1' hold"):
        place("whole_tables", rooms(100, 100), np.array([10]), np.array([64]), None,
              source="x.yaml")
    with pytest.raises(InputError, match="expected one of: hot_rows, whole_tables"):
        place("coldest", rooms(100), np.array([1]), np.array([64]), None, source="x.yaml")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=5), st.integers(0, 2**32),
       st.sampled_from(["whole_tables", "hot_rows"]))
def test_rows_never_overlap_and_stay_within_budget(table_rows, seed, policy):
    rng = np.random.default_rng(seed)
    rows = np.array(table_rows)
    stride = rng.choice([4, 64, 100, 256], rows.size)
    total = int((rows * stride).sum())
    budgets = (total // 3 + 64 * rows.size * 2, total + 64 * rows.size * 2)
    freq = rng.integers(0, 20, int(rows.sum()))
    p = place(policy, rooms(*budgets), rows, stride, freq, source="x.yaml")
    tier, addr = p.locate(np.arange(int(rows.sum())))
    sizes = np.repeat(stride, rows)
    for k, budget in enumerate(budgets):
        mine = np.flatnonzero(tier == k)
        order = mine[np.argsort(addr[mine])]
        ends = addr[order] + sizes[order]
        assert np.all(addr[order][1:] >= ends[:-1])          # no two rows overlap
        assert (ends.max() if order.size else 0) <= budget
    if policy == "hot_rows":
        hot, cold = freq[tier == 0], freq[tier == 1]
        if hot.size and cold.size:
            assert hot.min() >= cold.max()
