"""One prepared run on a lent GPU: calibrate, then measure experiments/validation_gpu.yaml.

Equivalent to ``embsim calibrate --backend torch-cuda`` and ``embsim measure ...
--backend torch-cuda``, split so that every stage leaves its file in OUT even if a later one
fails or the lease runs out: the preset first, then the HBM-resident points, then the
host-resident ones, then ``measure.parquet`` (and ``measure-warm.parquet``) with both,
numbered as in the experiment.
Usage: python3 gpu_session.py OUT [STAGE ...], stages ``calibrate``, ``measure`` (caches
flushed before each pass) and ``measure-warm`` (``--no-flush``); default: all three. Each
stage runs ``ROUNDS`` times (environment, default 3), as ``--rounds``.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml

from simulator.grounding.backends import Backend, backend_by_name
from simulator.grounding.calibrate import calibrate
from simulator.grounding.machine_preset import save_machine_preset
from simulator.grounding.measure import (
    MeasureSettings,
    measure_experiment,
    read_provenance,
    workload_hash,
    write_measurements,
)
from simulator.runs.experiment import load_points

EXPERIMENT = Path(__file__).resolve().parents[1] / "validation_gpu.yaml"


def stage(name: str, fn: Callable[[], object]) -> None:
    """Run one stage; report its time, or its traceback without stopping the session."""
    started = time.perf_counter()
    try:
        fn()
        print(f"[{name}] done in {time.perf_counter() - started:.1f} s", flush=True)
    except Exception:
        print(f"[{name}] FAILED after {time.perf_counter() - started:.1f} s", flush=True)
        traceback.print_exc()


def main() -> None:
    out = Path(sys.argv[1])
    stages = sys.argv[2:] or ["calibrate", "measure", "measure-warm"]
    rounds = int(os.environ.get("ROUNDS", "3"))
    backend = backend_by_name("torch-cuda")
    print(backend.provenance(), flush=True)
    if "calibrate" in stages:
        stage("calibrate", lambda: save_machine_preset(calibrate(backend, rounds),
                                                       out / "preset.yaml"))
    grid = yaml.safe_load(EXPERIMENT.read_text())["sweep"]["grid"]
    for name, flush in (("measure", True), ("measure-warm", False)):
        if name in stages:
            measure(backend, grid, out / name, MeasureSettings(flush=flush, rounds=rounds))


def measure(backend: Backend, grid: dict, prefix: Path, settings: MeasureSettings) -> None:
    """Measure the experiment one table tier at a time, then merge the parts into
    ``<prefix>.parquet``."""
    parts = []
    for tier in grid["system.tables.tier"]:
        subset = {**grid, "system.tables.tier": [tier]}
        part = prefix.with_name(f"{prefix.name}-{tier}.parquet")
        stage(f"{prefix.name} {tier}", lambda subset=subset, part=part: measure_experiment(
            EXPERIMENT, backend, part, {"sweep.grid": subset}, settings, progress=False))
        parts.append(part)
    target = prefix.with_suffix(".parquet")
    stage(f"{prefix.name} merge", lambda: merge([p for p in parts if p.exists()], target))


def merge(parts: list[Path], target: Path) -> None:
    """One measurements file, points numbered as in the whole experiment (a point's workload
    hash does not depend on the sweep it came from)."""
    _, points = load_points(EXPERIMENT, {})
    number = {workload_hash(p): p.index for p in points}
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    frame["point"] = frame["workload_hash"].map(number)
    provenance = read_provenance(parts[0]) | {"merged_from": [p.name for p in parts]}
    write_measurements(frame.sort_values("point", ignore_index=True), provenance, target)


if __name__ == "__main__":
    main()
