import pytest

from embsim.units import format_size, parse_bandwidth, parse_energy, parse_size, parse_time


@pytest.mark.parametrize(("text", "expected"), [
    ("64 GiB", 64 * 2**30), ("80 GB", 80e9), ("256 B", 256), ("4KiB", 4096), (512, 512),
    ("1.5 MB", 1.5e6),
])
def test_sizes(text, expected):
    assert parse_size(text) == pytest.approx(expected)


def test_bandwidth_time_energy():
    assert parse_bandwidth("3.35 TB/s") == pytest.approx(3.35e12)
    assert parse_bandwidth("64 GiB/s") == pytest.approx(64 * 2**30)
    assert parse_time("14 ns") == pytest.approx(14e-9)
    assert parse_time("1.5 us") == pytest.approx(1.5e-6)
    assert parse_energy("3.9 pJ") == pytest.approx(3.9e-12)


@pytest.mark.parametrize(("parser", "text"), [
    (parse_size, "3 furlongs"), (parse_size, "GiB"), (parse_bandwidth, "3 TB"),
    (parse_time, "5 parsecs"), (parse_energy, "1 kWh"), (parse_size, True), (parse_size, [1]),
])
def test_rejects_bad_units(parser, text):
    with pytest.raises(ValueError, match="expected"):
        parser(text)


def test_format_size():
    assert format_size(3 * 2**30) == "3 GiB"
    assert format_size(512) == "512 B"
