"""Device test bench: the detailed model's command log, per standard, against each constraint.

Every test replays a few requests through ``DetailedDram`` with its command trace on and
asserts the gap between two commands equals the constraint that separates them.
"""

from __future__ import annotations

import numpy as np
import pytest
from devices import DEVICES, device_spec

from hwmodels.dram.detailed import ACT, PRE, RD, REF, REFPB, WR, DetailedDram


@pytest.fixture(params=sorted(DEVICES))
def standard(request) -> str:
    """Every DRAM standard of the test bench in turn."""
    return request.param


def replay(spec, requests):
    """Serve (cycle, address, is_write) requests; (model, command trace, completions)."""
    cycles, addresses, writes = (np.array(column) for column in zip(*requests, strict=True))
    dram = DetailedDram(spec, trace_commands=10_000)
    done = dram.service_cycles(cycles, addresses, writes.astype(bool))
    return dram, dram.command_trace(), done


def at(spec, bank_group=0, bank=0, row=0, column=0, rank=0):
    return int(spec.address_map.encode(rank=rank, bank_group=bank_group, bank=bank, row=row,
                                       column=column))


def times(trace, command):
    return trace[trace[:, 1] == command, 0].tolist()


def command_cycles(spec, command) -> int:
    """Cycles a command holds the command bus: DDR5's ACT, RD and WR two (JESD79-5)."""
    return 2 if spec.standard_data.two_cycle_commands and command in (ACT, RD, WR) else 1


def test_a_command_ready_behind_another_waits_for_the_bus(standard):
    """A read hit and a miss in another bank group ready in the same cycle: the hit's RD goes
    first (FR-FCFS), the miss's ACT on the next free command-bus cycle: one cycle later, two
    on DDR5, whose RD holds the bus two cycles; on HBM's separate row bus, the same cycle."""
    spec = device_spec(standard)
    warm = (0, at(spec), False)
    _, trace, _ = replay(spec, [warm, (5000, at(spec, column=1), False),
                                (5000, at(spec, bank_group=1, row=3), False)])
    read, act = times(trace, RD)[1], times(trace, ACT)[1]
    assert read == 5000
    assert act - read == {"DDR4": 1, "DDR5": 2}.get(standard, 0)


def test_activate_to_read_is_tRCD_and_read_returns_after_CL_and_burst(standard):
    spec = device_spec(standard)
    _, trace, done = replay(spec, [(100, at(spec), False)])
    assert trace[:, 1].tolist() == [ACT, RD]
    assert times(trace, ACT) == [100]
    assert times(trace, RD) == [100 + spec.tRCD]
    assert done.tolist() == [100 + spec.tRCD + spec.CL + spec.burst_length // 2]


def test_activate_to_write_is_the_write_tRCD(standard):
    spec = device_spec(standard)
    _, trace, done = replay(spec, [(0, at(spec), True)])
    assert times(trace, WR) == [spec.timing("tRCDWR")]
    assert done.tolist() == [spec.timing("tRCDWR") + spec.CWL + spec.burst_length // 2]


@pytest.mark.parametrize(("other_group", "gap"), [(False, "tCCD_L"), (True, "tCCD_S")])
def test_read_to_read_is_tCCD_L_in_a_group_and_tCCD_S_across(standard, other_group, gap):
    spec = device_spec(standard)
    second = at(spec, bank_group=1) if other_group else at(spec, column=1)
    warm = [(0, at(spec), False), (0, at(spec, bank_group=1), False)]
    _, trace, _ = replay(spec, [*warm, (5000, at(spec, column=2), False), (5000, second, False)])
    reads = times(trace, RD)
    assert reads[3] - reads[2] == getattr(spec, gap)


def test_five_activates_respect_tRRD_S_and_the_four_activate_window(standard):
    spec = device_spec(standard)
    groups = spec.bank_groups
    requests = [(0, at(spec, bank_group=k % groups, bank=k // groups), False) for k in range(5)]
    _, trace, _ = replay(spec, requests)
    acts = times(trace, ACT)
    assert [b - a for a, b in zip(acts[:4], acts[1:4], strict=False)] == [spec.tRRD_S] * 3
    # the fifth: at the window's end or tRRD_S after the fourth, on the first free bus cycle
    expected = max(acts[0] + spec.tFAW, acts[3] + spec.tRRD_S)
    row_bus = trace[:, 1] if spec.standard_data.dual_command_bus else None
    busy = {t + k for t, c in trace[:, :2].tolist()
            if row_bus is None or c in (ACT, PRE, REF, REFPB)
            for k in range(command_cycles(spec, c))} - {acts[4]}
    while expected in busy:
        expected += 1
    assert acts[4] == expected


def test_conflict_precharges_after_tRAS_and_activates_after_tRP_and_tRC(standard):
    spec = device_spec(standard)
    dram, trace, _ = replay(spec, [(0, at(spec, row=0), False), (0, at(spec, row=1), False)])
    assert trace[:, 1].tolist() == [ACT, RD, PRE, ACT, RD]
    first, read = times(trace, ACT)[0], times(trace, RD)[0]
    precharge = times(trace, PRE)[0]
    assert precharge - first == max(spec.tRAS, read - first + spec.tRTP)
    assert times(trace, ACT)[1] == max(precharge + spec.tRP, first + spec.tRC)
    stats = dram.stats()
    assert (stats["row_misses"], stats["row_conflicts"], stats["row_hits"]) == (1, 1, 0)


def test_write_recovery_before_precharge(standard):
    spec = device_spec(standard)
    _, trace, _ = replay(spec, [(0, at(spec, row=0), True), (0, at(spec, row=1), False)])
    write, precharge = times(trace, WR)[0], times(trace, PRE)[0]
    assert precharge - write == max(spec.CWL + spec.burst_length // 2 + spec.tWR,
                                    times(trace, ACT)[0] + spec.tRAS - write)


@pytest.mark.parametrize(("other_group", "gap"), [(False, "tWTR_L"), (True, "tWTR_S")])
def test_write_to_read_turnaround_is_tWTR(standard, other_group, gap):
    spec = device_spec(standard)
    read_at = at(spec, bank_group=1) if other_group else at(spec, column=1)
    warm = [(0, at(spec), False), (0, at(spec, bank_group=1), False)]
    _, trace, _ = replay(spec, [*warm, (5000, at(spec, column=3), True), (5000, read_at, False)])
    write, read = times(trace, WR)[0], times(trace, RD)[2]
    assert read - write == spec.CWL + spec.burst_length // 2 + getattr(spec, gap)


def test_read_to_write_turnaround(standard):
    spec = device_spec(standard)
    warm = [(0, at(spec), False)]
    _, trace, _ = replay(spec, [*warm, (5000, at(spec, column=1), False),
                                (5000, at(spec, column=2), True)])
    read, write = times(trace, RD)[1], times(trace, WR)[0]
    turnaround = spec.CL + spec.burst_length // 2 + spec.tRTRS - spec.CWL
    assert write - read == max(turnaround, spec.tCCD_L)


def test_rank_to_rank_switch_leaves_a_burst_plus_tRTRS():
    spec = device_spec("DDR4")
    warm = [(0, at(spec), False), (0, at(spec, rank=1), False)]
    _, trace, _ = replay(spec, [*warm, (5000, at(spec, column=1), False),
                                (5000, at(spec, rank=1, column=1), False)])
    reads = times(trace, RD)
    assert reads[3] - reads[2] == spec.burst_length // 2 + spec.tRTRS


def test_all_bank_refresh_every_tREFI_per_rank_staggered(standard):
    spec = device_spec(standard, refresh="all_bank")
    dram, trace, _ = replay(spec, [(6 * spec.tREFI, at(spec), False)])
    for rank in range(spec.ranks):
        refs = trace[(trace[:, 1] == REF) & (trace[:, 2] == rank), 0]
        first = rank * spec.tREFI // spec.ranks + spec.tREFI
        assert refs.tolist()[:5] == [first + k * spec.tREFI for k in range(5)]
    acts = times(trace, ACT)
    last_ref = max(t for t in times(trace, REF) if t < acts[0])
    assert acts[0] >= last_ref + spec.tRFC or acts[0] == 6 * spec.tREFI


def test_refresh_precharges_an_open_row_first(standard):
    spec = device_spec(standard, refresh="all_bank", ranks=1)
    _, trace, _ = replay(spec, [(spec.tREFI - 200, at(spec), False),
                                (spec.tREFI + 5 * spec.tRFC, at(spec, column=1), False)])
    precharge, ref = times(trace, PRE)[0], times(trace, REF)[0]
    act = times(trace, ACT)[0]
    read = times(trace, RD)[0]
    assert precharge == max(spec.tREFI, act + spec.tRAS, read + spec.tRTP)
    assert ref == precharge + spec.tRP
    assert times(trace, ACT)[1] >= ref + spec.tRFC     # the row was closed by the refresh


@pytest.mark.parametrize("standard", ["DDR5", "HBM2e", "HBM3", "HBM3e"])
def test_per_bank_refresh_rotates_banks_every_tREFIpb(standard):
    spec = device_spec(standard, refresh="per_bank")
    count = spec.banks_per_rank + 3
    _, trace, _ = replay(spec, [(spec.tREFIpb * (count + 1), at(spec), False)])
    refs = trace[(trace[:, 1] == REFPB) & (trace[:, 2] == 0)]
    assert np.diff(refs[:count, 0]).tolist() == [spec.tREFIpb] * (count - 1)
    banks = refs[:count, 3] * spec.banks_per_group + refs[:count, 4]
    assert banks.tolist() == [k % spec.banks_per_rank for k in range(count)]
