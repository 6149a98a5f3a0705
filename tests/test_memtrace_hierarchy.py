"""``embsim memtrace`` with cache levels in front of the device; the caches' memory stream."""

from __future__ import annotations

import json

import numpy as np
from conftest import embsim, write_yaml

from hwmodels.cache.hardware import HardwareCache
from hwmodels.cache.hw_kernels import READ, WRITEBACK


def test_memory_requests_carry_the_index_of_the_access_that_caused_them():
    cache = HardwareCache(64, 1, 64, "lru")            # one line
    cache.access(np.array([0, 64, 128]), np.array([False, True, False]))
    memory = cache.next_level
    # read 0 (access 0); write miss on 64 fetches it (access 1); access 2 evicts the dirty
    # line 64 before fetching 128
    assert memory.addresses.tolist() == [0, 64, 64, 128]
    assert memory.kinds.tolist() == [READ, READ, WRITEBACK, READ]
    assert memory.origin.tolist() == [0, 1, 2, 2]


def system_file(tmp_path, levels, inclusion="nine"):
    return write_yaml(tmp_path / "system.yaml", {
        "kind": "dram", "preset": "ddr4-3200",
        "caches": {"inclusion": inclusion, "levels": levels}})


def test_memtrace_through_caches_reports_levels_and_only_misses_reach_dram(tmp_path):
    lines = [f"0x{(i % 4) * 64:x} READ {i * 10}" for i in range(40)]       # 4 lines, 10 times
    lines += [f"0x{0x100000 + i * 64:x} WRITE {400 + i * 10}" for i in range(600)]
    trace = tmp_path / "t.trace"
    trace.write_text("\n".join(lines) + "\n")
    system = system_file(tmp_path, [{"name": "L1", "size": "4 KiB", "ways": 4},
                                    {"name": "L2", "size": "16 KiB", "ways": 8}])
    proc = embsim("memtrace", str(system), str(trace), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    l1, l2 = out["levels"]["L1"], out["levels"]["L2"]
    assert l1["hits"] == 36 and l1["misses"] == 4 + 600
    # the 600 written lines (37.5 KiB) overflow both levels: L2's dirty victims reach DRAM
    assert out["writes"] == l2["writebacks"] > 0
    # DRAM reads are L2's line fills: its read misses (write-back misses allocate, no fetch)
    assert out["reads"] == l2["read_misses"]
    assert l1["hit_rate"] == 36 / 640
    text = embsim("memtrace", str(system), str(trace))
    assert "cache L1           hit rate 0.0563 (36 hits, 604 misses" in text.stdout


def test_bad_cache_level_is_bad_input(tmp_path):
    system = system_file(tmp_path, [{"name": "L1", "size": "5000 B", "ways": 4}])
    trace = tmp_path / "t.trace"
    trace.write_text("0x0 READ 0\n")
    proc = embsim("memtrace", str(system), str(trace))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "caches.levels.0.size" in proc.stderr
