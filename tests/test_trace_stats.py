"""Streaming trace statistics: counts, distinct rows, pooling distribution, Zipf fit."""

from __future__ import annotations

import numpy as np
import pytest

from traces.batch import Batch
from traces.generators import synthesize
from traces.schema import TableSpec, TraceMeta
from traces.stats import fit_zipf_alpha, trace_stats


def test_counts_distinct_rows_and_pooling_of_a_known_trace():
    meta = TraceMeta([TableSpec(10, 4), TableSpec(100, 8)], batch_size=2)
    # batch 0: table 0 bags [1, 1, 2] and [], table 1 bags [5] and [5, 6]
    first = Batch(0, np.array([1, 1, 2, 5, 5, 6]), np.array([0, 3, 3, 4, 6]), 2, 2)
    # batch 1: table 0 bags [9] and [1], table 1 bags [] and [7, 7, 7, 7]
    second = Batch(1, np.array([9, 1, 7, 7, 7, 7]), np.array([0, 1, 2, 2, 6]), 2, 2)
    stats = trace_stats(meta, [first, second])
    assert stats["lookups"] == 12 and stats["batches"] == 2
    assert stats["unique_rows"] == 6
    assert [t["unique_rows"] for t in stats["tables"]] == [3, 3]
    assert [t["lookups"] for t in stats["tables"]] == [5, 7]
    lengths = np.array([3, 0, 1, 2, 1, 1, 0, 4])
    pooling = stats["pooling"]
    assert pooling["bags"] == 8 and pooling["min"] == 0 and pooling["max"] == 4
    assert pooling["mean"] == pytest.approx(lengths.mean())
    assert pooling["std"] == pytest.approx(lengths.std())
    for q in (50, 95, 99):
        assert pooling[f"p{q}"] == np.percentile(lengths, q, method="inverted_cdf")


def test_distinct_counting_does_not_grow_with_repetition():
    meta, batches = synthesize([TableSpec(50, 4)], 5, batches=200, batch_size=10, seed=1)
    stats = trace_stats(meta, batches)
    assert stats["lookups"] == 200 * 10 * 5
    assert stats["unique_rows"] == 50  # every row seen, counted once


def test_zipf_fit_recovers_the_generator_exponent():
    meta, batches = synthesize([TableSpec(10**7, 8)], 1, batches=4, batch_size=50_000,
                               alpha=1.2, seed=2)
    alpha = trace_stats(meta, batches)["tables"][0]["zipf_alpha"]
    assert abs(alpha - 1.2) < 0.05


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.5, 2.5])
def test_zipf_fit_on_an_exact_power_law(alpha):
    ranks = np.arange(1, 20_001)
    counts = np.round(1e7 * ranks**-alpha).astype(np.int64)
    assert fit_zipf_alpha(np.random.default_rng(0).permutation(counts), 20_000) == \
        pytest.approx(alpha, abs=0.02)


def test_empty_table_has_no_alpha_and_empty_trace_has_no_pooling():
    meta = TraceMeta([TableSpec(10, 4)], batch_size=1)
    stats = trace_stats(meta, [])
    assert stats["lookups"] == 0 and stats["tables"][0]["zipf_alpha"] is None
    assert stats["pooling"]["mean"] is None and stats["pooling"]["bags"] == 0
