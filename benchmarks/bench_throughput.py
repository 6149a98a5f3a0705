"""Simulation speed on the quickstart system: simulated lookups per wall-clock second.

Runs ``experiments/quickstart.yaml`` (one cache size) on an rm2-like trace of at least 5M
lookups, trace generation excluded, twice: as shipped, with DRAM device models for HBM and
host DDR5 (every row read becomes its 32 B and 64 B bursts), and with the same tiers flattened
into generic tiers (peak bandwidth, row-miss latency, burst size and channel count taken from
the same presets), which measures the engine itself. Both are compared with the per-lookup
SimPy baseline (``per_lookup_model.py``) on a slice of the same trace, measured in the same
run. Prints a human summary and one JSON line with the figures.

    python benchmarks/bench_throughput.py [--lookups 5000000] [--slice 60000]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from per_lookup_model import PerLookupModel  # noqa: E402

from hwmodels.presets import resolve  # noqa: E402
from simulator.runs.experiment import load_points, prepare, run_point  # noqa: E402
from traces.batch import Batch  # noqa: E402


def head(batch: Batch, samples: int) -> Batch:
    """The first ``samples`` samples of a batch (every table's first bags)."""
    B, T = batch.batch_size, batch.num_tables
    starts = batch.offsets[:-1].reshape(T, B)[:, :samples]
    ends = batch.offsets[1:].reshape(T, B)[:, :samples]
    pieces = [batch.indices[s:e] for s, e in zip(starts.ravel(), ends.ravel(), strict=True)]
    lengths = (ends - starts).ravel()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Batch(batch.index, np.concatenate(pieces), offsets, T, samples)


def flat_tier(preset: str) -> dict:
    """A generic tier with a DRAM preset's capacity, peak bandwidth, row-miss latency, burst
    size and channel count, channels interleaved every 256 B (the common modelling value)."""
    spec, _ = resolve("dram", preset, {})
    derived = spec.derived()
    return {"kind": "memory", "capacity": derived["capacity"],
            "bandwidth": derived["peak_bandwidth"], "latency": derived["read_latency_miss_s"],
            "access_granularity": derived["request_bytes"],
            "channels": spec.channels * spec.pseudo_channels,
            "interleave": 256}


def best_rate(point, experiment: Path, repeats: int) -> tuple[float, int]:
    """(best lookups per wall second over ``repeats`` runs after a warm-up, lookups)."""
    run_point(point, str(experiment))                               # warm-up: JIT compilation
    best = 0.0
    for _ in range(repeats):
        row = run_point(point, str(experiment)).row
        best = max(best, row["lookups"] / row["wall_s"])
    return best, row["lookups"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=5_000_000)
    parser.add_argument("--slice", type=int, default=60_000, help="lookups for the baseline")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    experiment = ROOT / "experiments" / "quickstart.yaml"
    per_batch = 32 * 120 * 64
    batches = -(-args.lookups // per_batch)
    sets = {"workload.generator.batches": batches, "sweep": None,
            "system.cache.size": "256 MiB"}
    _, points = load_points(experiment, sets)
    point = points[0]
    system, meta, make_batches = prepare(point, str(experiment))   # generates the trace once
    devices, lookups = best_rate(point, experiment, args.repeats)
    flat_sets = {**sets, "system.memory.hbm": flat_tier("hbm3-h100"),
                 "system.memory.dram": flat_tier("ddr5-4800-8ch")}
    best, _ = best_rate(load_points(experiment, flat_sets)[1][0], experiment, args.repeats)

    first = next(make_batches())
    samples = max(1, args.slice // (first.num_lookups // first.batch_size))
    sliced = [head(b, samples) for b in list(make_batches())[:4]]
    fresh, _, _ = prepare(point, str(experiment))
    baseline = PerLookupModel(fresh, meta,
                              point.config.run.arrivals.concurrency)
    started = time.perf_counter()
    baseline.run(sliced)
    base_rate = baseline.lookups / (time.perf_counter() - started)

    figures = {
        "benchmark": "bench_throughput",
        "lookups": lookups,
        "lookups_per_s": round(best),
        "lookups_per_s_dram_devices": round(devices),
        "speedup_dram_devices_vs_per_lookup": round(devices / base_rate, 1),
        "baseline_lookups": baseline.lookups,
        "baseline_lookups_per_s": round(base_rate),
        "speedup_vs_per_lookup": round(best / base_rate, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"embsim, flat tiers: {lookups:,} lookups at {best:,.0f} lookups/s "
          f"(best of {args.repeats})")
    print(f"embsim, DRAM device tiers (as shipped): {devices:,.0f} lookups/s")
    print(f"per-lookup SimPy baseline: {baseline.lookups:,} lookups at {base_rate:,.0f} "
          f"lookups/s")
    print(f"speedup_vs_per_lookup: {best / base_rate:.1f}x (flat), "
          f"{devices / base_rate:.1f}x (DRAM devices)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
