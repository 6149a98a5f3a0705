"""Cache kernel speed: accesses per second of each hardware policy and of each row cache.

Serves a Zipf (alpha 1.2) and a uniform random stream of byte addresses (25% stores) through
``HardwareCache`` with every registered policy at 32 KiB 8-way and 1 MiB 16-way (64 B lines),
the same Zipf stream's line ids through ``SoftwareCache`` (LRU, 32-way and fully associative,
1 MiB of 64 B rows), and through every GPU embedding cache kind (``ROW_CACHES``, 5% of the
rows) in batches of 65,536 keys, as the simulator calls them once per query. The baseline is
a straightforward pure-Python set-associative LRU cache (an OrderedDict per set) on a slice of
the Zipf stream, measured in the same run. Each figure is the best of ``--repeats`` runs on a
fresh cache (compilation excluded). The issue's target is 10,000,000 accesses/s per kernel on
one core.

    python benchmarks/bench_cache.py [--accesses 4000000] [--slice 300000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwmodels.cache.hardware import HardwareCache  # noqa: E402
from hwmodels.cache.policies import POLICIES  # noqa: E402
from hwmodels.cache.row_cache import build_row_cache  # noqa: E402
from hwmodels.cache.software import SoftwareCache  # noqa: E402

LINE = 64
TARGET = 10_000_000
GEOMETRIES = {"32KiB-8way": (32 << 10, 8), "1MiB-16way": (1 << 20, 16)}
KEY_SPACE = 1 << 22
BATCH = 65_536
ROW_CACHE_KINDS = {"fbgemm_uvm_lru": ("fbgemm_uvm", {"policy": "lru"}),
                   "fbgemm_uvm_lfu": ("fbgemm_uvm", {"policy": "lfu"}),
                   "colossal_dataset": ("colossal", {"strategy": "dataset"}),
                   "colossal_lfu": ("colossal", {"strategy": "lfu"}),
                   "hugectr": ("hugectr", {}),
                   "pinned": ("pinned", {})}


def ordered_dict_lru(addresses: np.ndarray, size: int, ways: int) -> int:
    """The baseline: one OrderedDict per set, plain Python. Returns the hits."""
    sets = size // (LINE * ways)
    table = [OrderedDict() for _ in range(sets)]
    hits = 0
    for address in addresses.tolist():
        line = address // LINE
        lines = table[line % sets]
        if line in lines:
            lines.move_to_end(line)
            hits += 1
        else:
            if len(lines) == ways:
                lines.popitem(last=False)
            lines[line] = None
    return hits


def best_rate(run: Callable[[], object], accesses: int, repeats: int) -> float:
    """Accesses per second of the fastest of ``repeats`` runs (after one warm-up run)."""
    run()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return accesses / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accesses", type=int, default=4_000_000)
    parser.add_argument("--slice", type=int, default=300_000, help="accesses for the baseline")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n = args.accesses
    streams = {
        "zipf": (rng.zipf(1.2, n) % KEY_SPACE) * LINE,
        "random": rng.integers(0, KEY_SPACE, n) * LINE,
    }
    is_write = rng.random(n) < 0.25

    started = time.perf_counter()
    ordered_dict_lru(streams["zipf"][: args.slice], 32 << 10, 8)
    base_rate = args.slice / (time.perf_counter() - started)
    print(f"baseline (OrderedDict LRU, 32 KiB 8-way): {base_rate:,.0f} accesses/s")

    rates: dict[str, float] = {}
    for policy in POLICIES:
        for geometry, (size, ways) in GEOMETRIES.items():
            for stream, addresses in streams.items():
                def run(size=size, ways=ways, policy=policy, addresses=addresses):
                    HardwareCache(size, ways, LINE, policy).access(addresses, is_write)
                rates[f"hw_{policy}_{geometry}_{stream}"] = best_rate(run, n, args.repeats)
    keys = streams["zipf"] // LINE
    for name, ways in (("sw_lru_32way", 32), ("sw_lru_fully_assoc", None)):
        def run(ways=ways):
            SoftwareCache((1 << 20) // LINE, ways, "lru", KEY_SPACE).lookup(keys)
        rates[name] = best_rate(run, n, args.repeats)
    frequency = np.bincount(keys, minlength=KEY_SPACE)
    batches = [keys[i:i + BATCH] for i in range(0, n, BATCH)]
    for name, (kind, options) in ROW_CACHE_KINDS.items():
        def run(kind=kind, options=options):
            cache = build_row_cache(kind, options, slots=KEY_SPACE // 20,
                                    table_rows=np.array([KEY_SPACE]), frequency=frequency)
            for batch in batches:
                cache.lookup(batch)
        rates[f"row_{name}"] = best_rate(run, n, args.repeats)

    for name, rate in rates.items():
        flag = "" if rate >= TARGET else "  BELOW TARGET"
        print(f"{name:40s} {rate:14,.0f} accesses/s  {rate / base_rate:7.1f}x baseline{flag}")
    slowest = min(rates, key=rates.get)
    print(f"slowest kernel: {slowest} at {rates[slowest]:,.0f} accesses/s "
          f"({rates[slowest] / base_rate:.1f}x baseline; target {TARGET:,})")
    figures = {
        "benchmark": "bench_cache",
        "accesses": n,
        "baseline_accesses_per_s": round(base_rate),
        "accesses_per_s": {k: round(v) for k, v in rates.items()},
        "speedup_vs_ordered_dict": {k: round(v / base_rate, 1) for k, v in rates.items()},
        "min_accesses_per_s": round(rates[slowest]),
        "meets_target": rates[slowest] >= TARGET,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
