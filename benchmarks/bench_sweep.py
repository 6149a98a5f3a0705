"""Sweep speed: 16 small points with 1 worker, 2 workers and Ray, end to end.

The sweep is trace-driven: 4 cache sizes x 2 policies x 2 concurrencies over one rm2-like trace
file (32 tables x 200K rows, pooling 120), written before any timing, like the trace generation
that ``bench_throughput.py`` leaves out. Each point reads the trace and simulates it: about
1.5 s per point here (``--batches`` sets the size; ``point_s`` reports the median).

Each configuration is the real command, ``embsim run EXP --out DIR --workers N [--executor
ray]``, in a fresh process with a fresh results folder, timed from start to exit (Python
start-up, validation, worker and Ray start-up included). The baseline is ``--workers 1`` (the
points run one after another in the command's own process), measured in the same run. A
warm-up run fills numba's on-disk cache first.

Figures: ``speedup_2_workers`` = t(1 worker) / t(2 workers) (target >= 1.7) and
``ray_overhead_s_per_point`` = (t(Ray, 2 workers) - t(local, 2 workers)) / points (target < 1 s;
the command starts and stops its Ray instance, and that is included). Prints a human summary
and one JSON line. The machine should be otherwise idle: ``loadavg_1m`` is reported.

    python benchmarks/bench_sweep.py [--repeats 3] [--batches 54] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from traces.generators import synthesize  # noqa: E402
from traces.parquet_io import write_trace  # noqa: E402
from traces.schema import TableSpec  # noqa: E402

POINTS = 16


def write_workload(path: Path, batches: int) -> None:
    """The rm2-like trace every point reads."""
    tables = [TableSpec(rows=200_000, dim=64)] * 32
    meta, lookups = synthesize(tables, 120, batches=batches, batch_size=64, alpha=1.05, seed=1)
    write_trace(path, meta, lookups)


def experiment(trace: Path) -> dict:
    """16 points: 4 cache sizes x 2 policies x 2 concurrencies."""
    return {
        "name": "bench_sweep",
        "system": {
            "memory": {"hbm": {"preset": "hbm3-h100"}, "dram": {"preset": "ddr5-4800-8ch"}},
            "links": {"pcie": {"preset": "pcie5-x16"}},
            "tables": {"tier": "dram", "link": "pcie"},
            "compute": {"tier": "hbm", "pooling": "sum"},
            "cache": {"tier": "hbm", "size": "256 MiB", "ways": 32, "policy": "lru"},
        },
        "workload": {"trace": str(trace)},
        "run": {"arrivals": {"mode": "closed", "concurrency": 4}},
        "sweep": {"grid": {"system.cache.size": ["4 MiB", "16 MiB", "64 MiB", "256 MiB"],
                           "system.cache.policy": ["lru", "lfu"],
                           "run.arrivals.concurrency": [2, 8]}},
    }


def timed_run(path: Path, out: Path, *options: str) -> float:
    """Seconds for one ``embsim run`` in a fresh process."""
    command = [sys.executable, "-c", "from simulator.cli import main; main()", "run", str(path),
               "--out", str(out), "--quiet", *options]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(options)} failed:\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration (best)")
    parser.add_argument("--batches", type=int, default=54, help="batches in the trace")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    args = parser.parse_args()
    configurations = {"workers_1": ["--workers", "1"], "workers_2": ["--workers", "2"]}
    if not args.no_ray:
        configurations["ray_2"] = ["--executor", "ray", "--workers", "2"]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_workload(folder / "trace.parquet", args.batches)
        path = folder / "sweep.yaml"
        path.write_text(yaml.safe_dump(experiment(folder / "trace.parquet"), sort_keys=False))
        timed_run(path, folder / "warm-up", "--workers", "1")
        point_s = pd.read_parquet(folder / "warm-up" / "results.parquet")["wall_s"].median()
        best = {name: float("inf") for name in configurations}
        for repeat in range(args.repeats):
            for name, options in configurations.items():
                elapsed = timed_run(path, folder / f"{name}-{repeat}", *options)
                best[name] = min(best[name], elapsed)

    speedup = best["workers_1"] / best["workers_2"]
    figures = {
        "benchmark": "bench_sweep",
        "points": POINTS,
        "point_s": round(float(point_s), 2),
        "t_workers_1_s": round(best["workers_1"], 2),
        "t_workers_2_s": round(best["workers_2"], 2),
        "speedup_2_workers": round(speedup, 2),
        "t_ray_2_s": None,
        "ray_overhead_s_per_point": None,
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    print(f"{POINTS} points of {point_s:.2f} s: 1 worker {best['workers_1']:.2f} s, 2 workers "
          f"{best['workers_2']:.2f} s (best of {args.repeats}): speedup {speedup:.2f}x")
    if "ray_2" in best:
        overhead = (best["ray_2"] - best["workers_2"]) / POINTS
        figures.update(t_ray_2_s=round(best["ray_2"], 2),
                       ray_overhead_s_per_point=round(overhead, 3))
        print(f"Ray, 2 workers: {best['ray_2']:.2f} s, {overhead:.3f} s per point more than "
              "the local executor")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
