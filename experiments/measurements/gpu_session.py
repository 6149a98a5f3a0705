"""One prepared run on a lent GPU: calibrate, then measure experiments/validation_gpu.yaml.

Equivalent to ``embsim calibrate --backend torch-cuda`` and ``embsim measure ...
--backend torch-cuda``, split so that every stage leaves its file in OUT even if a later one
fails or the lease runs out: the preset first, then the HBM-resident points, then the
host-resident ones, then ``measurements.parquet`` with both, numbered as in the experiment.
Usage: python3 gpu_session.py OUT [STAGE ...], stages ``calibrate`` and ``measure``
(default: both).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml

from simulator.backends import backend_by_name
from simulator.calibrate import calibrate
from simulator.experiment import load_points
from simulator.machine_preset import save_machine_preset
from simulator.measure import (
    MeasureSettings,
    measure_experiment,
    read_provenance,
    workload_hash,
    write_measurements,
)

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
    stages = sys.argv[2:] or ["calibrate", "measure"]
    backend = backend_by_name("torch-cuda")
    print(backend.provenance(), flush=True)
    if "calibrate" in stages:
        stage("calibrate", lambda: save_machine_preset(calibrate(backend), out / "preset.yaml"))
    if "measure" not in stages:
        return
    grid = yaml.safe_load(EXPERIMENT.read_text())["sweep"]["grid"]
    for tier in grid["system.tables.tier"]:
        subset = {**grid, "system.tables.tier": [tier]}
        stage(f"measure {tier}", lambda subset=subset, tier=tier: measure_experiment(
            EXPERIMENT, backend, out / f"measure-{tier}.parquet", {"sweep.grid": subset},
            MeasureSettings(), progress=False))
    parts = [out / f"measure-{tier}.parquet" for tier in grid["system.tables.tier"]]
    stage("merge", lambda: merge([p for p in parts if p.exists()], out / "measurements.parquet"))


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
