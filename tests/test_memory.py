"""Memory tier timing models against closed forms."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embsim.errors import InputError
from hwmodels.device import device_kind
from hwmodels.memory import AnalyticMemory, ChannelMemory, bytes_per_channel, units_touched
from hwmodels.specs import MemorySpec

SPEC = MemorySpec(capacity="1 GiB", bandwidth="100 GB/s", latency="100 ns",
                  access_granularity="64 B", channels=4, interleave="256 B")


def test_analytic_is_latency_plus_bytes_over_bandwidth():
    mem = AnalyticMemory(SPEC)
    done, moved = mem.access(1e-6, np.arange(10) * 256, np.full(10, 256))
    assert moved == 2560
    assert done == pytest.approx(1e-6 + 100e-9 + 2560 / 100e9)
    # no state: the same call again finishes at the same time
    assert mem.access(1e-6, np.arange(10) * 256, np.full(10, 256))[0] == pytest.approx(done)


def test_partial_units_round_up_and_bytes_equal_requests_times_granularity():
    mem = AnalyticMemory(SPEC)
    _, moved = mem.access(0.0, np.array([0, 1024]), np.array([100, 64]),
                          write=np.array([True, False]))
    assert moved == 128 + 64
    assert mem.requests == 3
    assert mem.bytes_written == 128 and mem.bytes_read == 64
    assert mem.bytes_total == mem.requests * mem.granularity


def test_an_access_moves_the_units_it_touches_at_its_address():
    """A 176 B row (fp32, dim 44) fills three 64 B lines when aligned and touches four when
    it starts 32 B into a line, as a real row of a packed table does."""
    mem = AnalyticMemory(SPEC)
    _, moved = mem.access(0.0, np.array([0, 32, 4096 + 176]), np.array([176, 176, 176]))
    assert moved == (3 + 4 + 4) * 64 and mem.requests == 11
    assert units_touched(np.array([5, 64, 128]), np.array([0, 64, 1]), 64).tolist() == [0, 1, 1]


@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 700)), min_size=1,
                max_size=30), st.sampled_from([32, 64, 96, 128]))
@settings(deadline=None)          # the first example may compile the kernel
def test_units_touched_counts_distinct_blocks(accesses, unit):
    addresses, sizes = (np.array(column, dtype=np.int64) for column in zip(*accesses,
                                                                             strict=True))
    expected = [len({b // unit for b in range(a, a + n)}) for a, n in accesses]
    assert units_touched(addresses, sizes, unit).tolist() == expected


@given(st.lists(st.tuples(st.integers(0, 2**62), st.integers(0, 2000)), min_size=1,
                max_size=30), st.sampled_from([64, 100, 256]), st.sampled_from([1, 3, 8, 160]))
@settings(deadline=None)          # the first example compiles the kernel
def test_bytes_per_channel_matches_a_byte_walk(accesses, interleave, channels):
    """Every chunk between interleave boundaries lands on its unit's channel, also for
    addresses far above 2**50 units (where the float reciprocal is not trusted)."""
    expected = [0] * channels
    for address, size in accesses:
        at = address
        while at < address + size:
            end = min(address + size, (at // interleave + 1) * interleave)
            expected[(at // interleave) % channels] += end - at
            at = end
    addresses, sizes = (np.array(column, dtype=np.int64) for column in zip(*accesses,
                                                                             strict=True))
    assert bytes_per_channel(addresses, sizes, interleave, channels).tolist() == expected


def test_bytes_per_channel_splits_at_interleave_boundaries():
    out = bytes_per_channel(np.array([0, 200, 1024], dtype=np.int64),
                            np.array([256, 128, 512], dtype=np.int64), 256, 4)
    # [0,256) -> ch0; [200,256) -> ch0, [256,328) -> ch1; [1024,1280) -> ch0, [1280,1536) -> ch1
    assert out.tolist() == [256 + 56 + 256, 72 + 256, 0, 0]


def test_fast_balanced_stream_reaches_peak_bandwidth():
    mem = ChannelMemory(SPEC)
    n = 4096
    done, moved = mem.access(0.0, np.arange(n) * 256, np.full(n, 256))
    assert done == pytest.approx(100e-9 + n * 256 / 100e9)


def test_fast_imbalance_and_queueing_across_calls():
    mem = ChannelMemory(SPEC)
    # everything on channel 0: a quarter of the bandwidth
    addrs = np.arange(100) * 1024
    done, _ = mem.access(0.0, addrs, np.full(100, 256))
    assert done == pytest.approx(100e-9 + 100 * 256 / 25e9)
    # a second call at t=0 on the same channel queues behind the first
    done2, _ = mem.access(0.0, addrs, np.full(100, 256))
    assert done2 == pytest.approx(100e-9 + 2 * 100 * 256 / 25e9)
    # another channel is free
    done3, _ = mem.access(0.0, addrs + 256, np.full(100, 256))
    assert done3 == pytest.approx(done)


def test_fast_never_beats_unloaded_time():
    rng = np.random.default_rng(3)
    mem = ChannelMemory(SPEC)
    for _ in range(20):
        addrs = rng.integers(0, 2**20, 50) * 64
        done, moved = mem.access(0.0, addrs, np.full(50, 64))
        assert done >= mem.unloaded_time(moved) - 1e-15


def test_detailed_falls_back_to_fast_and_unknown_levels_are_listed():
    kind = device_kind("memory")
    assert kind.level("detailed") == "fast"
    assert isinstance(kind.model(SPEC, "detailed"), ChannelMemory)
    assert isinstance(kind.model(SPEC, "analytic"), AnalyticMemory)
    with pytest.raises(InputError, match="expected one of: analytic, fast, detailed"):
        kind.model(SPEC, "cycle")
