"""The processor's TLB and private cache, and warm-started runs (``run.warm_caches``)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import experiment
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.tier import touched_units
from simulator.core.config import ComputeConfig
from simulator.core.processor import TIER_SHIFT, Processor
from simulator.runs.experiment import load_points, run_point


def compute(**parts) -> ComputeConfig:
    return ComputeConfig.model_validate({"tier": "hbm", **parts})


def test_touched_units_lists_every_line_a_row_touches():
    lines, count = touched_units(np.array([0, 100, 4096]), np.array([128, 64, 256]), 64)
    assert count.tolist() == [2, 2, 4]
    assert lines.tolist() == [0, 64, 64, 128, 4096, 4160, 4224, 4288]


@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 700)), min_size=1,
                max_size=30), st.sampled_from([32, 64, 128]))
@settings(max_examples=60, deadline=None)
def test_touched_units_cover_each_row_exactly(rows, line):
    addresses = np.array([a for a, _ in rows])
    sizes = np.array([s for _, s in rows])
    lines, count = touched_units(addresses, sizes, line)
    start = 0
    for a, s, n in zip(addresses, sizes, count, strict=True):
        mine = lines[start:start + n]
        start += n
        assert mine[0] <= a < mine[0] + line and mine[-1] <= a + s - 1 < mine[-1] + line
        assert np.all(np.diff(mine) == line)


def test_tlb_misses_follow_lru_over_pages():
    # pages A B A C B, two entries (fully associative LRU): A, B, C and B miss
    cpu = Processor(compute(tlb={"entries": 2, "ways": 2, "miss_time": "10 ns"}))
    pages = np.array([0, 1, 0, 2, 1]) * 4096 + 8
    cost = cpu.serve(np.zeros(5, dtype=np.int64), pages, np.full(5, 64))
    assert cost.tlb_misses == 4
    assert cost.seconds == pytest.approx(40e-9)
    assert not cost.near.any()
    assert cpu.counters() == {"tlb_misses": 4, "tlb_miss_rate": 0.8, "tlb_walk_misses": 4}


def test_a_walk_reads_its_page_table_entry_through_the_private_cache():
    """Pages 0, 8, 0, 1, 16 with a one-entry TLB: all five miss. Entries are 8 B, so pages 0-7
    share one 64 B line of entries: the walks of pages 0, 8 and 16 miss the private cache
    (three lines), those of the second page 0 and of page 1 find their line there."""
    cpu = Processor(compute(tlb={"entries": 1, "ways": 1, "miss_time": "10 ns",
                                 "walk_miss_time": "100 ns"},
                            private_cache={"size": "1 KiB", "ways": 16, "line": "64 B",
                                           "line_time": "0 ns"}))
    pages = np.array([0, 8, 0, 1, 16]) * 4096
    cost = cpu.serve(np.zeros(5, dtype=np.int64), pages, np.full(5, 64))
    assert cost.tlb_misses == 5 and cost.walk_misses == 3
    assert cost.seconds == pytest.approx(5 * 10e-9 + 3 * 100e-9)
    assert cost.near.tolist() == [False, False, True, False, False]   # entries keep rows
    # without a private cache no walk finds its entry
    bare = Processor(compute(tlb={"entries": 1, "ways": 1, "miss_time": "10 ns",
                                  "walk_miss_time": "100 ns"}))
    assert bare.serve(np.zeros(5, dtype=np.int64), pages, np.full(5, 64)).walk_misses == 5


def test_tiers_are_apart_in_the_processors_address_space():
    cpu = Processor(compute(tlb={"entries": 2, "ways": 2, "miss_time": "1 ns"}))
    cost = cpu.serve(np.array([0, 1]), np.array([0, 0]), np.full(2, 64))
    assert cost.tlb_misses == 2                       # same address, two tiers: two pages
    assert TIER_SHIFT >= 40


def test_a_row_is_near_only_when_all_its_lines_hit_the_private_cache():
    cpu = Processor(compute(private_cache={"size": "256 B", "ways": 4, "line": "64 B",
                                           "line_time": "1 ns"}))
    tiers = np.zeros(4, dtype=np.int64)
    # row 0 (lines 0, 1); row 0 again (near, 2 lines); a row over lines 1, 2 (2 misses 1);
    # a row over lines 0-3 that evicts nothing (4 lines fit): lines 0, 1, 2 hit, 3 misses
    cost = cpu.serve(tiers, np.array([0, 0, 64, 0]), np.array([128, 128, 128, 256]))
    assert cost.near.tolist() == [False, True, False, False]
    assert cost.near_lines == 2
    assert cost.seconds == pytest.approx(2e-9)
    again = cpu.serve(tiers[:1], np.array([0]), np.array([256]))
    assert again.near.tolist() == [True] and again.near_lines == 4


def test_each_thread_has_its_own_private_cache_and_tlb_over_its_share_of_the_bags():
    """Batch 4 over two threads: bags 0-1 are thread 0's, bags 2-3 thread 1's (one table call;
    bag 5 is table 1's sample 1, thread 0's again). Rows at lines 0, 0, 0, 1, 0 in that bag
    order: on one core the second to fourth reads of line 0 hit; on two, thread 1's first read
    of line 0 misses (thread 0 holds it), and so does its first page."""
    parts = {"private_cache": {"size": "1 KiB", "ways": 16, "line": "64 B", "line_time": "1 ns"},
             "tlb": {"entries": 4, "ways": 4, "miss_time": "10 ns"}}
    addresses = np.array([0, 0, 0, 64, 0])
    bags = np.array([0, 1, 2, 3, 5])
    tiers, sizes = np.zeros(5, dtype=np.int64), np.full(5, 64)
    one = Processor(compute(**parts)).serve(tiers, addresses, sizes, bags, 4)
    two_cores = Processor(compute(threads=2, **parts))
    two = two_cores.serve(tiers, addresses, sizes, bags, 4)
    assert one.near.tolist() == [False, True, True, False, True]
    assert two.near.tolist() == [False, True, False, False, True]
    assert (one.tlb_misses, two.tlb_misses) == (1, 2)
    assert two.seconds == pytest.approx(2 * 1e-9 + 2 * 10e-9)
    assert two_cores.counters()["private_cache_rows"] == 2
    assert len(two_cores.privates) == len(two_cores.tlbs) == 2


def test_a_batch_smaller_than_the_threads_leaves_the_extra_cores_idle():
    cpu = Processor(compute(threads=4, tlb={"entries": 4, "ways": 4, "miss_time": "1 ns"}))
    cost = cpu.serve(np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64), np.full(4, 64),
                     np.array([0, 1, 2, 3]), 2)       # two samples, two tables
    assert cost.tlb_misses == 2                          # threads 0 and 1, one page each
    assert [t.stats()["accesses"] for t in cpu.tlbs] == [2, 2, 0, 0]


def test_two_threads_find_fewer_rows_in_their_private_caches(write_experiment):
    private = {"size": "64 KiB", "ways": 16, "line": "64 B", "line_time": "0 ns"}
    one = run_point(*_point(write_experiment, local_tables(private_cache=private))).row
    two = run_point(*_point(write_experiment, local_tables(private_cache=private,
                                                           threads=2))).row
    assert 0 < two["private_cache_rows"] < one["private_cache_rows"]
    assert two["bytes_read_hbm"] > one["bytes_read_hbm"]


def _point(write_experiment, data):
    path = write_experiment(data)
    _, points = load_points(path, {})
    return points[0], str(path)


def local_tables(**compute_parts):
    """Tables in the compute tier (HBM), one query at a time, analytic timing."""
    data = experiment(system__cache=None, system__tables={"tier": "hbm"},
                      run__fidelity="analytic",
                      run__arrivals={"mode": "closed", "concurrency": 1})
    data["system"]["compute"].update(compute_parts)
    data["workload"]["generator"].update(batches=4, alpha=1.3)
    return data


def test_near_rows_are_not_read_from_the_compute_tier(write_experiment):
    plain = run_point(*_point(write_experiment, local_tables())).row
    private = {"size": "64 KiB", "ways": 16, "line": "64 B", "line_time": "0 ns"}
    near = run_point(*_point(write_experiment, local_tables(private_cache=private))).row
    rows = near["private_cache_rows"]
    assert 0 < rows < near["lookups"]
    assert near["private_cache_hit_rate"] == pytest.approx(rows / near["lookups"])
    # the HBM tier moves 32 B units; rows are 16 or 32 floats (64 B or 128 B), so the
    # bytes saved lie between 64 and 128 per near row
    saved = plain["bytes_read_hbm"] - near["bytes_read_hbm"]
    assert 64 * rows <= saved <= 128 * rows
    assert near["latency_p50_us"] < plain["latency_p50_us"]


def test_tlb_misses_add_their_time_to_pooling(write_experiment):
    tlb = {"entries": 16, "miss_time": "0 ns"}
    free = run_point(*_point(write_experiment, local_tables(tlb=tlb))).row
    tlb["miss_time"] = "20 ns"
    slow = run_point(*_point(write_experiment, local_tables(tlb=tlb))).row
    assert free["tlb_misses"] == slow["tlb_misses"] > 0
    per_query = slow["tlb_misses"] / slow["queries"]
    assert slow["latency_mean_us"] - free["latency_mean_us"] == pytest.approx(
        per_query * 0.02, rel=1e-6)


def test_warm_caches_start_the_timed_pass_with_the_rows_of_every_batch(write_experiment):
    data = experiment(run__arrivals={"mode": "closed", "concurrency": 1}, run__functional=True)
    data["system"]["cache"] = {"tier": "hbm", "load_factor": 1.0, "ways": "full",
                               "hardware": True}
    cold = run_point(*_point(write_experiment, data)).row
    data["run"]["warm_caches"] = True
    warm = run_point(*_point(write_experiment, data)).row   # functional check and invariants
    lookups = warm["lookups"]
    # every row fits: the warm-up pass misses each distinct row once, the timed pass hits all
    assert warm["cache_hits"] + warm["cache_misses"] == 2 * lookups
    assert warm["cache_misses"] == cold["cache_misses"]
    assert warm["cache_hits"] == cold["cache_hits"] + lookups
    assert warm["bytes_dram"] == 0 < cold["bytes_dram"]
    assert warm["latency_p50_us"] < cold["latency_p50_us"]


@pytest.mark.parametrize(("dim", "dtype", "private", "paid"), [
    (20, "float16", False, "all"), (20, "bfloat16", True, "far"), (20, "float32", True, "none"),
    (32, "float16", True, "none")])
def test_half_remainder_overhead_is_paid_by_16_bit_partial_vectors_beyond_the_private_cache(
        write_experiment, dim, dtype, private, paid):
    """One table: with 16-lane vectors, each lookup of a 16-bit row of 20 elements whose row
    the private cache does not hold costs 5 ns more (every lookup, without a private cache);
    float32 rows and whole vectors pay nothing more."""
    parts = {"vector_elements": 16}
    if private:
        parts["private_cache"] = {"size": "16 KiB", "ways": 16, "line": "64 B",
                                  "line_time": "0 ns"}

    def row(cost: str) -> dict:
        data = local_tables(**parts, half_remainder_overhead=cost)
        data["workload"]["generator"]["tables"] = [{"rows": 5000, "dim": dim, "dtype": dtype}]
        return run_point(*_point(write_experiment, data)).row

    free, slow = row("0 ns"), row("5 ns")
    near = slow.get("private_cache_rows", 0)
    far = {"all": slow["lookups"], "far": slow["lookups"] - near, "none": 0}[paid]
    assert slow["latency_mean_us"] - free["latency_mean_us"] == pytest.approx(
        far / slow["queries"] * 5e-3, rel=1e-9, abs=1e-12)
    if paid == "far":
        assert 0 < near < slow["lookups"]


def test_with_cores_the_half_remainder_overhead_is_each_cores_own_work(write_experiment):
    """Two float16 tables of 20 elements (not whole 16-lane vectors), no private cache, two
    cores of equal speed, one table each: a query's pooling lasts as long as the slower
    core's, whose lookups (one table's) each cost 5 ns more; the other core's run alongside."""
    parts = {"vector_elements": 16, "cores": {"count": 2}}

    def row(cost: str) -> dict:
        data = local_tables(**parts, half_remainder_overhead=cost)
        data["workload"]["generator"]["tables"] = [{"rows": 5000, "dim": 20, "dtype": "float16"},
                                                   {"rows": 5000, "dim": 20, "dtype": "float16"}]
        return run_point(*_point(write_experiment, data)).row

    free, slow = row("0 ns"), row("5 ns")
    assert slow["core0_lookups_compute"] == slow["core1_lookups_compute"] == slow["lookups"] / 2
    assert slow["latency_mean_us"] - free["latency_mean_us"] == pytest.approx(
        slow["lookups"] / 2 / slow["queries"] * 5e-3, rel=1e-9)
