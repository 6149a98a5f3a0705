"""Device test bench for the data paths of near-memory units: per rank and per bank group.

A rank-level unit reads its rank over a private path (no shared channel data bus, no rank to
rank turnaround); a bank-group unit reads its bank group over one. ``tRRD``, ``tFAW`` and
refresh still apply per rank. Command gaps from ``detailed``'s command log, completions from
``fast`` and ``analytic``, both against the channel path of the same device.
"""

from __future__ import annotations

import numpy as np
import pytest
from devices import device_spec

from hwmodels.device import device_kind
from hwmodels.dram.detailed import ACT, RD, REF, DetailedDram
from hwmodels.dram.model import path_bandwidth

DDR4 = device_spec("DDR4", mapping="rochrababgco")
LEVELS = ("detailed", "fast", "analytic")


def at(spec, rank=0, bank_group=0, bank=0, row=0, column=0):
    return int(spec.address_map.encode(rank=rank, bank_group=bank_group, bank=bank, row=row,
                                       column=column))


def replay(path, requests, spec=DDR4):
    """(command trace, completions) of (cycle, address) reads on ``detailed``."""
    cycles, addresses = (np.array(column) for column in zip(*requests, strict=True))
    dram = DetailedDram(spec, path, trace_commands=10_000)
    done = dram.service_cycles(cycles, addresses, np.zeros(cycles.size, dtype=bool))
    return dram.command_trace(), done


def completions(level, path, requests, spec=DDR4):
    cycles, addresses = (np.array(column) for column in zip(*requests, strict=True))
    dram = device_kind("dram").model(spec, level, path=path)
    return dram.service_cycles(cycles, addresses, np.zeros(cycles.size, dtype=bool))


def test_two_ranks_read_at_once_on_their_own_paths():
    first = DDR4.tRCD + DDR4.CL + DDR4.burst_cycles
    requests = [(0, at(DDR4, rank=0)), (0, at(DDR4, rank=1))]
    _, shared = replay("channel", requests)
    _, private = replay("rank", requests)
    assert private.tolist() == [first, first]
    # one channel: one command per cycle, one burst at a time, tRTRS between the ranks
    assert shared[1] - shared[0] >= DDR4.burst_cycles + DDR4.tRTRS
    for level in ("fast", "analytic"):
        assert np.ptp(completions(level, "rank", requests)) == 0
        assert np.ptp(completions(level, "channel", requests)) > 0


def test_a_rank_keeps_tRRD_and_its_four_activate_window():
    groups = DDR4.bank_groups
    requests = [(0, at(DDR4, bank_group=k % groups, bank=k // groups)) for k in range(5)]
    trace, _ = replay("rank", requests)
    acts = trace[trace[:, 1] == ACT, 0].tolist()
    assert [b - a for a, b in zip(acts, acts[1:], strict=False)][:3] == [DDR4.tRRD_S] * 3
    assert acts[4] >= acts[0] + DDR4.tFAW


def test_another_rank_is_not_held_by_the_first_ranks_window():
    groups = DDR4.bank_groups
    first_rank = [(0, at(DDR4, bank_group=k % groups, bank=k // groups)) for k in range(4)]
    trace, _ = replay("rank", [*first_rank, (0, at(DDR4, rank=1))])
    acts = trace[trace[:, 1] == ACT]
    assert acts[acts[:, 2] == 1, 0].tolist() == [0]       # rank 1 activates at once


def test_bank_groups_burst_together_and_one_group_keeps_tCCD_L():
    warm = [(0, at(DDR4, bank_group=g)) for g in range(DDR4.bank_groups)]
    later = 2000
    across = [(later, at(DDR4, bank_group=g, column=1)) for g in range(DDR4.bank_groups)]
    within = [(later, at(DDR4, column=c)) for c in (1, 2)]
    for path, gap in (("bank_group", 1), ("rank", DDR4.tCCD_S)):
        trace, _ = replay(path, [*warm, *across])
        reads = trace[trace[:, 1] == RD, 0][DDR4.bank_groups:]
        # per bank group: one command per cycle on the rank's command bus; per rank: tCCD_S
        assert np.diff(reads).tolist() == [gap] * (DDR4.bank_groups - 1), path
        trace, _ = replay(path, [*warm, *within])
        reads = trace[trace[:, 1] == RD, 0][DDR4.bank_groups:]
        assert reads[1] - reads[0] == DDR4.tCCD_L, path
    done = completions("fast", "bank_group", [*warm, *across])[DDR4.bank_groups:]
    assert np.ptp(done) < DDR4.tCCD_S * (DDR4.bank_groups - 1)


def test_every_rank_refreshes_on_its_own_path():
    spec = device_spec("DDR4", mapping="rochrababgco", refresh="all_bank")
    end = 10 * spec.tREFI
    trace, _ = replay("rank", [(0, at(spec, rank=0)), (end, at(spec, rank=0)),
                               (end, at(spec, rank=1))], spec)
    refreshes = trace[trace[:, 1] == REF]
    counts = np.bincount(refreshes[:, 2], minlength=2)
    assert counts.min() >= 9


def test_private_paths_multiply_the_peak_bandwidth():
    assert path_bandwidth(DDR4, "channel") == pytest.approx(DDR4.peak_bandwidth)
    assert path_bandwidth(DDR4, "rank") == pytest.approx(2 * DDR4.peak_bandwidth)
    per_group = DDR4.request_bytes / (DDR4.tCCD_L * DDR4.tCK)
    assert path_bandwidth(DDR4, "bank_group") == pytest.approx(8 * per_group)


@pytest.mark.parametrize("level", LEVELS)
def test_two_ranks_sustain_about_twice_the_channels_rate_under_load(level):
    """256 B rows (four bursts of one DRAM row each) at random: the data bus, not activates,
    bounds a rank, so two private paths carry about twice what the shared one does."""
    rng = np.random.default_rng(3)
    rows = 1000
    starts = rng.integers(0, DDR4.capacity // 256, rows) * 256
    addresses = (starts[:, None] + np.arange(4) * DDR4.request_bytes).ravel()
    cycles = np.zeros(addresses.size, dtype=np.int64)
    span = {}
    for path in ("channel", "rank"):
        done = completions(level, path, list(zip(cycles, addresses, strict=True)))
        span[path] = done.max()
    assert 1.6 < span["channel"] / span["rank"] < 2.4


def test_fast_stays_near_detailed_on_private_paths():
    rng = np.random.default_rng(4)
    n = 6000
    lines = DDR4.capacity // DDR4.request_bytes
    requests = list(zip(np.zeros(n, dtype=np.int64),
                        rng.integers(0, lines, n) * DDR4.request_bytes, strict=True))
    for path in ("rank", "bank_group"):
        detailed = completions("detailed", path, requests)
        fast = completions("fast", path, requests)
        assert fast.max() == pytest.approx(detailed.max(), rel=0.15), path
        assert fast.mean() == pytest.approx(detailed.mean(), rel=0.15), path


def test_data_on_a_private_path_costs_no_off_dimm_io_energy():
    spec = device_spec("DDR4", mapping="rochrababgco", io_energy_per_bit="22 pJ")
    request = [(0, at(spec))]
    energies = {}
    for path in ("channel", "rank"):
        dram = DetailedDram(spec, path)
        dram.service_cycles(np.array([0]), np.array([request[0][1]]), np.zeros(1, bool))
        energies[path] = dram.stats()
    assert energies["channel"]["energy_io_j"] == pytest.approx(22e-12 * 64 * 8)
    assert "energy_io_j" not in energies["rank"]
    assert energies["channel"]["energy_j"] - energies["rank"]["energy_j"] == pytest.approx(
        22e-12 * 64 * 8)
