"""Compute units besides the host: a near-memory unit pools its tier's rows and sends partial
sums; closed forms, the split of lookups, partial-sum bookkeeping, functional equality and bad
input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import embsim_here as embsim
from conftest import write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.core.workload import open_workload
from simulator.runs.experiment import load_points, prepare, run_point

US = 1e-6
HBM = {"capacity": "1 GiB", "bandwidth": "1 TB/s", "latency": "100 ns",
       "access_granularity": "64 B", "channels": 1, "interleave": "64 B"}
CXL = {"capacity": "4 GiB", "bandwidth": "50 GB/s", "latency": "300 ns",
       "access_granularity": "64 B", "channels": 1, "interleave": "64 B", "link": "cxl"}
UNIT = {"kind": "near_memory", "tier": "far", "lookup_overhead": "1 ns", "bag_overhead": "5 ns",
        "query_overhead": "20 ns"}


def system(units=None, assignment="nearest", tables_tier="far", cache=None, **compute):
    data = {
        "system": {
            "memory": {"hbm": dict(HBM), "far": dict(CXL)},
            "links": {"cxl": {"bandwidth": "32 GB/s", "latency": "500 ns"}},
            "tables": {"tier": tables_tier},
            "compute": {"tier": "hbm", **compute},
            "units": units if units is not None else {"nmp": dict(UNIT)},
            "assignment": assignment,
        },
        "workload": {"generator": {
            "tables": [{"rows": 4000, "dim": 16}, {"rows": 2000, "dim": 32}],
            "pooling": 6, "batches": 4, "batch_size": 8, "alpha": 1.1, "seed": 5}},
        "run": {"fidelity": "analytic", "arrivals": {"mode": "closed", "concurrency": 1}},
    }
    if cache is not None:
        data["system"]["cache"] = cache
    return data


def run(tmp_path, data, name="exp.yaml"):
    path = write_yaml(tmp_path / name, data)
    _, points = load_points(path, {})
    return run_point(points[0], str(path), per_query=True), points[0], path


def batches_of(point, path):
    meta, batches = open_workload(point.config.workload, str(path))
    return meta, list(batches())


def test_one_query_takes_the_closed_form_of_unit_link_and_combine(tmp_path):
    data = system(partial_overhead="2 ns")
    data["workload"]["generator"]["batches"] = 1
    result, point, path = run(tmp_path, data)
    meta, (batch,) = batches_of(point, path)
    rows = np.repeat(meta.row_bytes, np.diff(batch.table_bounds()))     # 64 B and 128 B rows
    bags = batch.offsets.size - 1
    touched = int(np.count_nonzero(np.diff(batch.offsets)))
    partial_bytes = int(sum(meta.row_bytes[b // batch.batch_size]
                            for b in range(bags) if batch.offsets[b + 1] > batch.offsets[b]))
    unit = (300e-9 + rows.sum() / 50e9                       # analytic memory: latency + bytes
            + 20e-9 + touched * 5e-9 + rows.size * 1e-9      # the unit's pooling
            + partial_bytes / 32e9 + 500e-9)                  # partials over the CXL link
    outputs = int(np.repeat(meta.row_bytes, batch.batch_size).sum())
    host = 100e-9 + outputs / 1e12                           # the host writes every output
    combine = 100e-9 + 4 * partial_bytes / 1e12 + touched * 2e-9
    assert result.row["latency_p50_us"] * US == pytest.approx(max(unit, host) + combine,
                                                               rel=1e-9)
    assert result.row["bytes_cxl"] == partial_bytes
    assert result.row["partials_nmp"] == touched
    assert result.row["pooled_lookups_nmp"] == rows.size == result.row["lookups"]
    assert result.row["pooled_lookups_compute"] == 0


def test_host_assignment_is_the_system_without_the_unit(tmp_path):
    with_unit, _, _ = run(tmp_path, system(assignment="host"), "a.yaml")
    without, _, _ = run(tmp_path, system(units={}), "b.yaml")
    for column, value in without.row.items():
        if column not in ("wall_s", "config_hash"):
            assert with_unit.row[column] == value or (value != value), column
    assert with_unit.row["pooled_lookups_nmp"] == 0 and with_unit.row["bytes_cxl"] > 0


def test_near_memory_unit_saves_the_link_its_rows_would_cross(tmp_path):
    def bandwidth_bound(assignment):
        data = system(assignment=assignment)
        data["system"]["units"]["nmp"]["lookup_overhead"] = "0.1 ns"
        data["workload"]["generator"].update(pooling=60, batch_size=64)
        return data

    host, _, _ = run(tmp_path, bandwidth_bound("host"), "a.yaml")
    near, _, _ = run(tmp_path, bandwidth_bound("nearest"), "b.yaml")
    # pooled vectors (one per bag) cross the link instead of every row of every bag
    assert near.row["bytes_cxl"] * 50 < host.row["bytes_cxl"]
    assert near.row["bytes_far"] == host.row["bytes_far"]       # the same rows are read
    # the link (32 GB/s) bounds the host; the unit reads at the memory's 50 GB/s
    assert near.row["latency_p50_us"] < 0.8 * host.row["latency_p50_us"]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(hot_kib=st.integers(8, 400), concurrency=st.integers(1, 4),
       pooling=st.sampled_from(["sum", "mean"]))
def test_every_lookup_pooled_once_and_every_partial_combined(tmp_path, hot_kib, concurrency,
                                                            pooling):
    """Rows split over the host's tier and the unit's tier by a budget: each lookup is pooled
    by exactly one unit, partial vectors are one per (bag, unit) with rows in the unit's tier,
    the link carries exactly them, and the pooled values equal torch's."""
    data = system(tables_tier=["hbm", "far"], pooling=pooling)
    data["system"]["tables"].update(placement="hot_rows", budget={"hbm": f"{hot_kib} KiB"})
    data["run"].update(functional=True, arrivals={"mode": "closed",
                                                  "concurrency": concurrency})
    result, point, path = run(tmp_path, data)
    row = result.row
    assert row["pooled_lookups_compute"] + row["pooled_lookups_nmp"] == row["lookups"]
    assert row["pooled_lookups_nmp"] == row["lookups_far"]
    built, meta, batches = prepare(point, str(path))
    partials = partial_bytes = 0
    for batch in batches():
        tier, _ = built.placement.locate(batch.global_rows(meta.row_base))
        bags = np.unique(np.repeat(np.arange(batch.offsets.size - 1),
                                   np.diff(batch.offsets))[tier == 1])
        partials += bags.size
        partial_bytes += int(meta.row_bytes[bags // batch.batch_size].sum())
    assert row["partials_nmp"] == partials
    assert row["bytes_cxl"] == partial_bytes
    assert row["functional_checked_bags"] == 4 * 2 * 8


def test_partials_are_one_per_bag_touched_in_the_unit_tier(tmp_path):
    data = system(tables_tier=["hbm", "far"])
    data["system"]["tables"]["budget"] = {"hbm": "300 KiB"}       # table 0 (256 KB) in HBM
    result, point, path = run(tmp_path, data)
    meta, batches = batches_of(point, path)
    touched = sum(int(np.count_nonzero(np.diff(b.offsets[b.batch_size:]))) for b in batches)
    assert result.row["partials_nmp"] == touched
    assert result.row["bytes_cxl"] == touched * int(meta.row_bytes[1])
    assert result.row["pooled_lookups_nmp"] == result.row["lookups_far"]


@pytest.mark.parametrize(("change", "expect"), [
    (lambda d: d["system"]["units"]["nmp"].update(kind="tensor_dimm"),
     ["system.units.nmp.kind", "unknown compute unit kind 'tensor_dimm'", "near_memory"]),
    (lambda d: d["system"]["units"]["nmp"].update(tier="nowhere"),
     ["system.units.nmp.tier", "unknown memory tier 'nowhere'"]),
    (lambda d: d["system"]["units"]["nmp"].update(colour="red"),
     ["system.units.nmp.colour", "unknown key"]),
    (lambda d: d["system"]["units"]["nmp"].update(link="pcie"),
     ["system.units.nmp.link", "unknown link 'pcie'"]),
    (lambda d: d["system"]["units"].update(far={"kind": "near_memory", "tier": "far"}),
     ["system.units.far", "may not share its name with a memory tier"]),
    (lambda d: d["system"]["units"].update(compute={"kind": "near_memory", "tier": "far"}),
     ["system.units.compute", "the host"]),
    (lambda d: d["system"].update(assignment="random"),
     ["system.assignment", "unknown assignment policy 'random'", "nearest"]),
    (lambda d: d["system"]["links"].update(far={"bandwidth": "1 GB/s", "latency": "1 us"}),
     ["system.links.far", "may not share its name with memory tier"]),
    (lambda d: d["system"].update(
        tables={"tier": ["hbm", "far"], "budget": {"hbm": "1 KiB"}},
        cache={"tier": "hbm", "size": "64 KiB", "caches": ["far"]}),
     ["system.cache.caches", "a compute unit pools the rows of 'far'"]),
])
def test_bad_unit_config_exits_2_naming_the_field(tmp_path, change, expect):
    data = system()
    change(data)
    path = write_yaml(tmp_path / "bad.yaml", data)
    out = tmp_path / "out"
    proc = embsim("run", str(path), "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    for fragment in [str(path), *expect]:
        assert fragment in lines[0], (fragment, lines[0])
    assert not out.exists()


def test_unit_at_a_tier_without_tables_is_refused(tmp_path):
    data = system(tables_tier="hbm")
    path = write_yaml(tmp_path / "bad.yaml", data)
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "system.units.nmp.tier: unit sits at 'far', where no tables live" in proc.stderr


def test_default_cache_leaves_the_unit_tier_alone(tmp_path):
    data = system(tables_tier=["hbm", "far"], cache={"tier": "hbm", "size": "64 KiB"})
    path = write_yaml(tmp_path / "bad.yaml", data)
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert ("system.cache.tier: the cache in 'hbm' has nothing to cache: every table tier is "
            "the compute tier or pooled by a compute unit") in proc.stderr
    data["system"]["memory"]["slow"] = {**CXL, "link": "cxl"}
    data["system"]["tables"]["tier"] = ["hbm", "far", "slow"]
    data["system"]["tables"].update(placement="hot_rows",
                                   budget={"hbm": "4 KiB", "far": "8 KiB"})
    result, _, _ = run(tmp_path, data)
    assert result.row["cache_hits"] + result.row["cache_misses"] == result.row["lookups_slow"]
    assert result.row["pooled_lookups_nmp"] == result.row["lookups_far"] > 0


def test_host_assignment_with_a_cache_is_the_system_without_the_unit(tmp_path):
    data = system(assignment="host", cache={"tier": "hbm", "size": "16 KiB", "ways": 4})
    with_unit, _, _ = run(tmp_path, data, "a.yaml")
    data["system"]["units"] = {}
    without, _, _ = run(tmp_path, data, "b.yaml")
    assert with_unit.row["cache_hits"] > 0
    for column, value in without.row.items():
        if column not in ("wall_s", "config_hash"):
            assert with_unit.row[column] == value or (value != value), column


def test_a_tier_hosts_one_unit_entry(tmp_path):
    data = system()
    data["system"]["units"]["nmp2"] = {"kind": "near_memory", "tier": "far"}
    proc = embsim("run", str(write_yaml(tmp_path / "bad.yaml", data)), "--out",
                  str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "system.units.nmp2.tier: tier 'far' already hosts unit 'nmp'" in proc.stderr


def test_a_partial_vector_the_host_never_gets_fails_the_functional_check(tmp_path,
                                                                         monkeypatch):
    from embsim.errors import FunctionalMismatch
    from simulator.core.units.near_memory import NearMemoryUnit

    serve = NearMemoryUnit.serve

    def loses_one(self, q, share, fabric):
        floor = yield from serve(self, q, share, fabric)
        q.partial_bags[self.index] = q.partial_bags[self.index][1:]
        return floor

    monkeypatch.setattr(NearMemoryUnit, "serve", loses_one)
    data = system()
    data["run"]["functional"] = True
    with pytest.raises(FunctionalMismatch):
        run(tmp_path, data)
