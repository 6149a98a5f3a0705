"""Link presets and preset resolution (device presets: tests/test_dram_presets.py)."""

from __future__ import annotations

import pytest
import yaml

from embsim.errors import InputError
from embsim.limits import MAX_YAML_DEPTH
from hwmodels.presets import SHIPPED_LOADER, load_preset, preset_files, resolve


def test_pcie_preset_figures():
    spec, sources = resolve("link", "pcie5-x16", {})
    assert spec.bandwidth == pytest.approx(63.0e9, rel=0.01)
    assert sources["bandwidth"].startswith("preset pcie5-x16: ")


def test_overrides_replace_values_and_record_where_they_came_from():
    spec, sources = resolve("link", "pcie5-x16", {"latency": "2 us"}, source="x.yaml")
    assert spec.latency == pytest.approx(2e-6)
    assert sources["latency"] == "set in x.yaml"


def test_unknown_preset_and_bad_override():
    with pytest.raises(InputError, match="expected one of: .*hbm3-h100"):
        resolve("dram", "hbm4-future", {}, source="x.yaml", field="system.memory.hbm")
    with pytest.raises(InputError, match="system.links.pcie.bandwidth"):
        resolve("link", "pcie5-x16", {"bandwidth": -1}, field="system.links.pcie")
    with pytest.raises(InputError, match="unknown memory preset 'pcie5-x16'"):
        resolve("memory", "pcie5-x16", {})


def test_shipped_presets_read_the_same_with_the_fast_loader():
    for path in preset_files():
        text = path.read_text()
        assert yaml.load(text, Loader=SHIPPED_LOADER) == yaml.safe_load(text), path


def test_a_users_preset_file_is_read_bounded(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * (MAX_YAML_DEPTH + 10) + "]" * (MAX_YAML_DEPTH + 10))
    with pytest.raises(InputError, match="nested too deep") as err:
        load_preset(str(deep), "dram")
    assert err.value.source == str(deep)
