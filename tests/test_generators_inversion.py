"""The opt-in ``inversion`` row sampler (bounded Zipf by rejection-inversion, keyed scatter),
and the default ``numpy`` sampler's traces, unchanged by it."""

from __future__ import annotations

import hashlib

import numba
import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from embsim.errors import InputError
from simulator.core.config import GeneratorConfig
from traces import inversion
from traces.generators import synthesize
from traces.schema import TableSpec


def generate(tables, pooling, **kwargs):
    meta, batches = synthesize(tables, pooling, **kwargs)
    return meta, list(batches)


def fingerprint(batches) -> str:
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(batch.indices.astype(np.int64).tobytes())
        digest.update(batch.offsets.astype(np.int64).tobytes())
        if batch.weights is not None:
            digest.update(batch.weights.tobytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize(("kwargs", "expected"), [
    (dict(alpha=1.2, reuse=0.2, pooling_dist="normal", pooling_sigma=2.0, seed=7),
     "cd013a71a2ac6a53"),
    (dict(alpha=1.05, seed=1, weighted=True), "69cae0305fe69707"),
    (dict(alpha=0.0, seed=3, reuse=0.1), "df1459ae6afea7d8"),
])
@pytest.mark.parametrize("sampler", [None, "numpy"])
def test_default_sampler_traces_are_unchanged(kwargs, expected, sampler):
    """Fingerprints taken on main before the inversion sampler existed."""
    extra = {} if sampler is None else {"sampler": sampler}
    meta, batches = generate([TableSpec(1000, 8), TableSpec(77, 4)], [5, 3], batches=3,
                             batch_size=8, **kwargs, **extra)
    assert fingerprint(batches) == expected
    assert "sampler" not in meta.provenance


def inversion_trace(seed, **kwargs):
    tables = [TableSpec(1000, 8), TableSpec(20, 4), TableSpec(100_003, 2)]
    args = dict(batches=3, batch_size=32, alpha=1.05, sampler="inversion") | kwargs
    return generate(tables, [6, 5, 40], seed=seed, **args)


def test_same_seed_same_trace_other_seed_other_trace():
    kwargs = dict(reuse=0.2, pooling_dist="normal", pooling_sigma=2.0)
    meta, first = inversion_trace(7, **kwargs)
    _, again = inversion_trace(7, **kwargs)
    _, other = inversion_trace(8, **kwargs)
    assert fingerprint(first) == fingerprint(again) != fingerprint(other)
    assert meta.provenance["sampler"] == "inversion"
    _, default = inversion_trace(7, sampler="numpy", **kwargs)
    assert fingerprint(default) != fingerprint(first)


def test_trace_does_not_depend_on_the_thread_count():
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        _, single = inversion_trace(3)
    finally:
        numba.set_num_threads(threads)
    _, parallel = inversion_trace(3)
    assert fingerprint(single) == fingerprint(parallel)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.05, 1.5])
def test_rows_are_distinct_per_bag_and_within_the_table(alpha):
    meta, batches = inversion_trace(5, alpha=alpha)
    for batch in batches:
        assert batch.indices.dtype == np.int64
        table = batch.table_of_lookup()
        assert np.all(batch.indices >= 0) and np.all(batch.indices < meta.rows[table])
        for t in range(3):
            for b in range(batch.batch_size):
                bag = batch.indices[batch.offsets[t * 32 + b]: batch.offsets[t * 32 + b + 1]]
                assert np.unique(bag).size == bag.size


def test_a_bag_may_take_every_row_of_a_small_table():
    _, batches = generate([TableSpec(6, 8)], 6, batches=2, batch_size=50, alpha=0.5,
                          sampler="inversion", seed=2)
    for batch in batches:
        assert all(sorted(bag) == list(range(6)) for bag in batch.indices.reshape(50, 6).tolist())


def ranks(alpha: float, rows: int, draws: int, key: int = 11) -> np.ndarray:
    """``draws`` one-lookup bags of one table: 0-based ranks, before the scatter."""
    table_rows = np.array([rows])
    low, high, squeeze = inversion.zipf_bounds(table_rows, alpha)
    need = np.ones(draws, dtype=np.int64)
    out, found = inversion.draw_bags(
        need, np.zeros(draws, dtype=np.int64), np.arange(draws + 1, dtype=np.int64),
        table_rows, low, high, alpha, squeeze, np.uint64(key), 1, False,
        np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64),
        np.zeros((1, inversion.SCATTER_KEYS), dtype=np.uint64), 8)
    assert np.all(found == 1)
    return out


def chi_square(sample: np.ndarray, alpha: float, rows: int) -> tuple[float, int]:
    """Pearson's statistic of the sample's rank counts against the bounded Zipf pmf (ranks
    binned so that each bin expects at least 20), and its degrees of freedom."""
    pmf = np.arange(1, rows + 1, dtype=np.float64) ** -alpha
    pmf /= pmf.sum()
    expected = pmf * sample.size
    counts = np.bincount(sample, minlength=rows).astype(np.float64)
    edges = [0]
    while edges[-1] < rows:            # bins of consecutive ranks, each expecting >= 20
        end = edges[-1] + 1
        while end < rows and expected[edges[-1]:end].sum() < 20:
            end += 1
        edges.append(end)
    e = np.add.reduceat(expected, edges[:-1])
    o = np.add.reduceat(counts, edges[:-1])
    return float(np.sum((o - e) ** 2 / e)), len(e) - 1


@pytest.mark.parametrize(("alpha", "rows"), [(1.05, 1000), (1.2, 1000), (0.5, 300),
                                             (1.0, 5000), (2.5, 50), (1.05, 2)])
def test_ranks_follow_the_bounded_zipf_pmf(alpha, rows):
    sample = ranks(alpha, rows, 200_000)
    assert sample.min() >= 0 and sample.max() < rows
    statistic, dof = chi_square(sample, alpha, rows)
    assert statistic < stats.chi2.ppf(0.9999, dof), (statistic, dof)


def test_the_pmf_check_tells_the_exponent_apart():
    """A sample of Zipf(1.05) fails the check against 1.2, and the other way round; rank 1's
    frequency is within 5 standard errors of its own pmf and far from the other's."""
    for drawn, other in ((1.05, 1.2), (1.2, 1.05)):
        sample = ranks(drawn, 1000, 200_000, key=5)
        statistic, dof = chi_square(sample, other, 1000)
        assert statistic > 10 * stats.chi2.ppf(0.9999, dof)
        first = np.mean(sample == 0)
        for alpha, near in ((drawn, True), (other, False)):
            p = 1 / np.sum(np.arange(1, 1001, dtype=np.float64) ** -alpha)
            error = np.sqrt(p * (1 - p) / sample.size)
            assert (abs(first - p) < 5 * error) == near


@pytest.mark.parametrize("rows", [1, 2, 3, 7, 64, 1000, 1023, 1025, 4096, 100_003])
def test_scatter_is_a_bijection_of_the_rows(rows):
    keys = np.random.default_rng(rows).integers(0, 2**64, size=inversion.SCATTER_KEYS,
                                                dtype=np.uint64)
    mask, shift = inversion.scatter_shape(rows)
    image = inversion.scatter_rows(np.arange(rows), rows, mask, shift, keys)
    np.testing.assert_array_equal(np.sort(image), np.arange(rows))
    if rows >= 1000:
        assert np.mean(image == np.arange(rows)) < 0.01
        other = inversion.scatter_rows(np.arange(rows), rows, mask, shift, keys ^ np.uint64(1))
        assert np.mean(other == image) < 0.01


def test_hot_rows_are_scattered_over_the_table():
    rows = 100_000
    _, batches = generate([TableSpec(rows, 8)], 10, batches=4, batch_size=500, alpha=1.2,
                          sampler="inversion", seed=3)
    counts = np.bincount(np.concatenate([b.indices for b in batches]), minlength=rows)
    assert np.sort(counts)[::-1][:100].sum() > 0.25 * counts.sum()
    hottest = np.argsort(counts)[::-1][:200]
    assert np.median(hottest) > rows / 10
    assert stats.kstest(hottest / rows, "uniform").pvalue > 1e-4


def test_alpha_zero_is_the_default_uniform_and_low_alpha_is_skewed():
    tables = [TableSpec(1000, 8)]
    _, uniform = generate(tables, 5, batches=2, batch_size=16, alpha=0.0, seed=4,
                          sampler="inversion")
    _, default = generate(tables, 5, batches=2, batch_size=16, alpha=0.0, seed=4)
    assert fingerprint(uniform) == fingerprint(default)
    _, skewed = generate(tables, 5, batches=40, batch_size=100, alpha=0.9, seed=4,
                         sampler="inversion")
    counts = np.bincount(np.concatenate([b.indices for b in skewed]), minlength=1000)
    assert counts.max() > 20 * counts.mean()     # rank 1 takes some 2.6% of the draws


def test_alpha_too_large_is_an_input_error():
    _, batches = synthesize([TableSpec(1000, 8)], 20, batches=1, batch_size=8, alpha=8.0,
                            sampler="inversion")
    with pytest.raises(InputError, match="alpha too large") as err:
        next(batches)
    assert err.value.field == "alpha"


def test_bad_sampler_is_an_input_error_naming_the_field():
    with pytest.raises(InputError, match="numpy, inversion") as err:
        synthesize([TableSpec(100, 8)], 2, batches=1, batch_size=2, sampler="ziggurat")
    assert err.value.field == "sampler"
    with pytest.raises(InputError) as err:
        synthesize([TableSpec(10, 8)], 12, batches=1, batch_size=2, alpha=0.5,
                   sampler="inversion")
    assert err.value.field == "pooling"
    with pytest.raises(ValidationError, match="sampler"):
        GeneratorConfig(model="rm1", sampler="ziggurat")
    assert GeneratorConfig(model="rm1", sampler="inversion").sampler == "inversion"
