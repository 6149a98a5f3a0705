"""The host-memory estimate of a point: refused above the machine's limit before anything runs
(exit 2, naming the field that drives it), run anyway with ``--allow-large-memory``, and
close to the memory a real run takes."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from conftest import ROOT, embsim_here, experiment, write_yaml

from embsim import machine
from simulator.core.config import parse_experiment
from simulator.core.memory_estimate import estimated_bytes
from simulator.core.workload import workload_meta
from simulator.runs import runner
from simulator.runs.experiment import Point, config_hash, simulate_point

SMALL_LIMIT = 4 * 2**20


@pytest.fixture
def small_machine(monkeypatch):
    """A machine whose limit is 4 MiB: small configs are beyond it."""
    monkeypatch.setattr(runner, "memory_limit", lambda: SMALL_LIMIT)


BIG = {
    "system.cache.size": dict(system__cache={"tier": "hbm", "size": "16 MiB", "ways": "full"}),
    "run.arrivals.concurrency": dict(workload__generator__batch_size=4096,
                                     run__arrivals__concurrency=6),
    "run.functional": dict(workload__generator__tables=[{"rows": 20000, "dim": 64}],
                           run__functional=True),
    "system.tables.placement": dict(workload__generator__tables=[{"rows": 60000, "dim": 16}],
                                    system__tables__placement="hot_rows",
                                    system__tables__tier=["hbm", "dram"], system__cache=None),
}


@pytest.mark.parametrize("field", sorted(BIG))
def test_a_point_beyond_the_limit_is_refused_naming_its_field(tmp_path, small_machine, field):
    path = write_yaml(tmp_path / "exp.yaml", experiment(**BIG[field]))
    proc = embsim_here("run", str(path), "--dry-run", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"exp.yaml: {field}: the point (most of it " in lines[0]
    assert "needs an estimated" in lines[0]
    assert "MiB" in lines[0] and "limit is 4 MiB" in lines[0]
    assert "--allow-large-memory" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]


def test_the_flag_lets_it_through(tmp_path, small_machine):
    path = write_yaml(tmp_path / "exp.yaml", experiment(**BIG["system.cache.size"]))
    proc = embsim_here("run", str(path), "--dry-run", "--allow-large-memory")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["point"] == 0


def test_a_small_point_passes_and_the_flag_is_documented(tmp_path, small_machine):
    path = write_yaml(tmp_path / "exp.yaml", experiment())
    assert embsim_here("run", str(path), "--dry-run").returncode == 0
    assert "--allow-large-memory" in embsim_here("run", "--help").stdout
    assert "--allow-large-memory" in (ROOT / "docs" / "configuration.md").read_text()


def test_the_machine_limit_is_a_share_of_the_available_memory(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  1000 kB\nMemAvailable:  500 kB\n")
    monkeypatch.setattr(machine, "MEMINFO", meminfo)
    assert machine.available_memory() == 500 * 1024
    assert machine.memory_limit() == int(500 * 1024 * machine.MEMORY_FRACTION)


def _point(data: dict) -> Point:
    config = parse_experiment(data, "x")
    return Point(0, {}, config, config_hash(config))


def test_the_estimate_is_within_a_factor_two_of_the_peak_memory_growth():
    """A batch of 0.8 M lookups, two in flight: about 200 MiB at the peak, measured with
    tracemalloc (numpy's arrays are traced) after a small point has compiled the kernels."""
    simulate_point(_point(experiment()), "x")
    moderate = _point(experiment(workload__generator__batch_size=4096,
                                 workload__generator__pooling=100,
                                 workload__generator__batches=3, system__cache__size="1 MiB"))
    slots = 2**20 // 128                          # 1 MiB of 128 B slots (8 ways)
    estimate = estimated_bytes(moderate.config, workload_meta(moderate.config.workload, "x"),
                               slots, "x")
    tracemalloc.start()
    try:
        simulate_point(moderate, "x")
        grown = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grown > 50 * 2**20
    assert grown / 2 <= estimate <= 2 * grown, (estimate, grown)


def test_trace_stats_refuses_tables_beyond_the_limit_unless_allowed(tmp_path, monkeypatch):
    from simulator.cli import trace as trace_cli
    from traces.generators import synthesize
    from traces.parquet_io import write_trace
    from traces.schema import TableSpec

    path = tmp_path / "t.parquet"
    write_trace(path, *synthesize([TableSpec(300_000, 8)], 2, batches=2, batch_size=4))
    monkeypatch.setattr(trace_cli, "memory_limit", lambda: SMALL_LIMIT)
    proc = embsim_here("trace", "stats", str(path))
    assert proc.returncode == 2
    assert ("t.parquet: embsim.tables: counting the reads of 300000 rows needs an estimated "
            "5.722 MiB") in proc.stderr
    assert embsim_here("trace", "stats", str(path), "--allow-large-memory").returncode == 0
