"""One prepared run on a lent GPU: calibrate, then measure the design set
(experiments/validation_gpu.yaml) and the test set (experiments/validation_gpu_test.yaml).

Equivalent to ``embsim calibrate --backend torch-cuda`` and ``embsim measure ...
--backend torch-cuda``, split so that every stage leaves its file in OUT even if a later one
fails or the lease runs out: the preset first, then each set's HBM-resident points, then its
host-resident ones, then ``measure.parquet`` (``measure-test.parquet``,
``measure-warm.parquet``) with both, numbered as in the experiment.
Usage: python3 gpu_session.py OUT [STAGE ...], stages ``calibrate``, ``measure`` (the design
set, caches flushed before each pass), ``measure-test`` (the test set, flushed) and
``measure-warm`` (the design set, ``--no-flush``), ``dense-calibrate`` and ``dense-measure``
(the dense stage: ``embsim calibrate|measure --stage dense --backend torch-cuda``, the latter
on experiments/validation_dense.yaml); default: all six, in that order. Each stage runs
``ROUNDS`` times (environment, default 3), as ``--rounds``; ``BACKEND`` (default
``torch-cuda``) names the backend, ``torch-cpu`` for a rehearsal without a GPU.
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
from simulator.grounding.dense import calibrate_dense, measure_dense
from simulator.grounding.machine_preset import save_machine_preset
from simulator.grounding.measure import (
    MeasureSettings,
    measure_experiment,
    read_provenance,
    workload_hash,
    write_measurements,
)
from simulator.runs.experiment import load_points

EXPERIMENTS = Path(__file__).resolve().parents[1]
DESIGN = EXPERIMENTS / "validation_gpu.yaml"
TEST = EXPERIMENTS / "validation_gpu_test.yaml"
DENSE = EXPERIMENTS / "validation_dense.yaml"
STAGES = {"measure": (DESIGN, True), "measure-test": (TEST, True),
          "measure-warm": (DESIGN, False)}
"""Each measuring stage: the experiment it measures, and whether caches are flushed."""
DENSE_STAGES = ("dense-calibrate", "dense-measure")


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
    stages = sys.argv[2:] or ["calibrate", *STAGES, *DENSE_STAGES]
    rounds = int(os.environ.get("ROUNDS", "3"))
    backend_name = os.environ.get("BACKEND", "torch-cuda")
    backend = backend_by_name(backend_name)
    print(backend.provenance(), flush=True)
    if "calibrate" in stages:
        stage("calibrate", lambda: save_machine_preset(calibrate(backend, rounds),
                                                       out / "preset.yaml"))
    for name, (experiment, flush) in STAGES.items():
        if name in stages:
            measure(backend, experiment, out / name,
                    MeasureSettings(flush=flush, rounds=rounds))
    if "dense-calibrate" in stages:
        stage("dense-calibrate", lambda: save_machine_preset(
            calibrate_dense("dense-preset", rounds, backend_name), out / "dense-preset.yaml"))
    if "dense-measure" in stages:
        stage("dense-measure", lambda: measure_dense(
            DENSE, out / "dense.parquet", {}, MeasureSettings(flush=False, rounds=rounds),
            progress=False, backend=backend_name))


def tier_subsets(experiment: Path) -> dict[str, dict[str, object]]:
    """The ``--set`` overrides that restrict the experiment's sweep to one table tier each:
    a grid's tier axis, or the cases that name the tier."""
    sweep = yaml.safe_load(experiment.read_text())["sweep"]
    if "grid" in sweep:
        grid = sweep["grid"]
        return {tier: {"sweep.grid": {**grid, "system.tables.tier": [tier]}}
                for tier in grid["system.tables.tier"]}
    cases = sweep["cases"]
    tiers = dict.fromkeys(case["system.tables.tier"] for case in cases.values())
    return {tier: {"sweep.cases": {name: case for name, case in cases.items()
                                   if case["system.tables.tier"] == tier}}
            for tier in tiers}


def measure(backend: Backend, experiment: Path, prefix: Path,
            settings: MeasureSettings) -> None:
    """Measure the experiment one table tier at a time, then merge the parts into
    ``<prefix>.parquet``."""
    parts = []
    for tier, subset in tier_subsets(experiment).items():
        part = prefix.with_name(f"{prefix.name}-{tier}.parquet")
        stage(f"{prefix.name} {tier}", lambda subset=subset, part=part: measure_experiment(
            experiment, backend, part, subset, settings, progress=False))
        parts.append(part)
    target = prefix.with_suffix(".parquet")
    stage(f"{prefix.name} merge",
          lambda: merge(experiment, [p for p in parts if p.exists()], target))


def merge(experiment: Path, parts: list[Path], target: Path) -> None:
    """One measurements file, points numbered as in the whole experiment (a point's workload
    hash does not depend on the sweep it came from)."""
    _, points = load_points(experiment, {})
    number = {workload_hash(p): p.index for p in points}
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    frame["point"] = frame["workload_hash"].map(number)
    provenance = read_provenance(parts[0]) | {"merged_from": [p.name for p in parts]}
    write_measurements(frame.sort_values("point", ignore_index=True), provenance, target)


if __name__ == "__main__":
    main()
