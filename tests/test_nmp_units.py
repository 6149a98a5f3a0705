"""Near-memory unit kinds (rank, bank_group, dimm, upmem, cxl): one lookup's closed-form
latency, partial sums equal to torch's pooling, the split of lookups between engines, and bad
input. Closed forms use analytic DRAM (a lone read returns ``tRCD + CL + BL/2`` cycles after
the cycle it arrives in) and analytic generic tiers (``latency + bytes / bandwidth``)."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from conftest import embsim_here as embsim
from conftest import write_yaml

from embsim.errors import InvariantError
from hwmodels.presets import resolve
from simulator.core.units.engine_schedule import Param, schedule_query
from simulator.runs.experiment import load_points, run_point

CPU = {"capacity": "32 MiB", "bandwidth": "400 GB/s", "latency": "20 ns",
       "access_granularity": "64 B", "channels": 1, "interleave": "64 B"}
DQ = {"bandwidth": "19.2 GB/s", "latency": "13.3 ns"}
CXL_LINK = {"bandwidth": "31.5 GB/s", "latency": "300 ns"}
DRAM = {"preset": "ddr4-2400", "link": "direct",
        "params": {"ranks": 2, "mapping": "rorabgbacoch", "refresh": "none"}}
PIM = {**CPU, "capacity": "8 GiB", "link": "direct"}
UNITS = {
    "rank": {"kind": "rank", "tier": "dram", "preset": "recnmp", "link": "dq"},
    "bank_group": {"kind": "bank_group", "tier": "dram", "preset": "trim", "link": "dq"},
    "dimm": {"kind": "dimm", "tier": "dram", "preset": "tensordimm", "link": "dq",
             "ranks_per_dimm": 1},
    "upmem": {"kind": "upmem", "tier": "pim", "ranks": 2, "preset": "upmem-350mhz"},
    "cxl": {"kind": "cxl", "tier": "cxl", "preset": "cxl-nmp"},
}
TIER = {"rank": "dram", "bank_group": "dram", "dimm": "dram", "upmem": "pim", "cxl": "cxl"}


def experiment(kind: str, batches: int = 1, batch_size: int = 1, pooling: int = 1,
               dim: int = 16, **run: Any) -> dict[str, Any]:
    return copy.deepcopy({
        "system": {
            "memory": {"cpu": CPU, "dram": DRAM, "pim": PIM,
                       "cxl": {"preset": "cxl-ddr5-expander", "link": "cxl_link"}},
            "links": {"dq": DQ, "cxl_link": CXL_LINK},
            "tables": {"tier": TIER[kind]},
            "compute": {"tier": "cpu"},
            "units": {"nmp": UNITS[kind]},
        },
        "workload": {"generator": {"tables": [{"rows": 1000, "dim": dim},
                                              {"rows": 2000, "dim": dim}][:1 + (batches > 1)],
                                   "pooling": pooling, "batches": batches,
                                   "batch_size": batch_size, "alpha": 1.1, "seed": 2}},
        "run": {"fidelity": "analytic", **run},
    })


def simulate(tmp_path, data, name="exp.yaml"):
    path = write_yaml(tmp_path / name, data)
    _, points = load_points(path, {})
    return run_point(points[0], str(path)).row


def spec(kind: str, name: str):
    return resolve(kind, name, {})[0]


def dram_read_s(arrival_s: float, dram=None) -> float:
    """When analytic DRAM finishes a lone read (a row miss) that arrives at ``arrival_s``."""
    d = dram or spec("dram", "ddr4-2400")
    cycle = math.ceil(arrival_s / d.tCK - 1e-9)
    return (cycle + d.tRCD + d.CL + d.burst_cycles) * d.tCK + d.frontend_latency


def combine_s(partial_bytes: int) -> float:
    """The host lands, reads and adds the partials into their outputs, in its cpu tier."""
    return 20e-9 + 4 * partial_bytes / 400e9


def link_s(nbytes: int, link=DQ) -> float:
    bandwidth = 19.2e9 if link is DQ else 31.5e9
    latency = 13.3e-9 if link is DQ else 300e-9
    return nbytes / bandwidth + latency


def test_rank_engine_closed_form(tmp_path):
    nmp, dram = spec("nmp", "recnmp"), spec("dram", "ddr4-2400")
    issued = dram.tCK / nmp.instructions_per_cycle            # the lookup's instruction
    cycles = 16 // nmp.lanes + nmp.bag_cycles + nmp.pipeline_cycles
    unit = max(dram_read_s(0.0), issued) + cycles / nmp.clock
    expected = unit + link_s(64) + combine_s(64)
    row = simulate(tmp_path, experiment("rank"))
    assert row["latency_p50_us"] * 1e-6 == pytest.approx(expected, rel=1e-9)
    assert row["pooled_lookups_nmp"] == 1 and row["partials_nmp"] == 1
    assert row["bytes_dq"] == 64


def test_bank_group_engine_closed_form(tmp_path):
    nmp = spec("nmp", "trim")
    issued = spec("dram", "ddr4-2400").tCK / nmp.instructions_per_cycle
    cycles = 16 // nmp.lanes + nmp.bag_cycles + nmp.pipeline_cycles
    expected = max(dram_read_s(0.0), issued) + cycles / nmp.clock + link_s(64) + combine_s(64)
    row = simulate(tmp_path, experiment("bank_group"))
    assert row["latency_p50_us"] * 1e-6 == pytest.approx(expected, rel=1e-9)


def test_dimm_engines_each_pool_a_slice_closed_form(tmp_path):
    """Two single-rank DIMMs: a 64 B row is two 32 B slices (one burst each, read from the
    query's start), one instruction on the channel reaching both DIMMs, each DIMM's core adds
    8 elements."""
    nmp, dram = spec("nmp", "tensordimm"), spec("dram", "ddr4-2400")
    step = dram.tCK / nmp.instructions_per_cycle
    cycles = 8 // nmp.lanes + nmp.bag_cycles + nmp.pipeline_cycles
    unit = max(dram_read_s(0.0), step) + cycles / nmp.clock
    expected = unit + link_s(64) + combine_s(2 * 64)
    row = simulate(tmp_path, experiment("dimm"))
    assert row["latency_p50_us"] * 1e-6 == pytest.approx(expected, rel=1e-9)
    assert row["partials_nmp"] == 2 and row["engines_nmp"] == 2


def test_upmem_closed_form(tmp_path):
    """Host writes the DPU its index and offset, the DPU fetches the row by DMA while adding
    it, the host reads the DPU's partial; each rank-wide transfer moves 64 buffers."""
    s = spec("upmem", "upmem-350mhz")
    to_dpu = 64 * 8 / s.host_to_dpu_bandwidth
    work = max(s.mram_alpha + 64 * s.mram_beta, 16 * s.add_instructions) / s.clock
    from_dpu = 64 * 64 / s.dpu_to_host_bandwidth
    expected = to_dpu + work + from_dpu + combine_s(64)
    row = simulate(tmp_path, experiment("upmem"))
    assert row["latency_p50_us"] * 1e-6 == pytest.approx(expected, rel=1e-9)
    assert row["mram_bytes_nmp"] == 64 and row["dpus_nmp"] == 128


def test_cxl_engine_closed_form(tmp_path):
    nmp, dram = spec("nmp", "cxl-nmp"), spec("dram", "cxl-ddr5-expander")
    instructions = link_s(math.ceil(nmp.instruction_bits / 8), CXL_LINK)
    pooling = (16 // nmp.lanes + nmp.bag_cycles + nmp.pipeline_cycles) / nmp.clock
    unit = instructions + max(dram_read_s(instructions, dram) - instructions, pooling)
    expected = unit + link_s(64, CXL_LINK) + combine_s(64)
    row = simulate(tmp_path, experiment("cxl"))
    assert row["latency_p50_us"] * 1e-6 == pytest.approx(expected, rel=1e-9)
    assert row["bytes_cxl_link"] == 64 + 10


@pytest.mark.parametrize("kind", sorted(UNITS))
@pytest.mark.parametrize("pooling", ["sum", "mean"])
def test_every_kind_pools_what_torch_pools(tmp_path, kind, pooling):
    data = experiment(kind, batches=3, batch_size=8, pooling=12, functional=True,
                      arrivals={"mode": "closed", "concurrency": 2})
    data["system"]["compute"]["pooling"] = pooling
    if kind in ("rank", "dimm"):
        data["system"]["units"]["nmp"]["cache"] = {"kind": "software", "size": "4 KiB",
                                                   "ways": 4}
    row = simulate(tmp_path, data)
    assert row["functional_checked_bags"] == 3 * 2 * 8
    assert row["pooled_lookups_nmp"] == row["lookups"]


@pytest.mark.parametrize("kind", ["rank", "bank_group"])
def test_engines_split_every_lookup_by_where_its_row_lives(tmp_path, kind):
    data = experiment(kind, batches=4, batch_size=16, pooling=20,
                      arrivals={"mode": "closed", "concurrency": 3})
    data["system"]["memory"]["dram"]["params"]["ranks"] = 4
    row = simulate(tmp_path, data)
    engines = 4 * (4 if kind == "bank_group" else 1)
    assert row["engines_nmp"] == engines
    assert row["pooled_lookups_nmp"] == row["lookups"]
    assert 1.0 <= row["load_imbalance_nmp"] <= engines
    # one partial vector per (DIMM, bag) it touched crosses the DQ
    assert row["bytes_dq"] == row["partials_nmp"] * 64
    assert row["partials_nmp"] <= 2 * 4 * 2 * 16


def test_an_engine_adds_its_last_row_after_it_arrives():
    """One engine, one bag of two 16-element rows (4 lanes: 4 cycles each, 2 per bag, a
    5-cycle pipeline, 1 ns cycles); the second row's data arrives at 1 us, long after the
    first: the engine ends 4 + 2 + 5 cycles after it, and one 64 B partial leaves."""
    timing = np.zeros(len(Param))
    timing[[Param.CYCLE_S, Param.PIPELINE_CYCLES, Param.BAG_CYCLES, Param.LANES]] = (
        1e-9, 5, 2, 4)
    engine_free = np.zeros(1)
    done, longest, instructions, pieces, added, partials, payload = schedule_query(
        0.0, np.zeros(2, dtype=np.int64), 1, np.zeros(2, dtype=np.int64),
        np.full(2, 64, dtype=np.int64), np.full(2, 16, dtype=np.int64),
        np.zeros((2, 1), dtype=bool), np.ones((2, 1), dtype=np.int64), np.array([1e-9, 1e-6]),
        np.zeros(1), engine_free, timing, np.zeros(1, dtype=np.int64),
        np.zeros(1, dtype=np.int64), 1)
    assert done == pytest.approx(1e-6 + 11e-9, rel=1e-12)
    assert engine_free[0] == done
    assert longest == pytest.approx(15e-9)                # 2 x 4 + 2 cycles, pipeline 5
    assert (instructions, list(pieces), added) == (2, [2], 32)
    assert list(partials) == [0] and payload == 64


def test_load_imbalance_counts_idle_engines(tmp_path):
    """One lookup on four ranks: the busiest engine has 1, the mean engine 1/4."""
    data = experiment("rank")
    data["system"]["memory"]["dram"]["params"]["ranks"] = 4
    assert simulate(tmp_path, data)["load_imbalance_nmp"] == 4.0


def test_dimm_partials_are_slices_of_the_bags_outputs(tmp_path):
    """Four DIMMs, each returning a quarter of every bag's 64 B output it touched."""
    data = experiment("dimm", batches=3, batch_size=8, pooling=5)
    data["system"]["memory"]["dram"]["params"]["ranks"] = 4
    row = simulate(tmp_path, data)
    assert row["engines_nmp"] == 4
    assert row["bytes_dq"] == row["partials_nmp"] * 64 / 4
    # every lookup reaches all four DIMMs, so each touches every bag
    assert row["partials_nmp"] == 4 * row["queries"] * 2 * 8


def test_a_unit_that_misreports_its_partial_bytes_breaks_an_invariant(tmp_path, monkeypatch):
    from simulator.core.units import ComputeUnit

    report = ComputeUnit.report_partials
    monkeypatch.setattr(ComputeUnit, "report_partials",
                        lambda self, q, bags, payload: report(self, q, bags, payload + 1))
    path = write_yaml(tmp_path / "exp.yaml", experiment("rank", batches=2, batch_size=2))
    _, points = load_points(path, {})
    with pytest.raises(InvariantError, match="bytes of partial vectors"):
        run_point(points[0], str(path))


def test_hot_rows_replicated_in_every_bank_group_balance_the_engines(tmp_path):
    data = experiment("bank_group", batches=6, batch_size=16, pooling=20,
                      arrivals={"mode": "closed", "concurrency": 1})
    data["workload"]["generator"]["alpha"] = 1.3
    plain = simulate(tmp_path, data, "a.yaml")
    data["system"]["units"]["nmp"]["replicated_rows"] = 200
    replicated = simulate(tmp_path, data, "b.yaml")
    assert replicated["load_imbalance_nmp"] < plain["load_imbalance_nmp"]
    assert replicated["lookups"] == plain["lookups"]


def test_rank_cache_hits_skip_dram_and_hot_profiling_caches_less(tmp_path):
    data = experiment("rank", batches=6, batch_size=16, pooling=20)
    data["workload"]["generator"]["alpha"] = 1.3
    plain = simulate(tmp_path, data, "a.yaml")
    data["system"]["units"]["nmp"]["cache"] = {"kind": "software", "size": "16 KiB",
                                               "ways": 8}
    cached = simulate(tmp_path, data, "b.yaml")
    data["system"]["units"]["nmp"]["hot_entry_threshold"] = 1
    hot = simulate(tmp_path, data, "c.yaml")
    assert cached["cache_hit_rate_nmp"] > 0
    assert cached["bytes_dram"] < plain["bytes_dram"]
    assert cached["energy_j_dram"] < plain["energy_j_dram"]
    # only rows the query repeats go through the cache: fewer accesses, at 50 pJ each
    assert hot["energy_j_nmp"] < cached["energy_j_nmp"]
    assert np.isnan(plain["cache_hit_rate_nmp"])


def test_upmem_cache_aware_partition_serves_hot_rows_from_wram(tmp_path):
    data = experiment("upmem", batches=6, batch_size=16, pooling=20)
    data["workload"]["generator"]["alpha"] = 1.3
    uniform = simulate(tmp_path, data, "a.yaml")
    data["system"]["units"]["nmp"].update(partition="cache_aware", profile_batches=6)
    cached = simulate(tmp_path, data, "b.yaml")
    assert uniform["wram_hits_nmp"] == 0 and cached["wram_hits_nmp"] > 0
    assert cached["mram_bytes_nmp"] < uniform["mram_bytes_nmp"]
    assert cached["load_imbalance_nmp"] <= uniform["load_imbalance_nmp"]


def test_near_memory_energy_spares_the_channel(tmp_path):
    """The same lookups pooled by rank engines spend less DRAM energy than read by the host:
    rows no longer cross the DQ (ddr4-2400's io_energy_per_bit)."""
    data = experiment("rank", batches=3, batch_size=16, pooling=20)
    near = simulate(tmp_path, data, "a.yaml")
    data["system"]["assignment"] = "host"
    host = simulate(tmp_path, data, "b.yaml")
    assert near["bytes_dram"] == host["bytes_dram"]
    per_bit = spec("dram", "ddr4-2400").io_energy_per_bit
    # the DQ term, plus the background energy of the host's longer run
    assert host["energy_j_dram"] - near["energy_j_dram"] >= host["bytes_dram"] * 8 * per_bit


def bad(tmp_path, data, *expect):
    path = write_yaml(tmp_path / "bad.yaml", data)
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    for fragment in [str(path), *expect]:
        assert fragment in lines[0], (fragment, lines[0])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("kind", "change", "expect"), [
    ("rank", {"tier": "pim"}, ["system.units.nmp.tier", "expected a dram tier"]),
    ("rank", {"units": 3}, ["system.units.nmp.units", "3 units, but the device has 2 ranks"]),
    ("bank_group", {"units": 4}, ["system.units.nmp.units", "has 8 bank groups"]),
    ("dimm", {"ranks_per_dimm": 3}, ["system.units.nmp.ranks_per_dimm",
                                     "2 ranks per channel are not whole DIMMs of 3"]),
    ("rank", {"cache": {"kind": "pinned", "size": "4 KiB"}},
     ["system.units.nmp.cache.kind", "needs a profile"]),
    ("rank", {"cache": {"kind": "software"}}, ["system.units.nmp.cache.size"]),
    ("rank", {"link": "pcie"}, ["system.units.nmp.link", "unknown link 'pcie'"]),
    ("rank", {"preset": "nope"}, ["system.units.nmp.preset", "unknown nmp preset 'nope'"]),
    ("upmem", {"ranks": 3}, ["system.units.nmp.ranks", "3 ranks of 64 DPUs hold 12 GiB"]),
    ("upmem", {"tasklets": 30}, ["system.units.nmp.tasklets", "at most 24 tasklets"]),
    ("upmem", {"partition": "random"}, ["system.units.nmp.partition"]),
    ("upmem", {"partition": "cache_aware", "wram_cache": "128 KiB"},
     ["system.units.nmp.wram_cache", "WRAM holds 64 KiB"]),
    ("cxl", {"link": "direct"}, ["system.units.nmp.link", "CXL link"]),
])
def test_bad_unit_config_exits_2_naming_the_field(tmp_path, kind, change, expect):
    data = experiment(kind)
    data["system"]["units"]["nmp"].update(change)
    bad(tmp_path, data, *expect)


def test_rows_must_stay_within_one_engine(tmp_path):
    data = experiment("bank_group", dim=32)
    data["system"]["memory"]["dram"]["params"]["mapping"] = "rorabacobgch"
    bad(tmp_path, data, "system.memory.dram.params.mapping",
        "rows of 128 B would straddle bank groups")


def test_dimm_units_refuse_ddr5_sub_channels(tmp_path):
    data = experiment("dimm")
    data["system"]["memory"]["dram"] = {"preset": "ddr5-4800", "link": "direct",
                                        "params": {"ranks": 2}}
    bad(tmp_path, data, "system.units.nmp.tier", "2 sub-channels (pseudo_channels)")


def test_rank_units_send_one_partial_per_ddr5_dimm(tmp_path):
    """A dual-rank DDR5 DIMM has two sub-channels of two ranks: four engines, one DIMM, so
    one partial vector per bag."""
    data = experiment("rank", batches=2, batch_size=4, pooling=6)
    data["system"]["memory"]["dram"] = {"preset": "ddr5-4800", "link": "direct",
                                        "params": {"ranks": 2, "refresh": "none"}}
    row = simulate(tmp_path, data)
    assert row["engines_nmp"] == 4
    assert row["partials_nmp"] == row["queries"] * 2 * 4


def test_bank_group_replication_runs_from_the_command_line(tmp_path):
    """The config is checked before the trace is profiled; the run then replicates."""
    data = experiment("bank_group", batches=2, batch_size=4, pooling=6)
    data["system"]["units"]["nmp"]["replicated_rows"] = 50
    path = write_yaml(tmp_path / "exp.yaml", data)
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "results.parquet").exists()


def test_engine_arithmetic_counts_elements_not_bytes(tmp_path):
    """fp16 rows are half the bytes of fp32 ones but as many adds: the engines' energy (no
    cache: adds only) is one 7.89 pJ add per element either way."""
    rows = {}
    for dtype in ("float32", "float16"):
        data = experiment("rank", batches=2, batch_size=4, pooling=6)
        for table in data["workload"]["generator"]["tables"]:
            table["dtype"] = dtype
        rows[dtype] = simulate(tmp_path, data, f"{dtype}.yaml")
    for row in rows.values():
        assert row["energy_j_nmp"] == pytest.approx(row["lookups"] * 16 * 7.89e-12)


def test_upmem_energy_is_not_modelled(tmp_path):
    row = simulate(tmp_path, experiment("upmem", batches=2, batch_size=2))
    assert np.isnan(row["energy_j_nmp"]) and np.isnan(row["energy_uj_per_query"])
    assert row["mram_bytes_nmp"] > 0


def test_a_unit_whose_share_disagrees_with_its_slices_breaks_an_invariant(tmp_path,
                                                                         monkeypatch):
    """The host accounts a DIMM partial as 1 / D of a row; a unit that sent whole rows' worth
    (or the host that expected them) is caught."""
    from simulator.core.units.dimm import DimmUnits

    monkeypatch.setattr(DimmUnits, "partial_share", property(lambda self: 1.0,
                                                             lambda self, value: None))
    data = experiment("dimm", batches=2, batch_size=2)
    data["system"]["memory"]["dram"]["params"]["ranks"] = 4
    path = write_yaml(tmp_path / "exp.yaml", data)
    _, points = load_points(path, {})
    with pytest.raises(InvariantError, match="bytes of partial vectors"):
        run_point(points[0], str(path))


def test_training_with_units_inside_dram_is_refused(tmp_path):
    data = experiment("rank", mode="training")
    bad(tmp_path, data, "run.mode", "pools inside DRAM for inference")
