"""Trace generation speed: lookups generated and written per second by ``embsim trace gen``'s
code path, against drawing the same number of random row ids with numpy alone, in one run.

Generates an rm1 trace (Zipf alpha 1.05 with the default sampler, uniform rows, and Zipf
alpha 1.05 with the opt-in ``inversion`` sampler: ``zipf_inversion``) of ``--batches``
batches into a temporary Parquet file through the same generator and writer ``trace gen``
uses, and times ``numpy.random.Generator.integers`` for the same lookup count (the floor any
generator pays) and the ``inversion`` sampler generating without writing. Each rate is also
given for the batches after the first (``..._after_first_batch_...``), the rate a long trace
runs at once its one-time set-up is done. Prints each rate,
its ratio to the floor, and one JSON line. The issue's target is 50 M lookups/s generated and
written.

    python benchmarks/bench_tracegen.py [--batches 40]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from traces.generators import SAMPLERS, synthesize  # noqa: E402
from traces.models import model_preset  # noqa: E402
from traces.parquet_io import TraceWriter  # noqa: E402


def generate_and_write(batches: int, alpha: float, out: Path,
                       sampler: str = "numpy") -> tuple[int, float, int, float]:
    """(lookups, seconds) of generating ``batches`` rm1 batches and writing them, then the
    same for the batches after the first: the first carries the trace's one-time set-up (the
    default Zipf sampler's per-table row permutations), which a long trace amortises."""
    preset = model_preset("rm1")
    meta, generated = synthesize(preset.tables, preset.pooling, batches=batches,
                                 batch_size=64, alpha=alpha, seed=1, sampler=sampler)
    start = time.perf_counter()
    first_lookups, first_done = 0, start
    with TraceWriter(str(out), meta) as writer:
        for batch in generated:
            writer.write(batch)
            if first_done == start:
                first_lookups, first_done = writer.num_lookups, time.perf_counter()
    end = time.perf_counter()
    return (writer.num_lookups, end - start, writer.num_lookups - first_lookups,
            end - first_done)


def generate_only(batches: int, alpha: float, sampler: str) -> float:
    """Seconds of generating ``batches`` rm1 batches without writing them."""
    preset = model_preset("rm1")
    _, generated = synthesize(preset.tables, preset.pooling, batches=batches, batch_size=64,
                              alpha=alpha, seed=1, sampler=sampler)
    start = time.perf_counter()
    for _ in generated:
        pass
    return time.perf_counter() - start


def numpy_floor(lookups: int) -> float:
    """Seconds numpy takes to draw ``lookups`` uniform int64 row ids below 4M."""
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    rng.integers(0, 4_000_000, lookups)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for sampler in SAMPLERS:                                        # numba compile
            generate_and_write(1, 1.05, Path(folder) / "warm.parquet", sampler)
        for name, alpha, sampler in (("zipf", 1.05, "numpy"), ("uniform", 0.0, "numpy"),
                                     ("zipf_inversion", 1.05, "inversion")):
            lookups, seconds, later, later_seconds = generate_and_write(
                args.batches, alpha, Path(folder) / f"{name}.parquet", sampler)
            floor = numpy_floor(lookups)
            later_rate = later / max(later_seconds, 1e-9) / 1e6
            figures[f"{name}_mlookups_per_s"] = round(lookups / seconds / 1e6, 2)
            figures[f"{name}_after_first_batch_mlookups_per_s"] = round(later_rate, 2)
            figures[f"{name}_vs_numpy_draws"] = round(floor / seconds, 4)
            print(f"{name}: {lookups} lookups in {seconds:.2f} s = "
                  f"{lookups / seconds / 1e6:.2f} M lookups/s generated and written; "
                  f"{seconds / floor:.1f}x the time numpy takes to draw as many ids "
                  f"({lookups / floor / 1e6:.0f} M/s); after the first batch "
                  f"{later_rate:.2f} M/s")
        seconds = generate_only(args.batches, 1.05, "inversion")
        figures["zipf_inversion_generate_only_mlookups_per_s"] = round(lookups / seconds / 1e6, 2)
        print(f"zipf_inversion, generated only: {lookups / seconds / 1e6:.2f} M lookups/s")
    print(json.dumps({"benchmark": "bench_tracegen", "batches": args.batches, **figures,
                      "python": platform.python_version(), "machine": platform.machine()}))


if __name__ == "__main__":
    main()
