"""The GPU embedding cache kinds inside the simulator: data path, traffic, counters."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import embsim, experiment

from simulator.runs.experiment import load_points, prepare, run_point

KINDS = {
    "fbgemm_uvm": {"kind": "fbgemm_uvm", "policy": "lru"},
    "fbgemm_lfu": {"kind": "fbgemm_uvm", "policy": "lfu"},
    "colossal": {"kind": "colossal", "strategy": "dataset", "profile_batches": 2,
                 "load_factor": 0.2},
    "hugectr": {"kind": "hugectr"},
    "pinned": {"kind": "pinned", "profile_batches": 2},
}


def cache_experiment(options, load_factor=0.05, **more):
    data = experiment(**{"run__functional": True, **more})
    data["system"]["cache"] = {"tier": "hbm", "load_factor": load_factor, **options}
    return data


def run(write_experiment, data):
    path = write_experiment(data)
    _, points = load_points(path, {})
    return run_point(points[0], str(path)).row, points[0], str(path)


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize("mode", ["inference", "training"])
def test_every_kind_delivers_the_right_rows_and_counts_its_traffic(write_experiment, name,
                                                                    mode):
    row, point, source = run(write_experiment, cache_experiment(KINDS[name], run__mode=mode))
    assert row["functional_checked_bags"] > 0                 # pooled values match torch
    assert row["cache_hits"] + row["cache_misses"] == row["lookups"]
    system, meta, batches = prepare(point, source)
    missed = 0
    cache = system.cache
    for batch in batches():
        hit, _ = cache.lookup(batch.global_rows(meta.row_base))
        sizes = np.repeat(meta.row_bytes, np.diff(batch.table_bounds()))
        missed += int(sizes[~hit].sum())
    if mode == "inference":
        assert row["bytes_read_dram"] == missed                # each miss read from DRAM once
        assert row["bytes_pcie"] == missed


def test_fbgemm_counters_and_conflict_misses_reach_the_results(write_experiment):
    row = run(write_experiment, cache_experiment(KINDS["fbgemm_uvm"], load_factor=0.004))[0]
    assert row["cache_num_calls"] == 6
    assert row["cache_num_requested_indices"] == row["lookups"]
    assert row["cache_num_conflict_unique_misses"] > 0        # tiny cache: sets overflow


def test_pinned_rows_are_never_filled(write_experiment):
    pinned = run(write_experiment, cache_experiment(KINDS["pinned"], run__functional=False))[0]
    assert pinned["cache_evictions"] == 0
    outputs = pinned["bytes_written_hbm"]
    lru = run(write_experiment, cache_experiment(KINDS["fbgemm_uvm"],
                                                 run__functional=False))[0]
    assert outputs < lru["bytes_written_hbm"]                  # LRU also writes its fills


def test_colossal_batch_larger_than_the_cache_fails_its_point_clearly(write_experiment):
    options = {**KINDS["colossal"], "load_factor": 0.005}
    path = write_experiment(cache_experiment(options))
    proc = embsim("run", str(path), "--out", str(path.parent / "out"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "system.cache: a batch has" in proc.stderr
    assert "unique rows but the cache holds 40 rows" in proc.stderr
