"""Storage-class memory (Optane PMem-like) model: closed-form cases, buffer merging, stats."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embsim.errors import InputError
from hwmodels.device import make_device
from hwmodels.presets import resolve
from hwmodels.scm import ScmSpec

LEVELS = ["analytic", "fast", "detailed"]
NS = 1e-9
READ_SERVICE = 100 * NS  # 256 B at 2.56 GB/s
WRITE_SERVICE = 200 * NS  # 256 B at 1.28 GB/s
READ_LATENCY = 300 * NS
WRITE_LATENCY = 100 * NS
VALUES = dict(dimms=2, dimm_capacity="1 GiB", write_buffer="1 KiB", read_latency="300 ns",
              write_latency="100 ns", read_bandwidth="2.56 GB/s", write_bandwidth="1.28 GB/s",
              tCK="1 ns", read_energy_per_bit="1 pJ", write_energy_per_bit="2 pJ")


def spec(**changes) -> ScmSpec:
    return ScmSpec(**{**VALUES, **changes})


def dimm0_line(k: int) -> int:
    """Byte address of the k-th media line on DIMM 0 (16 lines per 4 KiB unit, 2 DIMMs)."""
    return (k // 16) * 2 * 4096 + (k % 16) * 256


def serve(device, arrival, addresses, writes):
    n = len(addresses)
    return device.service(np.broadcast_to(np.asarray(arrival, dtype=float), (n,)).copy(),
                          np.asarray(addresses, dtype=np.int64),
                          np.broadcast_to(np.asarray(writes, dtype=bool), (n,)).copy())


@pytest.mark.parametrize("level", LEVELS)
def test_unloaded_read_and_write_take_the_spec_latencies(level):
    device = make_device("scm", spec(), level)
    assert serve(device, 0.0, [4096], False)[0] == pytest.approx(READ_LATENCY)
    assert serve(device, 1e-3, [0], True)[0] == pytest.approx(1e-3 + WRITE_LATENCY)
    assert device.unloaded_read_latency_s() == READ_LATENCY
    assert device.request_bytes == 64 and device.capacity == 2 * 2**30


@pytest.mark.parametrize("level", LEVELS)
def test_burst_to_one_dimm_is_served_one_media_line_at_a_time(level):
    device = make_device("scm", spec(), level)
    n = 40
    done = serve(device, 0.0, [dimm0_line(k) for k in range(n)], False)
    expected = np.arange(n) * READ_SERVICE + READ_LATENCY
    np.testing.assert_allclose(done, expected, rtol=1e-12)
    assert device.stats()["media_bytes_read"] == n * 256


@pytest.mark.parametrize("level", LEVELS)
def test_long_stream_reaches_per_dimm_bandwidth_times_dimms(level):
    device = make_device("scm", spec(), level)
    units_per_dimm, dimms = 8, 2
    size = units_per_dimm * dimms * 4096
    done = serve(device, 0.0, np.arange(0, size, 64), False)
    lines_per_dimm = units_per_dimm * 16
    if level == "analytic":  # every 64 B read takes a quarter of a line's service
        last_start = (4 * lines_per_dimm - 1) * READ_SERVICE / 4
    else:  # the last media line of each DIMM starts after (lines - 1) services
        last_start = (lines_per_dimm - 1) * READ_SERVICE
    assert done.max() == pytest.approx(last_start + READ_LATENCY)
    bandwidth = size / (lines_per_dimm * READ_SERVICE)
    assert bandwidth == pytest.approx(dimms * 2.56e9)
    stats = device.stats()
    assert stats["media_bytes_read"] == size  # the 64 B reads of one line share its fetch
    assert stats["write_buffer_hits"] == 3 * size // 256


@pytest.mark.parametrize("level", ["fast", "detailed"])
def test_partial_line_merges_then_needs_a_read_modify_write(level):
    device = make_device("scm", spec(), level)
    done = serve(device, 0.0, [0, 64], True)  # two 64 B writes, one 256 B line
    np.testing.assert_allclose(done, WRITE_LATENCY)
    # Three full lines fill the 4-line buffer; nothing leaves it yet.
    full_lines = [dimm0_line(k) + c for k in (1, 2, 3) for c in range(0, 256, 64)]
    serve(device, 0.0, full_lines, True)
    assert device.stats()["media_bytes_written"] == 0
    # A fifth line evicts the partial one (LRU): media read, then media write.
    done = serve(device, 1e-6, [dimm0_line(4)], True)
    assert done[0] == pytest.approx(1e-6 + READ_SERVICE + WRITE_LATENCY)
    stats = device.stats()
    assert stats["media_bytes_written"] == 256
    assert stats["media_bytes_read"] == 256
    assert stats["read_modify_writes"] == 1
    assert stats["write_buffer_hits"] == 1 + 3 * 3


@pytest.mark.parametrize("level", ["fast", "detailed"])
def test_fully_written_line_leaves_without_a_media_read(level):
    device = make_device("scm", spec(), level)
    lines = [dimm0_line(k) + c for k in range(5) for c in range(0, 256, 64)]
    done = serve(device, 0.0, lines, True)
    # The 17th write evicts line 0: its media write starts at once (no read first).
    assert done[16] == pytest.approx(WRITE_LATENCY)
    stats = device.stats()
    assert (stats["media_bytes_written"], stats["read_modify_writes"]) == (256, 0)
    assert stats["media_bytes_read"] == 0


def test_sustained_writes_get_the_media_write_bandwidth():
    device = make_device("scm", spec(), "fast")
    n_lines = 40
    lines = [dimm0_line(k) + c for k in range(n_lines) for c in range(0, 256, 64)]
    done = serve(device, 0.0, lines, True)
    # Lines 0-3 fit the buffer; line k >= 4 waits for line k-4's write-back, the (k-4)th
    # on the write pipe; the other three writes of a line merge and finish at once.
    assert done[15] == pytest.approx(WRITE_LATENCY)
    for k in range(4, n_lines):
        assert done[4 * k] == pytest.approx((k - 4) * WRITE_SERVICE + WRITE_LATENCY)
        assert done[4 * k + 3] == pytest.approx(WRITE_LATENCY)


@pytest.mark.parametrize("level", ["fast", "detailed"])
def test_read_of_a_buffered_written_line_hits_and_of_an_unwritten_part_fetches(level):
    device = make_device("scm", spec(), level)
    serve(device, 0.0, [0], True)
    assert serve(device, 0.0, [0], False)[0] == pytest.approx(READ_LATENCY)
    assert device.stats()["media_bytes_read"] == 0
    serve(device, 0.0, [64], False)  # not written: the whole line is fetched and merged
    stats = device.stats()
    assert (stats["media_bytes_read"], stats["write_buffer_hits"]) == (256, 1)


def test_analytic_coalesces_requests_to_one_line_within_a_call():
    device = make_device("scm", spec(), "analytic")
    serve(device, 0.0, [0, 64, 128, 192, dimm0_line(1)], True)
    stats = device.stats()
    assert stats["media_bytes_written"] == 2 * 256
    assert stats["read_modify_writes"] == 1  # only the line written in part
    assert stats["media_bytes_read"] == 256
    assert stats["write_buffer_hits"] == 3


@pytest.mark.parametrize("level", LEVELS)
def test_a_second_call_queues_behind_the_first(level):
    device = make_device("scm", spec(), level)
    serve(device, 0.0, [dimm0_line(k) for k in range(4)], False)
    done = serve(device, 0.0, [dimm0_line(10)], False)
    assert done[0] == pytest.approx(4 * READ_SERVICE + READ_LATENCY)
    other_dimm = serve(device, 0.0, [4096], False)  # DIMM 1 is idle
    assert other_dimm[0] == pytest.approx(READ_LATENCY)


def random_trace(seed: int, n: int = 3000):
    rng = np.random.default_rng(seed)
    arrival = np.sort(rng.uniform(0, 20e-6, n))
    addresses = rng.integers(0, 64 * 1024, n) // 64 * 64
    return arrival, addresses, rng.random(n) < 0.4


@pytest.mark.parametrize("level", LEVELS)
def test_stats_are_consistent_and_runs_deterministic(level):
    arrival, addresses, writes = random_trace(7)
    runs = []
    for _ in range(2):
        device = make_device("scm", spec(), level)
        runs.append(device.service(arrival, addresses, writes))
    np.testing.assert_array_equal(runs[0], runs[1])
    stats = device.stats()
    reads = int((~writes).sum())
    assert stats["requests"] == arrival.size
    assert (stats["reads"], stats["writes"]) == (reads, arrival.size - reads)
    assert stats["bytes_read"] == reads * 64
    assert stats["bytes_written"] == (arrival.size - reads) * 64
    assert stats["media_bytes_read"] % 256 == 0 and stats["media_bytes_written"] % 256 == 0
    assert stats["media_bytes_written"] <= stats["writes"] * 256
    assert stats["energy_j"] == pytest.approx(
        8 * (stats["media_bytes_read"] * 1e-12 + stats["media_bytes_written"] * 2e-12))
    done = runs[0]
    assert np.all(done[~writes] >= arrival[~writes] + READ_LATENCY - 1e-15)
    assert np.all(done[writes] >= arrival[writes] + WRITE_LATENCY - 1e-15)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.booleans()), min_size=1, max_size=200))
def test_fast_media_traffic_matches_a_plain_lru_buffer(requests):
    """Media lines written/read equal a straightforward dict-based LRU replay of one DIMM."""
    device = make_device("scm", spec(dimms=1), "fast")
    addresses = [line_chunk * 64 for line_chunk, _ in requests]
    serve(device, 0.0, addresses, [w for _, w in requests])
    buffer: dict[int, tuple[int, bool]] = {}  # line -> (mask, dirty), oldest first
    media_reads = media_writes = rmw = 0
    for line_chunk, write in requests:
        line, bit = line_chunk // 4, 1 << (line_chunk % 4)
        if line in buffer:
            mask, dirty = buffer.pop(line)
            if not write and not mask & bit:
                media_reads += 1
                mask = 0b1111
            buffer[line] = (mask | bit, True) if write else (mask, dirty)
            continue
        if not write:
            media_reads += 1
        if len(buffer) == 4:
            victim = next(iter(buffer))
            mask, dirty = buffer.pop(victim)
            if dirty:
                media_writes += 1
                if mask != 0b1111:
                    media_reads += 1
                    rmw += 1
        buffer[line] = (bit, True) if write else (0b1111, False)
    stats = device.stats()
    assert stats["media_bytes_read"] == media_reads * 256
    assert stats["media_bytes_written"] == media_writes * 256
    assert stats["read_modify_writes"] == rmw


def test_unknown_fidelity_lists_the_levels():
    with pytest.raises(InputError, match="analytic, fast, detailed"):
        make_device("scm", spec(), "exact")


@pytest.mark.parametrize(("change", "field"), [
    ({"dimm_count": 2}, "dimm_count"),
    ({"read_latency": "-1 ns"}, "read_latency"),
    ({"write_buffer": "1000 B"}, "write_buffer"),
    ({"interleave": "100 B"}, "interleave"),
    ({"media_line_bytes": "96 B"}, "media_line_bytes"),
    ({"line_bytes": "1 B", "media_line_bytes": "256 B"}, "media_line_bytes"),
    ({"dimms": 0}, "dimms"),
    ({"read_bandwidth": "fast"}, "read_bandwidth"),
])
def test_bad_values_name_their_field(change, field):
    with pytest.raises(InputError) as err:
        resolve("scm", None, {**VALUES, **change}, source="system.yaml")
    assert err.value.field == field
    assert err.value.source == "system.yaml"


def test_presets_validate_with_their_published_figures():
    pmem100, _ = resolve("scm", "optane-pmem-100", {})
    derived = pmem100.derived()
    assert derived["peak_read_bandwidth"] == pytest.approx(39.4e9, rel=1e-3)
    assert derived["peak_write_bandwidth"] == pytest.approx(13.9e9, rel=1e-3)
    assert derived["capacity"] == 6 * 256e9
    assert make_device("scm", pmem100, "fast").unloaded_read_latency_s() == pytest.approx(305e-9)
    pmem200, _ = resolve("scm", "optane-pmem-200", {})
    assert pmem200.dimms == 8 and pmem200.write_buffer == 16 * 1024
