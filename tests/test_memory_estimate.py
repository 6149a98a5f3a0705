"""The host-memory estimate of a point: refused above the machine's limit before anything runs
(exit 2, naming the field that drives it), run anyway with ``--allow-large-memory``, and
close to the memory a real run takes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, embsim_here, experiment, write_yaml

from embsim import machine
from simulator.runs import runner

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
    assert f"exp.yaml: {field}: the point needs an estimated" in lines[0]
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


MEASURE = """
import resource, sys
sys.path.insert(0, {tests!r})
from conftest import experiment
from simulator.core.config import parse_experiment
from simulator.core.memory_estimate import estimated_bytes
from simulator.core.workload import workload_meta
from simulator.runs.experiment import Point, config_hash, simulate_point

def point(data):
    exp = parse_experiment(data, "x")
    return Point(0, {{}}, exp, config_hash(exp))

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

simulate_point(point(experiment()), "x")      # imports and compiled kernels
moderate = point(experiment(workload__generator__batch_size=4096,
                            workload__generator__pooling=100, workload__generator__batches=3,
                            system__cache__size="1 MiB"))
slots = 2**20 // 128                          # 1 MiB of 128 B slots (ways 8)
estimate = estimated_bytes(moderate.config, workload_meta(moderate.config.workload, "x"),
                           slots, "x")
before = peak()
simulate_point(moderate, "x")
print(estimate, peak() - before)
"""


def test_the_estimate_is_within_a_factor_two_of_the_peak_memory_growth():
    """A batch of 0.8 M lookups, two in flight: about 200 MiB (a fresh process, so that the
    peak resident size before the point is the baseline)."""
    code = MEASURE.format(tests=str(ROOT / "tests"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    estimate, grown = map(int, proc.stdout.split())
    assert grown > 50 * 2**20
    assert grown / 2 <= estimate <= 2 * grown, (estimate, grown)
