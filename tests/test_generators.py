"""Synthetic traces with FBGEMM generate_requests semantics, and the model presets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embsim.errors import InputError
from traces.generators import GENERATOR_NAME, GENERATORS, _first_distinct, synthesize
from traces.models import MODELS, model_preset
from traces.schema import TableSpec


def generate(tables, pooling, **kwargs):
    meta, batches = synthesize(tables, pooling, **kwargs)
    return meta, list(batches)


def all_indices(batches) -> np.ndarray:
    return np.concatenate([b.indices for b in batches])


@pytest.mark.parametrize("alpha", [1.0, 1.2])
def test_same_seed_same_trace_other_seed_other_trace(alpha):
    tables = [TableSpec(1000, 8), TableSpec(300, 4)]
    kwargs = dict(batches=3, batch_size=16, alpha=alpha, reuse=0.2, pooling_dist="normal",
                  pooling_sigma=2.0)
    _, first = generate(tables, [5, 9], seed=7, **kwargs)
    _, again = generate(tables, [5, 9], seed=7, **kwargs)
    _, other = generate(tables, [5, 9], seed=8, **kwargs)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.offsets, b.offsets)
    assert not np.array_equal(all_indices(first), all_indices(other))


def test_layout_shapes_and_row_ranges_per_table():
    tables = [TableSpec(10, 8), TableSpec(5000, 4), TableSpec(77, 2)]
    meta, batches = generate(tables, [3, 7, 1], batches=4, batch_size=6, alpha=1.1, seed=1)
    assert meta.num_batches == 4 and meta.batch_size == 6
    for index, batch in enumerate(batches):
        assert batch.index == index
        assert batch.offsets.size == 3 * 6 + 1 and batch.offsets.dtype == np.int64
        np.testing.assert_array_equal(batch.lengths(), np.repeat([[3], [7], [1]], 6, axis=1))
        table = batch.table_of_lookup()
        assert np.all(batch.indices >= 0) and np.all(batch.indices < meta.rows[table])


def test_uniform_rows_are_spread_evenly_with_replacement():
    _, batches = generate([TableSpec(100, 8)], 20, batches=5, batch_size=400, alpha=1.0,
                          seed=2)
    counts = np.bincount(all_indices(batches), minlength=100)
    assert counts.min() > 0.8 * 400 and counts.max() < 1.2 * 400  # 40,000 draws, 400 each
    bags = batches[0].indices.reshape(400, 20)
    assert any(len(set(bag)) < 20 for bag in bags.tolist())  # drawn with replacement


def test_zipf_is_skewed_distinct_per_bag_and_scattered_over_the_table():
    rows = 100_000
    _, batches = generate([TableSpec(rows, 8)], 10, batches=4, batch_size=500, alpha=1.2,
                          seed=3)
    for batch in batches:
        bags = batch.indices.reshape(500, 10)
        assert all(len(set(bag)) == 10 for bag in bags.tolist())
    counts = np.bincount(all_indices(batches), minlength=rows)
    top = np.sort(counts)[::-1]
    assert top[:100].sum() > 0.25 * counts.sum()  # top 0.1% of rows: > 25% of lookups
    hottest = np.argsort(counts)[::-1][:20]
    assert np.median(hottest) > rows / 10  # permuted: hot rows are not the low ids


def test_zipf_alpha_too_large_is_an_input_error():
    meta, batches = synthesize([TableSpec(1000, 8)], 20, batches=1, batch_size=8, alpha=8.0)
    with pytest.raises(InputError, match="alpha too large"):
        next(batches)


@pytest.mark.parametrize("reuse", [0.25, 0.6])
def test_reuse_fraction_matches_the_request(reuse):
    tables = [TableSpec(10**9, 8), TableSpec(10**9, 8)]
    _, batches = generate(tables, 10, batches=4, batch_size=200, reuse=reuse, seed=4)
    for previous, current in itertools.pairwise(batches):
        same = np.mean(previous.indices == current.indices)
        assert abs(same - reuse) < 0.01


def test_reuse_with_variable_pooling_copies_within_the_common_prefix():
    _, batches = generate([TableSpec(10**9, 8)], 10, batches=3, batch_size=300, reuse=0.5,
                          pooling_dist="normal", pooling_sigma=3.0, seed=5)
    for previous, current in itertools.pairwise(batches):
        span = min(previous.num_lookups, current.num_lookups)
        same = np.mean(previous.indices[:span] == current.indices[:span])
        assert abs(same - 0.5) < 0.01


@pytest.mark.parametrize(("dist", "sigma", "spread"), [
    ("fixed", 0.0, 0.0), ("normal", 4.0, 4.0), ("lognormal", 0.5, 10.0),
])
def test_pooling_distribution_mean_and_spread(dist, sigma, spread):
    _, batches = generate([TableSpec(10**6, 8)] * 2, [20, 20], batches=5, batch_size=1000,
                          pooling_dist=dist, pooling_sigma=sigma, alpha=1.05, seed=6)
    lengths = np.concatenate([b.lengths().ravel() for b in batches])
    assert lengths.min() >= 1
    assert abs(lengths.mean() - 20) < 0.3
    assert abs(lengths.std() - spread) < 0.1 * spread + 0.01


def test_variable_pooling_is_clipped_to_one_and_to_the_table_rows():
    _, batches = generate([TableSpec(12, 8)], 4, batches=2, batch_size=500, alpha=1.05,
                          pooling_dist="normal", pooling_sigma=6.0, zipf_oversample=20, seed=7)
    lengths = np.concatenate([b.lengths().ravel() for b in batches])
    assert lengths.min() == 1 and lengths.max() == 12


def test_batches_are_generated_lazily():
    meta, batches = synthesize([TableSpec(100, 8)], 2, batches=10**9, batch_size=4)
    assert next(batches).num_lookups == 8
    assert meta.num_batches == 10**9


def test_provenance_records_every_parameter():
    meta, _ = synthesize([TableSpec(100, 8)], 2, batches=3, batch_size=4, alpha=1.1, reuse=0.1,
                         pooling_dist="lognormal", pooling_sigma=0.3, zipf_oversample=5, seed=9)
    assert meta.provenance == {
        "generator": GENERATOR_NAME, "seed": 9, "alpha": 1.1, "reuse": 0.1, "pooling": [2.0],
        "pooling_dist": "lognormal", "pooling_sigma": 0.3, "zipf_oversample": 5,
        "batches": 3, "batch_size": 4,
    }
    assert GENERATORS.get(GENERATOR_NAME) is synthesize


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(pooling=[1, 2, 3]), "pooling"),
    (dict(pooling=0.2), "pooling"),
    (dict(reuse=1.5), "reuse"),
    (dict(batches=0), "batches"),
    (dict(batch_size=0), "batch_size"),
    (dict(alpha=-1.0), "alpha"),
    (dict(zipf_oversample=0), "zipf_oversample"),
    (dict(pooling_sigma=-1.0), "pooling_sigma"),
    (dict(pooling_dist="poisson"), "pooling_dist"),
    (dict(pooling=200, alpha=1.1), "pooling"),
])
def test_bad_parameters_are_input_errors(kwargs, field):
    args = dict(pooling=2, batches=1, batch_size=2) | kwargs
    with pytest.raises(InputError) as err:
        synthesize([TableSpec(100, 8), TableSpec(100, 8)], **args)
    assert err.value.field == field


def test_unknown_pooling_distribution_lists_the_choices():
    with pytest.raises(InputError, match="fixed, lognormal, normal"):
        synthesize([TableSpec(100, 8)], 2, batches=1, batch_size=2, pooling_dist="poisson")


@pytest.mark.parametrize(("name", "tables", "rows", "dim", "pooling"), [
    ("rm1", 8, 4_000_000, 32, 80), ("rm2", 32, 500_000, 64, 120), ("rm3", 10, 2_000_000, 32, 20),
])
def test_deeprecsys_model_presets(name, tables, rows, dim, pooling):
    preset = model_preset(name)
    assert len(preset.tables) == tables and len(preset.pooling) == tables
    assert {(t.rows, t.dim) for t in preset.tables} == {(rows, dim)}
    assert set(preset.pooling) == {pooling}
    assert "DeepRecSys" in preset.source


def test_unknown_model_lists_the_choices():
    with pytest.raises(InputError, match="rm1, rm2, rm3"):
        model_preset("rm9")
    assert MODELS.names() == ["mlperf-dlrm", "rm1", "rm2", "rm3"]


@given(st.lists(st.lists(st.integers(0, 40), max_size=60), min_size=1, max_size=8),
       st.integers(0, 30))
@settings(deadline=None)          # the first example compiles the kernel
def test_first_distinct_keeps_each_bags_first_distinct_draws_in_order(bags, wanted):
    """Each bag keeps its first ``need`` distinct draws in draw order, and says how many it
    found (fewer where its draws hold fewer distinct values)."""
    draws = np.array([v for bag in bags for v in bag], dtype=np.int64)
    draw_offsets = np.concatenate([[0], np.cumsum([len(bag) for bag in bags])])
    need = np.array([min(wanted, len(bag) + 1) for bag in bags], dtype=np.int64)
    out_start = np.concatenate([[0], np.cumsum(need)[:-1]]).astype(np.int64)
    out = np.full(int(need.sum()), -7, dtype=np.int64)
    found = _first_distinct(draws, draw_offsets.astype(np.int64), need, out, out_start)
    for b, bag in enumerate(bags):
        expected = list(dict.fromkeys(bag))[:need[b]]
        assert found[b] == len(expected)
        assert out[out_start[b]: out_start[b] + found[b]].tolist() == expected
