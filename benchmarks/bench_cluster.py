"""Simulation speed and size of a scale-out cluster against one server on the same lookups.

For each cluster size N (``--nodes``), a model of N x ``--tables-per-node`` tables is served by
one server (``sharding.shards: 0``, the baseline, measured in the same run) and by N remote
nodes behind 25 Gb Ethernet (``capacity_balanced``), every server a DRAM tier (generic
``memory`` model) with the calibrated CPU's fixed costs. Each point's simulated lookups per
wall second (system build included), best of ``--repeats`` rounds taken in turn, its ratio to
the single server on the same trace, the time to build the cluster's systems and the peak
resident memory of the process so far. Prints a table and one JSON line.

    python benchmarks/bench_cluster.py [--nodes 8 32 128] [--tables-per-node 2] [--batches 8]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.runs.experiment import load_points, prepare, run_point  # noqa: E402

DRAM = {"capacity": "4 TiB", "bandwidth": "36 GB/s", "latency": "174 ns",
        "access_granularity": "64 B", "channels": 1, "interleave": "64 B"}
CPU = {"tier": "dram", "query_overhead": "0.29 us", "call_overhead": "3.8 us",
       "bag_overhead": "0.63 ns", "lookup_overhead": "0.21 ns"}


def experiment(nodes: int, tables: int, batches: int, batch_size: int, pooling: int) -> dict:
    node = {"memory": {"dram": dict(DRAM)}, "tables": {"tier": "dram"}, "compute": dict(CPU),
            "link": "eth", "rpc_workers": 4}
    return {
        "name": f"cluster_{nodes}",
        "system": {"memory": {"dram": dict(DRAM)}, "links": {"eth": {"preset": "ethernet-25g"}},
                   "tables": {"tier": "dram"}, "compute": dict(CPU),
                   "nodes": {f"n{i}": node for i in range(nodes)},
                   "sharding": {"strategy": "capacity_balanced", "shards": nodes}},
        "workload": {"generator": {"tables": [{"rows": 100000, "dim": 64}] * tables,
                                   "pooling": pooling, "batches": batches,
                                   "batch_size": batch_size, "alpha": 1.05, "seed": 1}},
        "run": {"arrivals": {"mode": "closed", "concurrency": 4}, "fidelity": "fast"},
        "sweep": {"grid": {"system.sharding.shards": [0, nodes]}},
    }


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--tables-per-node", type=int, default=2)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pooling", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out: dict = {"benchmark": "bench_cluster", "tables_per_node": args.tables_per_node,
                 "batches": args.batches, "batch_size": args.batch_size,
                 "pooling": args.pooling}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.nodes:
            tables = n * args.tables_per_node
            path = Path(tmp) / f"cluster_{n}.yaml"
            path.write_text(yaml.safe_dump(experiment(n, tables, args.batches, args.batch_size,
                                                      args.pooling)))
            _, points = load_points(path, {})
            single, cluster = points
            started = time.perf_counter()
            prepare(cluster, str(path))
            build_s = time.perf_counter() - started
            best = {"single": 0.0, "cluster": 0.0}
            lookups = 0
            for _ in range(args.repeats):
                for name, point in (("single", single), ("cluster", cluster)):
                    row = run_point(point, str(path)).row
                    lookups = row["lookups"]
                    best[name] = max(best[name], row["lookups"] / row["wall_s"])
            ratio = best["cluster"] / best["single"]
            print(f"{n:>4} nodes, {tables:>4} tables, {lookups:>9,} lookups: single "
                  f"{best['single']:,.0f} lookups/s, cluster {best['cluster']:,.0f} lookups/s "
                  f"({ratio:.2f}x), cluster build {build_s:.2f} s, peak RSS "
                  f"{peak_rss_mib():,.0f} MiB")
            out.update({f"lookups_{n}": lookups, f"single_lookups_per_s_{n}": round(best["single"]),
                        f"cluster_lookups_per_s_{n}": round(best["cluster"]),
                        f"vs_single_{n}": round(ratio, 3), f"build_s_{n}": round(build_s, 2)})
    out.update({"peak_rss_mib": round(peak_rss_mib()), "python": platform.python_version(),
                "machine": platform.machine()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
