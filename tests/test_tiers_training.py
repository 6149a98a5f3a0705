"""Rows spread over several tiers, and training's read-modify-write traffic, end to end."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import experiment

from hwmodels.cache.software import SoftwareCache
from hwmodels.memory import units_touched
from simulator.runs.experiment import load_points, prepare, run_point

TWO_TIERS = {"tier": ["hbm", "dram"], "placement": "hot_rows", "budget": {"hbm": "96 KiB"},
             "link": "pcie"}


def run(write_experiment, data):
    path = write_experiment(data)
    _, points = load_points(path, {})
    return run_point(points[0], str(path)).row, points[0], str(path)


def lookups(point, source):
    """Per batch: global rows and row bytes of each lookup, and the system's placement."""
    system, meta, batches = prepare(point, source)
    out = []
    for batch in batches():
        sizes = np.repeat(meta.row_bytes, np.diff(batch.table_bounds()))
        out.append((batch.global_rows(meta.row_base), sizes))
    return system, meta, out


def test_hot_rows_in_the_compute_tier_are_read_there_and_the_rest_fetched(write_experiment):
    row, point, source = run(write_experiment, experiment(system__cache=None,
                                                          system__tables=TWO_TIERS))
    system, _, batches = lookups(point, source)
    fetched = local = 0
    for keys, sizes in batches:
        tier, _ = system.placement.locate(keys)
        fetched += int(sizes[tier == 1].sum())
        local += int((tier == 0).sum())
    assert fetched > 0 and local > 0
    assert row["bytes_read_dram"] == fetched and row["bytes_pcie"] == fetched
    assert row["bytes_wasted_dram"] == 0            # 64 B and 128 B rows, 64 B lines
    total = sum(k.size for k, _ in batches)
    assert row["lookups"] == total
    assert row["lookups_hbm"] == local and row["lookups_dram"] == total - local
    assert row["local_hit_rate"] == pytest.approx(local / total)
    # the profile ranks rows by reads: the hot tier serves more than its share of bytes
    assert local / total > 96 * 1024 / (5000 * 64 + 3000 * 128)


def test_cache_only_for_the_tiers_it_caches_with_functional_check(write_experiment):
    data = experiment(system__tables=TWO_TIERS, run__functional=True)
    data["system"]["cache"]["caches"] = ["dram"]
    row, _, _ = run(write_experiment, data)
    assert row["functional_checked_bags"] > 0
    assert row["cache_hits"] + row["cache_misses"] < row["lookups"]   # hbm rows bypass it


def test_direct_tier_has_no_link_stage(write_experiment):
    data = experiment(system__cache=None, system__tables={"tier": "dram", "link": "direct"})
    row, _, _ = run(write_experiment, data)
    assert row["bytes_pcie"] == 0 and row["bytes_read_dram"] > 0


@pytest.mark.parametrize("optimizer,state", [("sgd", 0), ("rowwise_adagrad", 4)])
def test_training_reads_and_writes_each_distinct_row_and_its_state(write_experiment,
                                                                   optimizer, state):
    data = experiment(system__cache=None, run__mode="training", run__optimizer=optimizer)
    row, point, source = run(write_experiment, data)
    system, _, batches = lookups(point, source)
    forward = update = 0
    for keys, sizes in batches:     # whole 64 B lines, as many as each row touches
        _, address = system.placement.locate(keys)
        forward += int(units_touched(address, sizes, 64).sum()) * 64
        _, first = np.unique(keys, return_index=True)
        update += int(units_touched(address[first], sizes[first] + state, 64).sum()) * 64
    assert row["bytes_read_dram"] == forward + update
    assert row["bytes_written_dram"] == update


def test_training_writes_back_dirty_rows_the_cache_evicts(write_experiment):
    data = experiment(run__mode="training", run__optimizer="sgd",
                      run__arrivals={"mode": "closed", "concurrency": 1})
    row, point, source = run(write_experiment, data)
    system, meta, batches = lookups(point, source)
    cache = SoftwareCache(system.cache.slots, 8, "lru", meta.total_rows)
    dirty = np.zeros(cache.slots, dtype=bool)
    writebacks = written_back_bytes = 0
    home_updates = 0
    for keys, sizes in batches:
        before = cache.tags.copy()
        hit, slot = cache.lookup(keys)
        _, first = np.unique(keys, return_index=True)
        gone = cache.tags[slot[first]] != keys[first]     # evicted later in its own batch
        home_updates += int(sizes[first][gone].sum())
        first_fill = np.unique(slot[~hit])
        victims = before[first_fill]
        evicted = dirty[first_fill] & (victims >= 0)
        writebacks += int(evicted.sum())
        table = np.searchsorted(meta.row_base, victims[evicted], side="right") - 1
        written_back_bytes += int(meta.row_bytes[table].sum())
        dirty[first_fill] = False
        dirty[slot[first][~gone]] = True
    assert writebacks > 0
    assert row["cache_writebacks"] == writebacks
    # dram writes: write-backs, and updates of rows evicted within their own batch
    assert row["bytes_written_dram"] == written_back_bytes + home_updates


def test_concurrent_training_queries_keep_the_invariants(write_experiment):
    data = experiment(run__mode="training", run__arrivals={"mode": "closed", "concurrency": 4},
                      system__tables=TWO_TIERS)
    data["system"]["cache"]["caches"] = ["dram"]
    row, _, _ = run(write_experiment, data)
    assert row["cache_writebacks"] > 0
    assert row["bytes_written_dram"] > 0 and row["bytes_written_hbm"] > 0
