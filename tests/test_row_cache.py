"""The row-cache interface: registry, options validation, the per-key rule, SoftwareCache."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embsim.errors import InputError
from hwmodels.cache.row_cache import (
    ROW_CACHES,
    BatchUniques,
    build_row_cache,
    parse_options,
    per_key,
)
from hwmodels.cache.software import SoftwareCache


def test_every_kind_is_registered():
    assert {"software", "fbgemm_uvm", "colossal", "hugectr", "pinned"} <= set(ROW_CACHES)


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(InputError, match="expected one of: .*fbgemm_uvm") as err:
        parse_options("belady", {})
    assert err.value.field == "system.cache.kind"


@pytest.mark.parametrize("kind, extras, field", [
    ("fbgemm_uvm", {"policy": "fifo"}, "system.cache.policy"),
    ("colossal", {"warmup_ratio": 1.5}, "system.cache.warmup_ratio"),
    ("colossal", {"strategy": "lru"}, "system.cache.strategy"),
    ("hugectr", {"fraction": 0}, "system.cache.fraction"),
    ("pinned", {"ways": 8}, "system.cache.ways"),
])
def test_bad_options_name_the_field(kind, extras, field):
    with pytest.raises(InputError) as err:
        parse_options(kind, extras, source="exp.yaml")
    assert err.value.field == field and err.value.source == "exp.yaml"


def test_a_cache_must_hold_a_row():
    with pytest.raises(InputError, match="at least one row"):
        build_row_cache("software", {}, slots=0, table_rows=np.array([10]))


def test_per_key_rule():
    # distinct rows: 0 cached before, 1 filled now, 2 served uncached; keys 1,0,1,2,2
    hit, slot = per_key(np.array([5, 7, -1]), np.array([True, False, False]),
                        first=np.array([1, 0, 3]), inverse=np.array([1, 0, 1, 2, 2]))
    assert hit.tolist() == [False, True, True, False, False]
    assert slot.tolist() == [7, 5, 7, -1, -1]


def test_software_kind_behaves_as_software_cache():
    keys = np.random.default_rng(0).integers(0, 50, 400)
    kind = build_row_cache("software", {"ways": 4, "policy": "lfu"}, slots=16,
                           table_rows=np.array([20, 30]))
    plain = SoftwareCache(16, 4, "lfu", 50)
    for part in np.array_split(keys, 7):
        got, want = kind.lookup(part), plain.lookup(part)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert (kind.hits, kind.misses, kind.evictions) == (plain.hits, plain.misses,
                                                         plain.evictions)
    assert kind.slots == plain.slots


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 49), min_size=1, max_size=200))
def test_batch_uniques_equal_numpy_unique_and_leave_the_scratch_clean(values):
    keys = np.array(values, dtype=np.int64)
    uniques = BatchUniques(50)
    for _ in range(2):                       # the scratch is reusable
        got = uniques(keys)
        want = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        for a, b in zip(got, want, strict=True):
            assert np.array_equal(a, b.reshape(-1))
        assert (uniques.position == -1).all()
