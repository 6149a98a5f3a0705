"""Simulation speed of near-memory pooling against the host path on the same lookups.

Runs ``experiments/nmp_levels.yaml`` (DRAM ``fast``) case by case on its uniform and Zipf
traces: the host pooling over the DDR4 channel (the baseline, measured in the same run) and the
rank, bank-group and DIMM units over the same channel's private paths, plus the UPMEM and CXL
units with their own host baselines where the tables sit elsewhere. Each point's simulated
lookups per wall second (system build included), best of ``--repeats`` rounds over all points
after a warm-up run (JIT compilation), and its ratio against the host path on the same tier
and trace. Target: every near-memory case at least as fast to simulate as its host path
(ratio >= 1). Prints a table and one JSON line.

    python benchmarks/bench_nmp.py [--batches 48] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.runs.experiment import load_points, run_point  # noqa: E402

BASELINE = {"dimm": "host_dram", "rank": "host_dram", "bank_group": "host_dram",
            "upmem": "host_dram", "upmem_cache_aware": "host_dram", "cxl": "host_cxl"}


def label(point) -> str:
    """A point's case and skew, e.g. ``rank@1.1``."""
    return f"{point.case}@{point.overrides['workload.generator.alpha']}"


def rates(points: list, experiment: Path, repeats: int) -> dict[str, float]:
    """Best simulated lookups per wall second of each point after a warm-up run; the
    repeats go round all points in turn, so a slow spell of the machine hits them alike."""
    best = {}
    for point in points:
        run_point(point, str(experiment))
        best[label(point)] = 0.0
    for _ in range(repeats):
        for point in points:
            row = run_point(point, str(experiment)).row
            best[label(point)] = max(best[label(point)], row["lookups"] / row["wall_s"])
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    experiment = ROOT / "experiments" / "nmp_levels.yaml"
    _, points = load_points(experiment, {"workload.generator.batches": args.batches,
                                         "plots": []})
    rate = rates(points, experiment, args.repeats)
    ratios = {}
    for name, value in rate.items():
        case, alpha = name.split("@")
        base = BASELINE.get(case)
        ratios[name] = value / rate[f"{base}@{alpha}"] if base else None
        against = f"  {ratios[name]:.2f}x its host path" if base else ""
        print(f"{name:>22}: {value:,.0f} lookups/s{against}")
    measured = {name: r for name, r in ratios.items() if r is not None}
    print(json.dumps({"benchmark": "bench_nmp", "batches": args.batches,
                      **{f"lookups_per_s_{n}": round(v) for n, v in rate.items()},
                      **{f"vs_host_{n}": round(r, 2) for n, r in measured.items()},
                      "min_vs_host": round(min(measured.values()), 2),
                      "python": platform.python_version(), "machine": platform.machine()}))


if __name__ == "__main__":
    main()
