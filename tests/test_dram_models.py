"""DRAM timing models: closed forms, streaming bandwidth, agreement between fidelity levels,
energy and counters."""

from __future__ import annotations

import numpy as np
import pytest
from device_timings.devices import DEVICES, device_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from embsim.errors import InputError
from hwmodels.device import make_device
from hwmodels.dram import AnalyticDram, DetailedDram, FastDram
from hwmodels.dram.energy import DramEnergy
from hwmodels.dram.model import refresh_schedule

FIDELITIES = ("analytic", "fast", "detailed")


def at(spec, **where):
    return int(spec.address_map.encode(**where))


@pytest.mark.parametrize("fidelity", FIDELITIES)
@pytest.mark.parametrize("standard", sorted(DEVICES))
def test_unloaded_latencies_equal_the_closed_form(standard, fidelity):
    spec = device_spec(standard, frontend_latency="40 ns")
    derived = spec.derived()
    dram = make_device("dram", spec, fidelity)
    addresses = [at(spec, row=3), at(spec, row=3, column=1), at(spec, row=4)]
    arrivals = (2000 + 5000 * np.arange(3)) * spec.tCK       # whole cycles, far apart
    done = dram.service(arrivals, np.array(addresses), np.zeros(3, dtype=bool))
    expected = [derived["read_latency_miss_s"], derived["read_latency_hit_s"],
                derived["read_latency_conflict_s"]]
    assert done - arrivals == pytest.approx(expected, rel=1e-9)
    assert dram.unloaded_read_latency_s() == pytest.approx(derived["read_latency_hit_s"])
    cycles = spec.read_latency_cycles()
    assert derived["read_latency_conflict_s"] == pytest.approx(
        (spec.tRP + spec.tRCD + spec.CL + spec.burst_length // 2) * spec.tCK + 40e-9)
    assert cycles["miss"] - cycles["hit"] == spec.tRCD


@pytest.mark.parametrize("standard", sorted(DEVICES))
def test_streaming_reaches_peak_bandwidth_less_refresh(standard):
    spec = device_spec(standard, refresh="all_bank")
    buses = spec.bus_channels
    n = 6 * spec.tREFI // spec.burst_cycles * buses
    dram = DetailedDram(spec)
    done = dram.service_cycles(np.zeros(n, dtype=np.int64),
                               np.arange(n, dtype=np.int64) * spec.request_bytes,
                               np.zeros(n, dtype=bool))
    achieved = n * spec.request_bytes / (done.max() * spec.tCK)
    expected = spec.peak_bandwidth * (1 - spec.refresh_overhead)
    assert achieved == pytest.approx(expected, rel=0.05)
    assert dram.stats()["refreshes"] >= 5 * spec.ranks * buses


@pytest.mark.parametrize("fidelity", ("fast", "detailed"))
def test_a_refresh_due_before_a_hit_closes_the_row_and_the_hit_waits_for_it(fidelity):
    """A row opened well before rank 0's first refresh, then six reads of it two cycles before
    the refresh is due: the first issues in time, the others' column commands would fall
    inside the refresh, so they wait for its end and the row is activated again (``fast``
    served them as hits of a row it kept open through the refresh, skipping it)."""
    spec = device_spec("DDR4", refresh="all_bank")
    dram = make_device("dram", spec, fidelity)
    addresses = np.array([at(spec, row=5, column=k) for k in range(7)])
    bank, _ = dram.address_map.bank_and_row(addresses[:1])
    due = int(refresh_schedule(spec)[0][bank[0]])
    cycles = np.array([due - 200] + [due - 2] * 6, dtype=np.int64)
    _, latency = dram.service_in_cycles(cycles, addresses, np.zeros(7, dtype=bool))
    hit = spec.CL + spec.burst_length // 2
    assert latency[1] == hit
    assert (latency[2:] > spec.tRFC + spec.tRCD).all()
    assert dram.stats()["activates"] == 2


@pytest.mark.parametrize("fidelity", ["fast", "detailed"])
@pytest.mark.parametrize("case", ["miss", "conflict"])
def test_an_activate_whose_column_command_would_reach_a_refresh_waits_for_it(fidelity, case):
    """A read that must activate its row a few cycles before the bank's refresh is due (a miss
    on a closed bank, or a conflict with a row opened long before): its column command would
    fall inside the refresh, so it waits for the refresh to end; a read of the same row after
    the refresh then hits (``fast`` activated before the due cycle, skipped the refresh and
    served the read 48 cycles after it arrived; ``detailed`` activates, is closed by the
    refresh and activates again, ``fast`` activates once after it)."""
    spec = device_spec("DDR4", refresh="all_bank")
    dram = make_device("dram", spec, fidelity)
    bank, _ = dram.address_map.bank_and_row(np.array([at(spec, row=5)]))
    due = int(refresh_schedule(spec)[0][bank[0]])
    after = due + spec.tRFC + 100
    if case == "miss":
        addresses = [at(spec, row=6), at(spec, row=6, column=1)]
        cycles = [due - 5, after]
    else:
        addresses = [at(spec, row=5), at(spec, row=6), at(spec, row=6, column=1)]
        cycles = [due - 3000, due - spec.tRP - 5, after]
    _, latency = dram.service_in_cycles(np.array(cycles, dtype=np.int64), np.array(addresses),
                                        np.zeros(len(addresses), dtype=bool))
    assert latency[-2] > spec.tRFC
    assert latency[-1] == spec.CL + spec.burst_length // 2


@pytest.mark.parametrize("fidelity", ["fast", "detailed"])
def test_activates_the_four_activate_window_pushes_onto_a_refresh_wait_for_it(fidelity):
    """Eight reads to eight banks of one rank, all arriving 34 cycles before the rank's
    refresh: the first activates go in time, but the activate window spaces the later ones
    until their column commands would fall inside the refresh. No column command may (``fast``
    served four of them 33-69 cycles into it, its calendar's slot unchecked against the
    refresh): each read's data comes before the refresh or after it."""
    spec = device_spec("DDR4", refresh="all_bank")
    dram = make_device("dram", spec, fidelity)
    addresses = np.array([at(spec, row=7, bank=b % spec.banks_per_group,
                             bank_group=b // spec.banks_per_group) for b in range(8)])
    bank, _ = dram.address_map.bank_and_row(addresses)
    due = refresh_schedule(spec)[0][bank]
    assert len(set(bank.tolist())) == 8 and len(set(due.tolist())) == 1
    arrival = int(due[0]) - spec.tRCD - 12
    _, latency = dram.service_in_cycles(np.full(8, arrival, dtype=np.int64), addresses,
                                        np.zeros(8, dtype=bool))
    done = arrival + latency
    before = done <= due[0] + spec.CL + spec.burst_length // 2
    after = done >= due[0] + spec.tRFC
    assert np.all(before | after) and before.any() and after.any()


def traces(spec, n, rng):
    lines = spec.capacity // spec.request_bytes
    hot = rng.zipf(1.3, n) % 50_000
    return {
        "uniform": rng.integers(0, lines, n) * spec.request_bytes,
        "zipf": (hot * 104_729 % lines) * spec.request_bytes,
        "stream": np.arange(n, dtype=np.int64) * spec.request_bytes,
    }


def mean_latency_and_bandwidth(model, arrivals, addresses, writes=None):
    if writes is None:
        writes = np.zeros(arrivals.size, dtype=bool)
    done = model.service_cycles(arrivals, addresses, writes)
    return (done - arrivals).mean(), arrivals.size / (done.max() - arrivals[0])


@pytest.mark.parametrize("standard", ["DDR4", "HBM3"])
def test_fast_within_ten_percent_of_detailed_and_row_hits_agree_under_light_load(standard):
    spec = device_spec(standard, refresh="all_bank")
    rng = np.random.default_rng(7)
    n = 4000
    arrivals = np.arange(n, dtype=np.int64) * 200     # one request per 200 cycles
    for name, addresses in traces(spec, n, rng).items():
        detailed, fast = DetailedDram(spec), FastDram(spec)
        d_lat, d_bw = mean_latency_and_bandwidth(detailed, arrivals, addresses)
        f_lat, f_bw = mean_latency_and_bandwidth(fast, arrivals, addresses)
        assert f_lat == pytest.approx(d_lat, rel=0.10), name
        assert f_bw == pytest.approx(d_bw, rel=0.10), name
        hits = [m.stats()["row_hits"] for m in (detailed, fast)]
        assert hits[1] == pytest.approx(hits[0], abs=max(2, 0.01 * hits[0])), name


@pytest.mark.parametrize("write_fraction", [0.0, 0.2])
@pytest.mark.parametrize("standard", ["DDR4", "HBM3", "DDR5"])
def test_fast_within_ten_percent_of_detailed_under_heavy_load(standard, write_fraction):
    spec = device_spec(standard, refresh="all_bank")
    n = 20_000
    arrivals = np.zeros(n, dtype=np.int64)           # all queued at once: the queue stays full
    writes = np.random.default_rng(1).random(n) < write_fraction
    for name, addresses in traces(spec, n, np.random.default_rng(0)).items():
        d_lat, d_bw = mean_latency_and_bandwidth(DetailedDram(spec), arrivals, addresses,
                                                 writes)
        f_lat, f_bw = mean_latency_and_bandwidth(FastDram(spec), arrivals, addresses, writes)
        assert f_lat == pytest.approx(d_lat, rel=0.10), name
        assert f_bw == pytest.approx(d_bw, rel=0.10), name


@pytest.mark.parametrize("standard", ["DDR4", "HBM3", "DDR5"])
def test_detailed_never_closes_a_row_before_its_activating_request_reads_it(standard):
    """Under heavy load every PRE serves a conflict and every ACT the request that needed
    it: ACTs = misses + conflicts, PREs = conflicts, and the only misses are the first
    touch of each bank (a row closed for a conflict is not reopened for an older hit)."""
    spec = device_spec(standard)
    n = 4000
    rng = np.random.default_rng(0)
    writes = np.random.default_rng(1).random(n) < 0.2
    for name, addresses in traces(spec, n, rng).items():
        if name == "stream":
            continue
        dram = DetailedDram(spec)
        dram.service_cycles(np.zeros(n, dtype=np.int64), addresses, writes)
        stats = dram.stats()
        assert stats["row_misses"] == dram.banks, name
        if name == "uniform":           # (few rows are hit twice: the row-hit cap never acts)
            assert stats["activates"] == stats["row_misses"] + stats["row_conflicts"]
            assert stats["precharges"] == stats["row_conflicts"]


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_row_outcomes_of_a_fixed_sequence(fidelity):
    spec = device_spec("DDR4")
    rows = [0, 0, 1, 1, 0, 2]          # miss, hit, conflict, hit, conflict, conflict
    addresses = np.array([at(spec, row=r, column=k) for k, r in enumerate(rows)])
    dram = make_device("dram", spec, fidelity)
    dram.service_cycles(np.arange(6, dtype=np.int64) * 1000, addresses, np.zeros(6, bool))
    stats = dram.stats()
    assert (stats["row_misses"], stats["row_hits"], stats["row_conflicts"]) == (1, 2, 3)
    assert stats["activates"] == 4 and stats["precharges"] == 3
    closed = make_device("dram", device_spec("DDR4", row_policy="closed"), fidelity)
    closed.service_cycles(np.arange(6, dtype=np.int64) * 1000, addresses, np.zeros(6, bool))
    stats = closed.stats()
    assert (stats["row_misses"], stats["activates"], stats["precharges"]) == (6, 6, 6)


def test_closed_policy_keeps_a_row_open_for_queued_hits():
    spec = device_spec("DDR4", row_policy="closed")
    dram = DetailedDram(spec)
    addresses = np.array([at(spec, column=k) for k in range(4)])
    dram.service_cycles(np.zeros(4, dtype=np.int64), addresses, np.zeros(4, bool))
    stats = dram.stats()
    assert (stats["row_misses"], stats["row_hits"], stats["precharges"]) == (1, 3, 1)


def test_energy_from_idd_follows_the_micron_formulas():
    idd = dict(VDD=1.2, IDD0=58, IDD2N=38, IDD3N=47, IDD4R=143, IDD4W=133, IDD5=250)
    spec = device_spec("DDR4", **idd)
    energy = DramEnergy.from_spec(spec)
    devices, tck = 8, 0.625e-9
    assert energy.activate_j == pytest.approx(
        1.2 * devices * 1e-3 * (58 * 74 - 47 * 52 - 38 * 22) * tck)
    assert energy.read_j == pytest.approx(1.2 * devices * 1e-3 * (143 - 47) * 4 * tck)
    assert energy.refresh_j == pytest.approx(1.2 * devices * 1e-3 * (250 - 47) * 560 * tck)
    dram = FastDram(spec)
    addresses = np.array([at(spec, column=k) for k in range(10)])
    dram.service_cycles(np.zeros(10, dtype=np.int64), addresses, np.zeros(10, bool))
    stats = dram.stats(elapsed_s=1e-6)
    assert stats["energy_rd_j"] == pytest.approx(10 * energy.read_j)
    assert stats["energy_act_j"] == pytest.approx(energy.activate_j)
    # one rank had a row open the whole microsecond but a few cycles; the other none
    ranks_s = spec.ranks * 1e-6
    assert energy.precharge_standby_w * ranks_s < stats["energy_bg_j"] < \
        energy.active_standby_w * ranks_s
    parts = ("energy_act_j", "energy_rd_j", "energy_wr_j", "energy_ref_j", "energy_bg_j")
    assert stats["energy_j"] == pytest.approx(sum(stats[p] for p in parts))


def test_energy_from_per_access_figures():
    spec = device_spec("HBM3", read_energy_per_bit="3.9 pJ", write_energy_per_bit="4 pJ",
                       activate_energy="1 nJ", background_power=0.5)
    dram = AnalyticDram(spec)
    dram.service_cycles(np.zeros(3, dtype=np.int64),
                        np.array([at(spec, column=k) for k in range(3)]),
                        np.array([False, False, True]))
    stats = dram.stats(elapsed_s=2e-6)
    bits = spec.request_bytes * 8
    assert stats["energy_rd_j"] == pytest.approx(2 * bits * 3.9e-12)
    assert stats["energy_wr_j"] == pytest.approx(bits * 4e-12)
    assert stats["energy_act_j"] == pytest.approx(1e-9)
    assert stats["energy_bg_j"] == pytest.approx(0.5 * spec.bus_channels * spec.ranks * 2e-6)


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_counters_and_bytes_are_consistent(fidelity):
    spec = device_spec("DDR5", refresh="all_bank")
    rng = np.random.default_rng(3)
    n = 3000
    addresses = rng.integers(0, spec.capacity // 64, n) * 64
    writes = rng.random(n) < 0.3
    dram = make_device("dram", spec, fidelity)
    done = dram.service(np.sort(rng.random(n)) * 1e-5, addresses, writes)
    stats = dram.stats()
    assert stats["requests"] == n == stats["reads"] + stats["writes"]
    assert stats["writes"] == writes.sum()
    assert stats["row_hits"] + stats["row_misses"] + stats["row_conflicts"] == n
    assert stats["bytes_read"] + stats["bytes_written"] == n * spec.request_bytes
    assert stats["activates"] >= stats["row_misses"] + stats["row_conflicts"]
    assert stats["refreshes"] > 0
    assert np.all(done > 0)


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_later_calls_queue_behind_earlier_ones(fidelity):
    spec = device_spec("DDR4")
    n = 2000
    addresses = np.arange(n, dtype=np.int64) * 64
    dram = make_device("dram", spec, fidelity)
    first = dram.service_cycles(np.zeros(n, dtype=np.int64), addresses, np.zeros(n, bool))
    again = dram.service_cycles(np.zeros(n, dtype=np.int64), addresses + n * 64,
                                np.zeros(n, bool))
    assert again.min() > first.max() - spec.CL - spec.tRCD
    fresh = make_device("dram", spec, fidelity).service_cycles(np.zeros(n, dtype=np.int64),
                                                     addresses + n * 64, np.zeros(n, bool))
    assert again.mean() > fresh.mean() + 0.5 * (first.max() - first.min())


def plain_decode(spec, address):
    """Textbook mixed-radix decode of one address, then the XOR bank hash."""
    amap = spec.address_map
    rest, value = address // spec.request_bytes, {}
    for name in reversed(amap.order):
        rest, value[name] = divmod(rest, amap.radix[name])
    if spec.xor_bank_hash:
        value["ba"] ^= value["ro"] % spec.banks_per_group
        value["bg"] ^= value["ro"] // spec.banks_per_group % spec.bank_groups
    return value


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**37), min_size=1, max_size=40), st.booleans(),
       st.sampled_from(["rorabacobgch", "rochrababgco", "cororabgbach"]))
def test_flat_bank_and_row_equal_the_plain_decode(addresses, hashed, mapping):
    # three channels: a radix that is not a power of two, decoded by division
    spec = device_spec("DDR4", channels=3, xor_bank_hash=hashed, mapping=mapping)
    bank, row = spec.address_map.bank_and_row(np.array(addresses, dtype=np.int64))
    decoded = spec.address_map.decode(np.array(addresses))
    for k, address in enumerate(addresses):
        v = plain_decode(spec, address)
        flat = ((v["ch"] * spec.ranks + v["ra"]) * spec.bank_groups + v["bg"]) \
            * spec.banks_per_group + v["ba"]
        assert (bank[k], row[k]) == (flat, v["ro"])
        assert (decoded.channel[k], decoded.rank[k], decoded.bank_group[k], decoded.bank[k],
                decoded.row[k], decoded.column[k]) == (v["ch"], v["ra"], v["bg"], v["ba"],
                                                       v["ro"], v["co"])


def test_bad_requests_and_fidelity_are_input_errors():
    spec = device_spec("DDR4")
    dram = FastDram(spec)
    with pytest.raises(InputError, match="must not decrease"):
        dram.service_cycles(np.array([5, 3]), np.array([0, 64]), np.zeros(2, bool))
    dram.service_cycles(np.array([100]), np.array([0]), np.zeros(1, bool))
    with pytest.raises(InputError, match="must not decrease"):
        dram.service_cycles(np.array([50]), np.array([0]), np.zeros(1, bool))
    with pytest.raises(InputError, match="non-negative"):
        dram.service_cycles(np.array([200]), np.array([-64]), np.zeros(1, bool))
    with pytest.raises(InputError, match="analytic, fast, detailed"):
        make_device("dram", spec, "cycle")


@pytest.mark.parametrize("refresh", ["all_bank", "per_bank"])
def test_idle_refreshes_in_closed_form_match_issuing_each(refresh):
    spec = device_spec("HBM3", refresh=refresh)
    arrivals = np.array([10, 40 * spec.tREFI + 7, 40 * spec.tREFI + 9], dtype=np.int64)
    addresses = np.array([at(spec), at(spec, row=1), at(spec, bank=1)])
    results = []
    for trace in (0, 100_000):      # tracing issues every refresh one by one
        dram = DetailedDram(spec, trace_commands=trace)
        done = dram.service_cycles(arrivals, addresses, np.zeros(3, bool))
        results.append((done.tolist(), dram.stats()["refreshes"]))
    assert results[0] == results[1]
    # only channel 0 has requests: the refreshes of its rank up to the last command
    assert results[0][1] >= 39 * (1 if refresh == "all_bank" else spec.banks_per_rank)
