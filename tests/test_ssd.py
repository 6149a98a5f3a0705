"""NVMe SSD model: queue depth, IOPS ceiling, die and channel parallelism, latency spread."""

from __future__ import annotations

import numpy as np
import pytest

from embsim.errors import InputError
from hwmodels.device import make_device
from hwmodels.presets import resolve
from hwmodels.ssd import SsdSpec

LEVELS = ["analytic", "fast", "detailed"]
US = 1e-6
PAGE = 4096
# 4 dies on 2 channels; tR 10 us; a page crosses a channel in 1 us; front end 9 us.
VALUES = dict(capacity="1 TB", queue_depth=64, read_iops=1e6, channels=2, dies_per_channel=2,
              channel_bandwidth="4.096 GB/s", die_read_time="10 us", read_latency="20 us",
              read_energy_per_bit="1 pJ", write_energy_per_bit="3 pJ")
WRITES = dict(write_latency="15 us", write_iops=1e7, write_bandwidth="2.048 GB/s")


def spec(**changes) -> SsdSpec:
    return SsdSpec(**{**VALUES, **changes})


def serve(device, arrival, pages, writes=False):
    n = len(pages)
    return device.service(np.broadcast_to(np.asarray(arrival, dtype=float), (n,)).copy(),
                          np.asarray(pages, dtype=np.int64) * PAGE,
                          np.full(n, writes, dtype=bool))


@pytest.mark.parametrize("level", LEVELS)
def test_unloaded_read_takes_the_spec_latency(level):
    device = make_device("ssd", spec(), level)
    assert serve(device, 1e-3, [5])[0] == pytest.approx(1e-3 + 20 * US)
    assert device.unloaded_read_latency_s() == pytest.approx(20 * US)
    assert device.request_bytes == PAGE


@pytest.mark.parametrize("level", ["fast", "detailed"])
def test_burst_to_one_die_is_served_one_tr_at_a_time(level):
    device = make_device("ssd", spec(), level)
    n = 6
    done = serve(device, 0.0, np.arange(n) * 4)  # pages 0, 4, 8, ... all on die 0
    np.testing.assert_allclose(done, np.arange(n) * 10 * US + 20 * US, rtol=1e-12)


@pytest.mark.parametrize("level", ["fast", "detailed"])
def test_one_channel_serialises_transfers_of_its_dies(level):
    device = make_device("ssd", spec(die_read_time="0 us", read_latency="10 us", read_iops=1e9),
                         level)
    done = serve(device, 0.0, [0, 2])  # dies 0 and 2, both on channel 0
    np.testing.assert_allclose(done, [10 * US, 11 * US], rtol=1e-12)


@pytest.mark.parametrize("level", LEVELS)
def test_iops_ceiling_spaces_requests_exactly(level):
    device = make_device("ssd", spec(read_iops=1e5), level)  # one start per 10 us, dies 40 us apart
    n = 12
    done = serve(device, 0.0, np.arange(n))
    np.testing.assert_allclose(done, np.arange(n) * 10 * US + 20 * US, rtol=1e-9)


@pytest.mark.parametrize("level", LEVELS)
def test_queue_depth_one_serialises_requests(level):
    device = make_device("ssd", spec(queue_depth=1), level)
    n = 5
    done = serve(device, 0.0, np.arange(n))
    np.testing.assert_allclose(done, (np.arange(n) + 1) * 20 * US, rtol=1e-9)


@pytest.mark.parametrize("level", ["fast", "detailed"])
def test_queue_depth_two_admits_a_request_as_each_completes(level):
    device = make_device("ssd", spec(queue_depth=2), level)
    done = serve(device, 0.0, [0, 1, 2, 3])
    # Starts 0 and 1 us (IOPS gate), then each waits for the earliest completion.
    np.testing.assert_allclose(done, np.array([20, 21, 40, 41]) * US, rtol=1e-12)


def test_analytic_throughput_is_the_tightest_bound():
    s = spec()  # bounds per read: IOPS 1 us, channels 0.5 us, dies 2.5 us, queue 0.3125 us
    assert s.derived()["peak_read_iops"] == pytest.approx(4e5)
    device = make_device("ssd", s, "analytic")
    n = 100
    done = serve(device, 0.0, np.arange(n))
    assert done[-1] == pytest.approx((n - 1) * 2.5 * US + 20 * US)


def test_fast_long_random_stream_matches_the_analytic_throughput():
    s = spec()
    pages = np.random.default_rng(3).integers(0, 10**6, 20000)
    fast = serve(make_device("ssd", s, "fast"), 0.0, pages)
    analytic = serve(make_device("ssd", s, "analytic"), 0.0, pages)
    # Random pages load the four dies unevenly, so fast is a little slower, never faster.
    ratio = analytic[-1] / fast.max()
    assert 0.9 < ratio <= 1.0 + 1e-9


@pytest.mark.parametrize("level", LEVELS)
def test_a_second_call_queues_behind_the_first(level):
    device = make_device("ssd", spec(queue_depth=1), level)
    serve(device, 0.0, [0])
    done = serve(device, 0.0, [1])
    assert done[0] == pytest.approx(40 * US)


@pytest.mark.parametrize("level", LEVELS)
def test_writes_take_their_own_latency_and_bandwidth(level):
    device = make_device("ssd", spec(**WRITES), level)
    assert serve(device, 0.0, [0], writes=True)[0] == pytest.approx(15 * US)
    n = 8
    done = serve(device, 1e-3, np.arange(n), writes=True)  # 2 us per page on the write pipe
    np.testing.assert_allclose(done, 1e-3 + np.arange(n) * 2 * US + 15 * US, rtol=1e-9)


def test_without_a_write_path_writes_follow_the_read_path():
    device = make_device("ssd", spec(), "fast")
    assert serve(device, 0.0, [0], writes=True)[0] == pytest.approx(20 * US)


def test_latency_distribution_fits_mean_and_p99_and_is_seeded():
    s = spec(read_latency_p99="50 us", seed=11)
    arrival = np.arange(20000) * 1e-3  # far apart: every read unloaded
    pages = np.arange(20000)
    latency = serve(make_device("ssd", s, "fast"), arrival, pages) - arrival
    assert latency.mean() == pytest.approx(20 * US, rel=0.02)
    assert np.quantile(latency, 0.99) == pytest.approx(50 * US, rel=0.04)
    assert latency.min() >= 11 * US  # tR + transfer, the front end is positive
    again = serve(make_device("ssd", s, "fast"), arrival, pages) - arrival
    np.testing.assert_array_equal(latency, again)
    other = serve(make_device("ssd", spec(read_latency_p99="50 us", seed=12), "fast"), arrival,
                  pages) - arrival
    assert not np.array_equal(latency, other)
    assert make_device("ssd", s, "fast").unloaded_read_latency_s() == pytest.approx(11 * US)


@pytest.mark.parametrize("level", LEVELS)
def test_stats_count_pages_bytes_and_energy(level):
    device = make_device("ssd", spec(**WRITES), level)
    serve(device, 0.0, np.arange(7))
    serve(device, 1e-3, np.arange(3), writes=True)
    stats = device.stats()
    assert (stats["requests"], stats["reads"], stats["writes"]) == (10, 7, 3)
    assert (stats["pages_read"], stats["pages_written"]) == (7, 3)
    assert (stats["bytes_read"], stats["bytes_written"]) == (7 * PAGE, 3 * PAGE)
    assert stats["energy_j"] == pytest.approx(8 * PAGE * (7 * 1e-12 + 3 * 3e-12))


def test_unknown_fidelity_lists_the_levels():
    with pytest.raises(InputError, match="analytic, fast, detailed"):
        make_device("ssd", spec(), "cycle")


@pytest.mark.parametrize(("change", "field"), [
    ({"queue_size": 4}, "queue_size"),
    ({"queue_depth": 0}, "queue_depth"),
    ({"read_iops": -5}, "read_iops"),
    ({"die_read_time": "-1 us"}, "die_read_time"),
    ({"read_latency": "5 us"}, "read_latency"),  # below tR + transfer = 11 us
    ({"read_latency_p99": "19 us"}, "read_latency_p99"),
    ({"read_latency_p99": "900 us"}, "read_latency_p99"),  # no lognormal is that skewed
    ({"write_latency": "15 us"}, "write_bandwidth"),  # the write path needs all three
    ({"page_bytes": "4096.5 B"}, "page_bytes"),
])
def test_bad_values_name_their_field(change, field):
    with pytest.raises(InputError) as err:
        resolve("ssd", None, {**VALUES, **change}, source="ssd.yaml")
    assert err.value.field == field
    assert err.value.source == "ssd.yaml"


def test_presets_reproduce_their_datasheet_figures():
    nand, _ = resolve("ssd", "intel-d7-p5500", {})
    assert nand.derived()["peak_read_iops"] == pytest.approx(1e6)
    assert make_device("ssd", nand, "fast").unloaded_read_latency_s() == pytest.approx(85e-6)
    optane, _ = resolve("ssd", "optane-ssd-p5800x", {})
    assert optane.derived()["peak_read_iops"] == pytest.approx(1.5e6)
    assert optane.derived()["channel_bound_bandwidth"] == pytest.approx(7.2e9)
    device = make_device("ssd", optane, "fast")
    n = 30000
    done = serve(device, 0.0, np.random.default_rng(0).integers(0, 10**7, n))
    assert n / done.max() == pytest.approx(1.5e6, rel=0.01)


def test_cxl_expander_adds_the_link_to_the_local_path():
    pytest.importorskip("hwmodels.dram")
    cxl, sources = resolve("dram", "cxl-ddr5-expander", {})
    local, _ = resolve("dram", "ddr5-4800-8ch", {})
    assert cxl.channels == 2
    assert cxl.frontend_latency == pytest.approx(local.frontend_latency + 80e-9)
    assert "Pond" in sources["frontend_latency"]
