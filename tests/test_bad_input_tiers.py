"""Bad placement, tier and cache configurations: exit 2, one line, nothing written."""

from __future__ import annotations

import pytest
from conftest import embsim, experiment, write_yaml


def two_tier(**tables):
    return experiment(system__cache=None,
                      system__tables={"tier": ["hbm", "dram"], "link": "pcie", **tables})


CASES = {
    "placement": (two_tier(placement="coldest"),
                  ["system.tables.placement", "unknown placement policy 'coldest'",
                   "hot_rows, whole_tables"]),
    "budget tier": (two_tier(budget={"ssd": "1 GiB"}),
                    ["system.tables.budget.ssd", "unknown table tier 'ssd'"]),
    "no room": (two_tier(budget={"hbm": "1 KiB", "dram": "1 KiB"}),
                ["system.tables.tier", "tiers 'hbm', 'dram' hold 2 KiB"]),
    "repeated tier": (two_tier(tier=["dram", "dram"]),
                      ["system.tables", "list of distinct tiers"]),
    "cache kind": (experiment(system__cache__kind="arc"),
                   ["system.cache.kind", "unknown row cache kind 'arc'", "fbgemm_uvm"]),
    "cache option": (experiment(system__cache__kind="pinned"),
                     ["system.cache.ways", "unknown key for cache kind 'pinned'"]),
    "optimizer": (experiment(run__mode="training", run__optimizer="adam"),
                  ["run.optimizer", "'sgd', 'rowwise_adagrad' or 'adagrad'"]),
    "device fidelity": (experiment(run__fidelity="cycle"),
                        ["run.fidelity", "'analytic', 'fast' or 'detailed' (got 'cycle')"]),
    "tlb ways": (experiment(system__compute__tlb={"entries": 100, "miss_time": "5 ns"}),
                 ["system.compute.tlb", "'entries' (100) must be a multiple of 'ways' (16)"]),
    "tlb page": (experiment(system__compute__tlb={"entries": 64, "page": "3 KiB",
                                                  "miss_time": "5 ns"}),
                 ["system.compute.tlb", "'page' must be a power of two bytes, got 3072"]),
    "tlb miss time": (experiment(system__compute__tlb={"entries": 64}),
                      ["system.compute.tlb.miss_time", "required"]),
    "private cache size": (experiment(system__compute__private_cache={
        "size": "1000 B", "ways": 16, "line_time": "1 ns"}),
        ["system.compute.private_cache", "must be a multiple of line x ways (64 B x 16)"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_tier_and_cache_config(tmp_path, name):
    data, expect = CASES[name]
    path = write_yaml(tmp_path / "bad.yaml", data)
    out = tmp_path / "out"
    proc = embsim("run", str(path), "--out", str(out))
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0]
    for fragment in expect:
        assert fragment in lines[0], (fragment, lines[0])
    assert not out.exists()
