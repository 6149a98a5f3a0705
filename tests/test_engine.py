"""End-to-end runs of small systems: closed forms, invariants, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import experiment, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.core.workload import open_workload
from simulator.runs.experiment import Point, load_points, run_point


def run(path: Path, **sets) -> tuple[dict, Point]:
    _, points = load_points(path, sets)
    assert len(points) == 1
    return run_point(points[0], str(path), per_query=True), points[0]


def all_lookups(point: Point, path: Path) -> np.ndarray:
    meta, batches = open_workload(point.config.workload, str(path))
    return np.concatenate([b.global_rows(meta.row_base) for b in batches()])


def test_cache_larger_than_working_set_hits_all_but_first_touches(write_experiment):
    path = write_experiment(experiment(system__cache={"tier": "hbm", "load_factor": 1.0,
                                                      "ways": "full"}))
    result, point = run(path)
    keys = all_lookups(point, path)
    row = result.row
    assert row["lookups"] == keys.size
    assert row["cache_hit_rate"] == pytest.approx(1 - np.unique(keys).size / keys.size)
    assert row["cache_evictions"] == 0


def test_bytes_moved_equal_misses_times_row_bytes(write_experiment):
    # both tables' rows (64 B and 128 B) are multiples of DRAM's 64 B granularity
    path = write_experiment(experiment())
    result, point = run(path)
    row = result.row
    meta, batches = open_workload(point.config.workload, str(path))
    assert row["cache_hits"] + row["cache_misses"] == row["lookups"]
    # replay the cache alone to learn which lookups missed and their sizes
    from hwmodels.cache.software import SoftwareCache
    cache = SoftwareCache(64 * 1024 // 128, 8, "lru", meta.total_rows)
    missed_bytes = 0
    for batch in batches():
        hit, _ = cache.lookup(batch.global_rows(meta.row_base))
        sizes = np.repeat(meta.row_bytes, np.diff(batch.table_bounds()))
        missed_bytes += int(sizes[~hit].sum())
    assert cache.misses == row["cache_misses"]
    assert row["bytes_pcie"] == missed_bytes
    assert row["bytes_dram"] == missed_bytes
    assert row["bytes_read_dram"] == missed_bytes and row["bytes_written_dram"] == 0
    assert row["bytes_written_hbm"] >= missed_bytes   # fills + pooled outputs


def test_remote_tables_without_cache_are_bounded_by_the_link(write_experiment):
    data = experiment(system__cache=None, run__arrivals={"mode": "closed", "concurrency": 8})
    data["workload"]["generator"].update(alpha=0.0, batches=16, batch_size=256)
    path = write_experiment(data)
    row = run(path)[0].row
    link_bw = 64e9
    assert np.isnan(row["cache_hit_rate"])
    assert row["bytes_pcie"] / row["sim_time_s"] <= link_bw * (1 + 1e-9)
    assert row["bw_gbps_pcie"] == pytest.approx(row["bytes_pcie"] / row["sim_time_s"] / 1e9)
    assert row["bw_gbps_pcie"] >= 0.9 * link_bw / 1e9


def test_local_tables_uniform_traffic_are_bounded_by_memory_bandwidth(write_experiment):
    data = experiment(system__cache=None, system__tables={"tier": "hbm"},
                      run__arrivals={"mode": "closed", "concurrency": 8})
    data["workload"]["generator"].update(alpha=0.0, batches=16, batch_size=512)
    path = write_experiment(data)
    row = run(path)[0].row
    hbm_bw = 3.2e12
    achieved = row["bytes_hbm"] / row["sim_time_s"]
    assert achieved <= hbm_bw * (1 + 1e-9)
    assert achieved >= 0.8 * hbm_bw
    assert row["bytes_pcie"] == 0


def test_single_query_analytic_latency_is_the_closed_form(write_experiment):
    data = experiment(system__cache=None, system__tables={"tier": "hbm"},
                      run__fidelity="analytic")
    data["workload"]["generator"].update(batches=1, pooling=4)
    path = write_experiment(data)
    result, point = run(path)
    meta, batches = open_workload(point.config.workload, str(path))
    batch = next(batches())
    rows = np.repeat(meta.row_bytes, np.diff(batch.table_bounds()))
    # reads: each row in 32 B sectors; writes: one pooled row per bag
    moved = int((-(-rows // 32) * 32).sum()) + int((meta.row_bytes * 32).sum())
    expected_us = (500e-9 + moved / 3.2e12) * 1e6
    assert result.row["latency_p50_us"] == pytest.approx(expected_us)
    assert result.row["bytes_hbm"] == moved


def test_open_loop_light_load_sees_unloaded_latency_and_offered_rate(write_experiment):
    data = experiment(run__arrivals={"mode": "open", "qps": 2000}, system__cache=None,
                      system__tables={"tier": "hbm"}, run__fidelity="analytic")
    data["workload"]["generator"].update(batches=400, pooling=2, batch_size=4)
    path = write_experiment(data)
    result, _ = run(path)
    row = result.row
    assert row["queries"] == 400
    assert row["throughput_qps"] == pytest.approx(2000, rel=0.15)
    frame = result.per_query
    assert frame["latency_us"].max() < 1.0           # far below the 500 us inter-arrival gap
    assert frame["arrival_us"].is_monotonic_increasing


def test_closed_loop_concurrency_raises_throughput_and_latency(write_experiment):
    data = experiment()
    data["workload"]["generator"].update(batches=12)
    rows = []
    for concurrency in (1, 4):
        data["run"]["arrivals"]["concurrency"] = concurrency
        rows.append(run(write_experiment(data, f"c{concurrency}.yaml"))[0].row)
    assert rows[1]["throughput_qps"] > rows[0]["throughput_qps"]
    assert rows[1]["latency_mean_us"] > rows[0]["latency_mean_us"]


def test_same_config_and_seed_give_identical_results(write_experiment):
    path = write_experiment(experiment(run__arrivals={"mode": "open", "qps": 50000}))
    first = run(path)[0]
    second = run(path)[0]
    a = {k: v for k, v in first.row.items() if k != "wall_s"}
    b = {k: v for k, v in second.row.items() if k != "wall_s"}
    assert a == b
    assert first.per_query.equals(second.per_query)
    other = run(path, **{"run.seed": 9})[0]
    assert other.row["latency_mean_us"] != first.row["latency_mean_us"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(alpha=st.sampled_from([0.0, 1.05, 1.3]), ways=st.sampled_from([1, 4, "full"]),
       size_kib=st.integers(1, 256), concurrency=st.integers(1, 6),
       fidelity=st.sampled_from(["analytic", "fast"]), policy=st.sampled_from(["lru", "lfu"]))
def test_invariants_hold_across_configurations(tmp_path_factory, alpha, ways, size_kib,
                                               concurrency, fidelity, policy):
    data = experiment(system__cache={"tier": "hbm", "size": f"{size_kib} KiB", "ways": ways,
                                     "policy": policy},
                      run__fidelity=fidelity,
                      run__arrivals={"mode": "closed", "concurrency": concurrency})
    data["workload"]["generator"]["alpha"] = alpha
    path = write_yaml(tmp_path_factory.mktemp("inv") / "exp.yaml", data)
    result, point = run(path)   # run_point checks every invariant and raises on a break
    row = result.row
    assert row["queries"] == 6 == result.per_query["query"].nunique()
    assert row["cache_hits"] + row["cache_misses"] == row["lookups"]
    assert row["bytes_dram"] == row["bytes_pcie"]
    assert row["bytes_dram"] == row["requests_dram"] * 64
    assert (result.per_query["latency_us"] > 0).all()


def test_processor_overheads_add_per_table_bag_and_lookup(write_experiment):
    data = experiment(system__cache=None, system__tables={"tier": "hbm"},
                      run__fidelity="analytic")
    data["workload"]["generator"].update(batches=1, pooling=4)
    base = run(write_experiment(data, "base.yaml"))[0].row["latency_p50_us"]
    data["system"]["compute"].update(call_overhead="5 us", bag_overhead="10 ns",
                                     lookup_overhead="1 ns")
    slow = run(write_experiment(data, "slow.yaml"))[0].row["latency_p50_us"]
    tables, bags, lookups = 2, 2 * 32, 2 * 32 * 4
    assert slow - base == pytest.approx(tables * 5 + bags * 0.01 + lookups * 0.001)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_element_overhead_is_paid_per_element_whatever_the_type(write_experiment, dtype):
    """Tables of dims 16 and 32, 32 bags of 4 rows each: 32 * 4 * (16 + 32) elements."""
    data = experiment(system__cache=None, system__tables={"tier": "hbm"},
                      run__fidelity="analytic")
    data["workload"]["generator"].update(batches=1, pooling=4, dtype=dtype)
    path = write_experiment(data, "base.yaml")
    result, point = run(path)
    meta, _ = open_workload(point.config.workload, str(path))
    assert [(t.dim, t.dtype) for t in meta.tables] == [(16, dtype), (32, dtype)]
    base = result.row["latency_p50_us"]
    data["system"]["compute"]["element_overhead"] = "0.5 ns"
    slow = run(write_experiment(data, "slow.yaml"))[0].row["latency_p50_us"]
    assert slow - base == pytest.approx(32 * 4 * (16 + 32) * 0.5e-3)


def test_lookup_floor_raises_narrow_rows_to_it_and_leaves_wide_rows(write_experiment):
    """Tables of dims 16 and 32, 32 bags of 4 rows each, 0.5 ns per element above 1 ns per
    lookup: a 20 ns floor lifts both tables' lookups (9 and 17 ns) to it; a 12 ns floor lifts
    only the dim-16 table's."""
    data = experiment(system__cache=None, system__tables={"tier": "hbm"},
                      run__fidelity="analytic")
    data["workload"]["generator"].update(batches=1, pooling=4)
    data["system"]["compute"].update(lookup_overhead="1 ns", element_overhead="0.5 ns")
    base = run(write_experiment(data, "base.yaml"))[0].row["latency_p50_us"]
    per_table = 32 * 4
    for floor, added_ns in ((20, per_table * (11 + 3)), (12, per_table * 3), (5, 0)):
        data["system"]["compute"]["lookup_floor"] = f"{floor} ns"
        row = run(write_experiment(data, f"floor{floor}.yaml"))[0].row
        assert row["latency_p50_us"] - base == pytest.approx(added_ns * 1e-3, abs=1e-9)


def test_remainder_overhead_is_paid_by_lookups_of_rows_that_are_not_whole_vectors(
        write_experiment):
    """Tables of dims 16 and 32, 32 bags of 4 rows each: with 16-element vectors both rows are
    whole vectors and pay nothing more; with 32-element ones the dim-16 table's lookups pay
    3 ns each, on top of the floor that lifts them."""
    data = experiment(system__cache=None, system__tables={"tier": "hbm"},
                      run__fidelity="analytic")
    data["workload"]["generator"].update(batches=1, pooling=4)
    data["system"]["compute"].update(lookup_floor="2 ns", remainder_overhead="3 ns")
    base = run(write_experiment(data, "base.yaml"))[0].row["latency_p50_us"]
    for vector, added_ns in ((16, 0), (32, 32 * 4 * 3), (1, 0)):
        data["system"]["compute"]["vector_elements"] = vector
        row = run(write_experiment(data, f"v{vector}.yaml"))[0].row
        assert row["latency_p50_us"] - base == pytest.approx(added_ns * 1e-3, abs=1e-9)


@pytest.mark.parametrize(("key", "value"), [("vector_elements", 0), ("remainder_overhead", "-1 ns"),
                                            ("threads", 0)])
def test_bad_processor_options_are_refused_naming_the_field(write_experiment, key, value):
    from embsim.errors import InputError

    data = experiment()
    data["system"]["compute"][key] = value
    with pytest.raises(InputError, match=f"system.compute.{key}"):
        load_points(write_experiment(data), {})


def test_tier_link_is_the_default_path_to_tables(write_experiment):
    data = experiment(system__tables={"tier": "dram"})
    data["system"]["memory"]["dram"]["link"] = "pcie"
    row = run(write_experiment(data))[0].row
    assert row["bytes_pcie"] == row["bytes_dram"] > 0


def test_cache_serves_only_the_tiers_it_caches(write_experiment):
    data = experiment()
    data["system"]["cache"]["caches"] = ["hbm"]        # tables live in dram: bypassed
    row = run(write_experiment(data))[0].row
    assert np.isnan(row["cache_hit_rate"]) and row["cache_hits"] == 0
    assert row["bytes_pcie"] == row["bytes_dram"]


def test_hardware_cache_overlaps_fetch_and_pooling(write_experiment):
    data = experiment(run__fidelity="analytic", run__arrivals={"mode": "closed",
                                                                "concurrency": 1})
    software = run(write_experiment(data, "sw.yaml"))[0].row
    data["system"]["cache"]["hardware"] = True
    hardware = run(write_experiment(data, "hw.yaml"))[0].row   # invariants checked inside
    assert hardware["cache_hits"] == software["cache_hits"]
    assert hardware["bytes_pcie"] == software["bytes_pcie"]
    assert hardware["latency_mean_us"] < software["latency_mean_us"]


def test_a_cache_as_large_as_its_tier_keeps_within_it(write_experiment):
    """64 KiB of 160 B slots is 409 rows, which 8 ways would round up to 416 (past the tier):
    the cache drops part of its last set instead of being refused, and holds 408 rows."""
    from simulator.core.system import build_system

    data = experiment(system__memory__hbm__capacity="64 KiB", system__cache__size="64 KiB")
    data["workload"]["generator"]["tables"][0]["dim"] = 36     # 144 B rows, 160 B slots
    path = write_experiment(data)
    _, points = load_points(path, {})
    meta, _ = open_workload(points[0].config.workload, str(path))
    system = build_system(points[0].config, meta, str(path))
    assert system.cache.slots == 408
    result, _ = run(path)
    assert result.row["lookups"] > 0
