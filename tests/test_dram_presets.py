"""Preset loader (recursive, keyed by kind and name, ``extends``) and the shipped DRAM presets:
every value sourced, each validates, capacities and bandwidths match the products."""

from __future__ import annotations

import pytest
import yaml

from embsim.errors import InputError
from hwmodels.presets import (
    PRESET_DIR,
    all_presets,
    kinds_of,
    load_preset,
    preset_files,
    preset_names,
    read_presets,
    resolve,
)

GIB = 2**30
DRAM_PRESETS = ["ddr4-3200", "ddr5-4800", "ddr5-4800-8ch", "ddr5-4800-12ch", "ddr5-6400",
                "ddr5-6400-8ch", "ddr5-6400-12ch", "hbm2e-a100", "hbm3-h100", "hbm3e-h200"]


@pytest.mark.parametrize("path", preset_files(), ids=lambda p: str(p.relative_to(PRESET_DIR)))
def test_every_shipped_preset_is_sourced_and_validates(path):
    data = yaml.safe_load(path.read_text())
    assert data["name"] == path.stem
    for key, entry in data["params"].items():
        assert set(entry) == {"value", "source"}, key
        assert isinstance(entry["source"], str) and len(entry["source"]) > 10, key
    preset = load_preset(data["name"], data["kind"])
    spec, sources = resolve(data["kind"], data["name"], {})
    assert set(sources) == set(preset.values) >= set(data["params"])


def test_the_issue_presets_exist_as_dram():
    assert set(DRAM_PRESETS) <= set(preset_names("dram"))
    # the DRAM models replaced the first bandwidth/latency presets of the same names
    assert kinds_of("hbm3-h100") == ["dram"]


@pytest.mark.parametrize(("name", "capacity_gib", "bandwidth"), [
    ("ddr4-3200", 16, 25.6e9),            # 3200 MT/s x 8 B
    ("ddr5-4800", 64, 38.4e9),            # 4800 MT/s x 2 x 4 B
    ("ddr5-4800-8ch", 512, 307.2e9),
    ("ddr5-4800-12ch", 768, 460.8e9),
    ("ddr5-6400", 64, 51.2e9),
    ("ddr5-6400-8ch", 512, 409.6e9),
    ("ddr5-6400-12ch", 768, 614.4e9),
    ("hbm2e-a100", 80, 2.039e12),         # A100 80GB SXM datasheet: 2,039 GB/s
    ("hbm3-h100", 80, 3.35e12),           # H100 SXM datasheet: 3.35 TB/s
    ("hbm3e-h200", 144, 4.8e12),          # H200 datasheet: 4.8 TB/s (144 GiB physical)
])
def test_capacity_and_peak_bandwidth_match_the_product(name, capacity_gib, bandwidth):
    spec, _ = resolve("dram", name, {})
    derived = spec.derived()
    assert derived["capacity"] == capacity_gib * GIB
    assert derived["peak_bandwidth"] == pytest.approx(bandwidth, rel=1e-3)


@pytest.mark.parametrize(("name", "pins", "gbps_per_pin"), [
    ("hbm2e-a100", 5 * 1024, 3.186), ("hbm3-h100", 5 * 1024, 5.238),
    ("hbm3e-h200", 6 * 1024, 6.25)])
def test_hbm_bandwidth_is_pin_rate_times_bus_width(name, pins, gbps_per_pin):
    spec, _ = resolve("dram", name, {})
    assert spec.channels * spec.pseudo_channels * spec.bus_width == pins
    assert spec.peak_bandwidth == pytest.approx(pins * gbps_per_pin * 1e9 / 8, rel=1e-3)


@pytest.mark.parametrize(("name", "measured_ns"), [
    ("hbm3-h100", 210.0), ("hbm3e-h200", 186.0), ("ddr5-4800-8ch", 132.0)])
def test_frontend_latency_makes_a_row_miss_read_reproduce_the_measurement(name, measured_ns):
    spec, _ = resolve("dram", name, {})
    closed_form = (spec.tRCD + spec.CL + spec.burst_length // 2) * spec.tCK
    assert spec.frontend_latency + closed_form == pytest.approx(measured_ns * 1e-9, abs=0.06e-9)
    assert spec.derived()["read_latency_miss_s"] == pytest.approx(measured_ns * 1e-9,
                                                                  abs=0.06e-9)
    assert load_preset(name, "dram").sources["frontend_latency"].startswith("Derived: measured")


def test_socket_variants_extend_the_dimm_channel_and_keep_its_sources():
    base = load_preset("ddr5-4800", "dram")
    socket = load_preset("ddr5-4800-12ch", "dram")
    assert socket.values["channels"] == 12 and base.values["channels"] == 1
    for key in set(base.values) - {"channels"}:
        assert socket.values[key] == base.values[key]
        assert socket.sources[key] == base.sources[key]
    assert socket.sources["channels"] != base.sources["channels"]


def _write(root, name, data):
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _param(value, source="a source long enough"):
    return {"value": value, "source": source}


def test_loader_reads_subfolders_keys_by_kind_and_chains_extends(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(tmp_path, "a", {"name": "a", "kind": "memory", "description": "A",
                           "params": {"latency": _param("1 ns", "base source")}})
    _write(tmp_path / "sub", "a-dram", {"name": "a", "kind": "dram",
                                        "params": {"x": _param(1)}})
    _write(tmp_path / "sub", "b", {"name": "b", "kind": "memory", "extends": "a",
                                   "params": {"channels": _param(4, "own source")}})
    _write(tmp_path, "c", {"name": "c", "kind": "memory", "extends": "b",
                           "params": {"latency": _param("2 ns", "override source")}})
    presets = read_presets(tmp_path)
    assert sorted(presets) == [("dram", "a"), ("memory", "a"), ("memory", "b"),
                               ("memory", "c")]
    c = presets[("memory", "c")]
    assert c.values == {"latency": "2 ns", "channels": 4}
    assert c.sources == {"latency": "override source", "channels": "own source"}
    assert presets[("memory", "b")].sources["latency"] == "base source"


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "x", "kind": "memory", "params": {"latency": {"value": 1}}},
     "params.latency: expected exactly the keys value and source"),
    ({"name": "x", "kind": "memory", "params": {"latency": _param(1, " ")}},
     "params.latency.source: expected a non-empty source"),
    ({"name": "x", "kind": "memory", "params": {"latency": {"value": 1, "source": "s",
                                                           "unit": "ns"}}},
     "params.latency: expected exactly the keys value and source"),
    ({"name": "x", "kind": "memory", "colour": "red", "params": {}}, "unknown key 'colour'"),
    ({"kind": "memory", "params": {}}, "name: expected a non-empty string"),
    ({"name": "x", "kind": "memory", "extends": "nothing", "params": {}},
     "extends: extends unknown memory preset 'nothing'"),
])
def test_broken_preset_files_name_file_and_field(tmp_path, data, message):
    path = _write(tmp_path, "x", data)
    with pytest.raises(InputError, match=message) as info:
        read_presets(tmp_path)
    assert info.value.source == str(path)


def test_extends_loop_and_duplicate_names_are_errors(tmp_path):
    _write(tmp_path, "p", {"name": "p", "kind": "memory", "extends": "q", "params": {}})
    _write(tmp_path, "q", {"name": "q", "kind": "memory", "extends": "p", "params": {}})
    with pytest.raises(InputError, match="extends chain loops back"):
        read_presets(tmp_path)
    loop_free = tmp_path / "dup"
    loop_free.mkdir()
    _write(loop_free, "one", {"name": "same", "kind": "memory", "params": {}})
    _write(loop_free, "two", {"name": "same", "kind": "memory", "params": {}})
    with pytest.raises(InputError, match="memory preset 'same' is also defined in"):
        read_presets(loop_free)


def test_resolve_validates_against_the_kind_spec_and_names_the_field():
    with pytest.raises(InputError, match="system.hbm.tRC: .*tRC >= tRAS \\+ tRP"):
        resolve("dram", "ddr4-3200", {"tRC": 60}, field="system.hbm")
    with pytest.raises(InputError, match="sizes: unknown dram parameter; expected one of: "
                                         "standard, channels"):
        resolve("dram", "ddr4-3200", {"sizes": 1})
    with pytest.raises(InputError, match="unknown kind 'flash'; expected one of: .*dram"):
        resolve("flash", None, {})
    with pytest.raises(InputError, match="unknown dram preset 'ddr9'; expected one of: "
                                         ".*ddr4-3200"):
        resolve("dram", "ddr9", {})


def test_overrides_record_their_source_and_presets_are_keyed_per_kind():
    spec, sources = resolve("dram", "ddr4-3200", {"ranks": 1}, source="x.yaml")
    assert spec.capacity == 8 * GIB
    assert sources["ranks"] == "set in x.yaml"
    assert sources["tCK"].startswith("preset ddr4-3200: JEDEC JESD79-4")
    assert all_presets()[("link", "pcie5-x16")].kind == "link"
    assert ("memory", "hbm3-h100") not in all_presets()
