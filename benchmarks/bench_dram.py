"""DRAM model speed: requests replayed per wall-clock second by ``detailed`` and ``fast``.

Replays a random and a streaming trace (reads, 20 % writes) on the ``ddr4-3200`` preset at 80 %
of its peak request rate through both models, and a slice of the same traces through a
straightforward SimPy model in which each request is a process (bank and data bus as SimPy
resources), measured in the same run. Prints each rate, the ratios against SimPy, then one JSON
line.

    python benchmarks/bench_dram.py [--requests 300000] [--slice 20000] [--preset ddr4-3200]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwmodels.device import make_device  # noqa: E402
from hwmodels.dram import DramSpec  # noqa: E402
from hwmodels.presets import resolve  # noqa: E402


def simpy_replay(spec: DramSpec, arrivals: np.ndarray, addresses: np.ndarray,
                 writes: np.ndarray) -> np.ndarray:
    """Completion cycles from a per-request SimPy process model: a request waits for its bank,
    precharges and activates when its row is not open, then waits for the data bus."""
    env = simpy.Environment()
    bank, row = spec.address_map.bank_and_row(np.ascontiguousarray(addresses, dtype=np.int64))
    channel = bank // (spec.ranks * spec.banks_per_rank)
    banks = [simpy.Resource(env) for _ in range(spec.bus_channels * spec.ranks
                                                * spec.banks_per_rank)]
    buses = [simpy.Resource(env) for _ in range(spec.bus_channels)]
    open_row = np.full(len(banks), -1)
    done = np.zeros(arrivals.size)

    def request(i: int):
        yield env.timeout(arrivals[i] - env.now)
        b = bank[i]
        with banks[b].request() as hold:
            yield hold
            if open_row[b] != row[i]:
                yield env.timeout((spec.tRP if open_row[b] >= 0 else 0) + spec.tRCD)
                open_row[b] = row[i]
            with buses[channel[i]].request() as bus:
                yield bus
                yield env.timeout(spec.burst_cycles)
        yield env.timeout(spec.CWL if writes[i] else spec.CL)
        done[i] = env.now

    for i in range(arrivals.size):
        env.process(request(i))
    env.run()
    return done


def rate(run, requests: int, repeats: int = 3) -> float:
    """Best requests per second of ``run()`` over ``repeats``."""
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = max(best, requests / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--slice", type=int, default=20_000, help="requests for SimPy")
    parser.add_argument("--preset", default="ddr4-3200")
    args = parser.parse_args()

    spec, _ = resolve("dram", args.preset, {})
    rng = np.random.default_rng(0)
    half = args.requests // 2
    lines = spec.capacity // spec.request_bytes
    addresses = np.concatenate([rng.integers(0, lines, half),
                                np.arange(args.requests - half)]) * spec.request_bytes
    writes = rng.random(args.requests) < 0.2
    spacing = spec.burst_cycles / spec.bus_channels / 0.8          # 80 % of peak
    arrivals = (np.arange(args.requests) * spacing).astype(np.int64)

    rates = {}
    for fidelity in ("detailed", "fast"):
        make_device("dram", spec, fidelity).service_cycles(arrivals[:100], addresses[:100],
                                                 writes[:100])          # compile
        rates[fidelity] = rate(lambda f=fidelity: make_device("dram", spec, f).service_cycles(
            arrivals, addresses, writes), args.requests)
    picks = np.concatenate([np.arange(args.slice // 2), half + np.arange(args.slice // 2)])
    sliced = (arrivals[:picks.size], addresses[picks], writes[picks])
    rates["simpy"] = rate(lambda: simpy_replay(spec, *sliced), picks.size, repeats=1)

    figures = {
        "benchmark": "bench_dram",
        "preset": args.preset,
        "requests": args.requests,
        "simpy_requests": int(picks.size),
        "detailed_requests_per_s": round(rates["detailed"]),
        "fast_requests_per_s": round(rates["fast"]),
        "simpy_requests_per_s": round(rates["simpy"]),
        "detailed_vs_simpy": round(rates["detailed"] / rates["simpy"], 1),
        "fast_vs_simpy": round(rates["fast"] / rates["simpy"], 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    for name in ("detailed", "fast", "simpy"):
        print(f"{name}: {rates[name]:,.0f} requests/s")
    print(f"detailed_vs_simpy: {figures['detailed_vs_simpy']}x, "
          f"fast_vs_simpy: {figures['fast_vs_simpy']}x")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
