"""Small experiments that cover every path of the engine, recorded before a refactor.

``metrics_before_units.parquet`` holds their metric columns as the engine computed them before
compute units and the stage pipeline existed (commit 84435b2, with ``run_case``'s import
pointed at that commit's ``simulator.experiment``); ``test_golden_metrics`` reruns them and asks
for the same numbers, bit for bit (a null must stay null). ``python tests/golden/record.py``
rewrites the file (only ever on purpose: say in the commit which numbers changed and why).
``full_runs.py`` does the same comparison at full size on the shipped experiments and the
committed validation pairs, between two checkouts.

Changed on purpose since: a generic tier moves the units an access touches at its address, not
its size rounded up (2026-12-04): ``train_rowwise`` and ``train_hardware``, whose rows carry
4 B of optimizer state and so straddle lines, read and write more bytes (DRAM 994,496 ->
1,214,912 B; HBM 1,051,392 -> 1,242,080 B in ``train_hardware``). A TLB miss reads its
page-table entry through the private cache (2026-12-04): in ``cpu_processor`` and
``cpu_processor_warm`` the entries take lines from rows (private-cache hit rate 0.357 -> 0.355
and 0.368 -> 0.365), latencies move by under 0.01%, and ``tlb_walk_misses`` is recorded.
The ``fast`` DRAM model plans a request's column command after the refresh that will hold its
ACT back, instead of picking it early and then pushing the channel's column order past the
refresh (issue 16, 2026-12-04): ``devices_fast`` (hbm3-h100 and ddr5-4800-8ch at ``fast``)
moves by under 0.2% (latency mean 2.02818 -> 2.02479 us, p99 2.87353 -> 2.86856 us,
throughput +0.02%). DDR5's ACT, RD and WR hold the command bus two cycles in ``detailed``
(JESD79-5, issue 16, 2026-12-05): ``devices_train_detailed`` (ddr5-4800-8ch at ``detailed``)
moves by under 0.01% (latency p50 5.265006 -> 5.264798 us, p95 5.573587 -> 5.573858 us, p99
5.609987 -> 5.610374 us). A refresh due before a row hit's column command closes the row in
``fast`` (the hit activates it again after the refresh; issue 16, 2026-12-05): ``tiered_train``
activates its DRAM rows 881 times instead of 808 (row hits 19,653 -> 19,580, precharges 680 ->
753), and ``tiered_hot_rows``'s latencies move by under 0.01% (p50 251.85916 -> 251.83999 us).
Nothing else moved.
"""

from __future__ import annotations

import copy
from typing import Any

HBM = {"capacity": "80 GB", "bandwidth": "3.2 TB/s", "latency": "500 ns",
       "access_granularity": "32 B", "channels": 16, "interleave": "256 B"}
DRAM = {"capacity": "64 GB", "bandwidth": "300 GB/s", "latency": "100 ns",
        "access_granularity": "64 B", "channels": 8, "interleave": "256 B"}
PCIE = {"bandwidth": "64 GB/s", "latency": "1 us"}

BASE: dict[str, Any] = {
    "system": {
        "memory": {"hbm": HBM, "dram": DRAM},
        "links": {"pcie": PCIE},
        "tables": {"tier": "dram", "link": "pcie"},
        "compute": {"tier": "hbm"},
        "cache": {"tier": "hbm", "size": "64 KiB", "ways": 8, "policy": "lru"},
    },
    "workload": {"generator": {
        "tables": [{"rows": 5000, "dim": 16}, {"rows": 3000, "dim": 32}],
        "pooling": 8, "batches": 8, "batch_size": 32, "alpha": 1.1, "seed": 3}},
    "run": {"arrivals": {"mode": "closed", "concurrency": 3}, "seed": 0},
}

DEVICES = {"hbm": {"preset": "hbm3-h100"}, "dram": {"preset": "ddr5-4800-8ch"}}
CPU = {"tier": "hbm", "query_overhead": "0.3 us", "call_overhead": "3.8 us",
       "bag_overhead": "0.6 ns", "lookup_overhead": "0.2 ns", "lookup_chain_latency": "7 ns",
       "tlb": {"entries": 64, "page": "4 KiB", "miss_time": "0.7 ns"},
       "private_cache": {"size": "64 KiB", "ways": 16, "line": "64 B", "line_time": "0.1 ns"}}
TIERED = {"memory": {"dram": {"preset": "ddr5-4800-8ch"},
                     "scm": {"preset": "optane-pmem-100", "link": "direct"},
                     "ssd": {"preset": "intel-d7-p5500", "link": "direct"}},
          "links": {},
          "tables": {"tier": ["dram", "scm", "ssd"], "placement": "hot_rows",
                     "budget": {"dram": "64 KiB", "scm": "128 KiB"}, "profile_batches": 3},
          "compute": {"tier": "dram"},
          "cache": {"tier": "dram", "caches": ["scm", "ssd"], "size": "32 KiB", "ways": 8}}

CASES: dict[str, dict[str, Any]] = {
    "software_lru": {},
    "analytic": {"run.fidelity": "analytic"},
    "no_cache_local": {"system.cache": None, "system.tables": {"tier": "hbm"}},
    "no_cache_remote": {"system.cache": None},
    "hardware_cache": {"system.cache.hardware": True},
    "mean_pooling": {"system.compute.pooling": "mean"},
    "lfu_full": {"system.cache.ways": "full", "system.cache.policy": "lfu"},
    "train_rowwise": {"run.mode": "training"},
    "train_adagrad_nocache": {"run.mode": "training", "run.optimizer": "adagrad",
                              "system.cache": None},
    "train_sgd_local": {"run.mode": "training", "run.optimizer": "sgd", "system.cache": None,
                        "system.tables": {"tier": "hbm"}},
    "train_hardware": {"run.mode": "training", "system.cache.hardware": True},
    "open_loop": {"run.arrivals": {"mode": "open", "qps": 20000}},
    "concurrency_8_analytic": {"run.fidelity": "analytic",
                               "run.arrivals": {"mode": "closed", "concurrency": 8}},
    "fbgemm_lfu": {"system.cache": {"tier": "hbm", "kind": "fbgemm_uvm", "policy": "lfu",
                                    "load_factor": 0.05}},
    "colossal": {"system.cache": {"tier": "hbm", "kind": "colossal", "load_factor": 0.1,
                                  "profile_batches": 3}},
    "hugectr": {"system.cache": {"tier": "hbm", "kind": "hugectr", "load_factor": 0.05}},
    "pinned": {"system.cache": {"tier": "hbm", "kind": "pinned", "load_factor": 0.05,
                                "profile_batches": 3}},
    "devices_fast": {"system.memory": DEVICES},
    "devices_detailed": {"system.memory": DEVICES, "run.fidelity": "detailed"},
    "devices_analytic": {"system.memory": DEVICES, "run.fidelity": "analytic"},
    "devices_train_detailed": {"system.memory": DEVICES, "run.fidelity": "detailed",
                               "run.mode": "training"},
    "tiered_hot_rows": {"system": TIERED},
    "tiered_train": {"system": TIERED, "run.mode": "training"},
    "whole_tables_budget": {"system.tables": {"tier": ["hbm", "dram"], "link": "pcie",
                                              "budget": {"hbm": "400 KiB"}},
                            "system.cache.caches": ["dram"]},
    "cpu_processor": {"system.compute": CPU, "system.cache.hardware": True},
    "cpu_processor_warm": {"system.compute": CPU, "system.cache.hardware": True,
                           "run.warm_caches": True},
    "functional_cache": {"run.functional": True},
    "functional_hugectr": {"run.functional": True,
                           "system.cache": {"tier": "hbm", "kind": "hugectr",
                                            "load_factor": 0.05}},
}


def case_config(name: str) -> dict[str, Any]:
    """The experiment of case ``name``: BASE with its dotted overrides (None deletes)."""
    data = copy.deepcopy(BASE)
    data["name"] = name
    for path, value in CASES[name].items():
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
    return data
