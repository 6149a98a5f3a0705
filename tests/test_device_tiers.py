"""Device models (SCM, SSD, DRAM) as tiers of the embedding simulator."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import embsim, experiment

from simulator.runs.experiment import load_points, prepare, run_point


def run(write_experiment, data):
    path = write_experiment(data)
    _, points = load_points(path, {})
    return run_point(points[0], str(path)).row, points[0], str(path)


def ssd_system(**tables):
    data = experiment(system__cache=None,
                      system__tables={"tier": "ssd", "link": "direct", **tables})
    data["system"]["memory"]["ssd"] = {"preset": "optane-ssd-p5800x"}
    data["system"]["compute"] = {"tier": "dram"}
    return data


def test_ssd_tier_reads_whole_pages_once_per_query_and_counts_the_waste(write_experiment):
    row, point, source = run(write_experiment, ssd_system())
    system, meta, batches = prepare(point, source)
    pages = useful = 0
    for batch in batches():
        keys = batch.global_rows(meta.row_base)
        tier, addr = system.placement.locate(keys)
        sizes = np.repeat(meta.row_bytes, np.diff(batch.table_bounds()))
        first = addr // 4096
        last = (addr + sizes - 1) // 4096
        touched = np.unique(np.concatenate(
            [np.arange(f, g + 1) for f, g in zip(first, last, strict=True)]))
        pages += touched.size
        _, distinct = np.unique(addr, return_index=True)
        useful += int(sizes[distinct].sum())
    assert row["bytes_read_ssd"] == pages * 4096
    assert row["pages_read_ssd"] == pages
    assert row["bytes_wasted_ssd"] == pages * 4096 - useful
    assert row["energy_j_ssd"] > 0


@pytest.mark.parametrize("key,value,expect", [
    ("read_iops", 10, "system.memory.ssd.read_iops: unknown key (a device tier's own "
                      "parameters go under 'params')"),
    ("capacity", "1 TB", "system.memory.ssd.capacity: a ssd tier takes its parameters under "
                         "'params'"),
    ("params", {"read_iops": -1}, "system.memory.ssd.params.read_iops")])
def test_device_tier_parameters_go_under_params(write_experiment, key, value, expect):
    data = ssd_system()
    data["system"]["memory"]["ssd"][key] = value
    path = write_experiment(data)
    proc = embsim("run", str(path), "--out", str(path.parent / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert expect in proc.stderr


def test_device_params_override_the_preset(write_experiment):
    slow = ssd_system()
    slow["system"]["memory"]["ssd"]["params"] = {"read_iops": 50_000}
    fast_row = run(write_experiment, ssd_system())[0]
    slow_row = run(write_experiment, slow)[0]
    assert slow_row["bytes_read_ssd"] == fast_row["bytes_read_ssd"]
    assert slow_row["sim_time_s"] > 5 * fast_row["sim_time_s"]
    # at 50k IOPS the n-th page starts (n - 1) / 50k seconds after the first
    assert slow_row["sim_time_s"] >= (slow_row["pages_read_ssd"] - 1) / 50_000


@pytest.mark.parametrize("fidelity", ["analytic", "fast", "detailed"])
def test_scm_tier_at_every_fidelity(write_experiment, fidelity):
    data = experiment(system__cache=None, system__tables={"tier": "scm"},
                      run__fidelity=fidelity, system__links={})
    data["system"]["memory"] = {"scm": {"preset": "optane-pmem-100"}}
    data["system"]["compute"] = {"tier": "scm"}
    row = run(write_experiment, data)[0]
    assert row["bytes_read_scm"] > 0 and row["media_bytes_read_scm"] > 0
    assert row["bytes_written_scm"] > 0                 # the pooled outputs
