"""Every shipped preset validates, and every value in it names its source."""

from __future__ import annotations

import pytest
import yaml

from embsim.errors import InputError
from hwmodels.presets import PRESET_DIR, all_presets, load_preset, resolve
from hwmodels.specs import SPECS


@pytest.mark.parametrize("path", sorted(PRESET_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_value_has_a_source_and_the_spec_validates(path):
    data = yaml.safe_load(path.read_text())
    assert data["name"] == path.stem
    assert data["kind"] in SPECS
    for key, entry in data["params"].items():
        assert set(entry) >= {"value", "source"}, key
        assert isinstance(entry["source"], str) and len(entry["source"]) > 10, key
    spec, sources = resolve(data["kind"], data["name"], {})
    assert set(sources) == set(data["params"])


@pytest.mark.parametrize(("name", "field", "value"), [
    ("hbm3-h100", "capacity", 80e9), ("hbm3-h100", "bandwidth", 3.35e12),
    ("hbm3e-h200", "capacity", 141e9), ("hbm3e-h200", "bandwidth", 4.8e12),
    ("ddr5-4800-8ch", "bandwidth", 307.2e9), ("ddr5-4800-8ch", "channels", 8),
    ("pcie5-x16", "bandwidth", 63.0e9),
])
def test_named_figures(name, field, value):
    preset = load_preset(name, all_presets()[name].kind)
    spec, _ = resolve(preset.kind, name, {})
    assert getattr(spec, field) == pytest.approx(value, rel=0.01)


def test_overrides_replace_values_and_record_where_they_came_from():
    spec, sources = resolve("memory", "hbm3-h100", {"capacity": "40 GiB"}, source="x.yaml")
    assert spec.capacity == 40 * 2**30
    assert sources["capacity"] == "set in x.yaml"
    assert sources["bandwidth"].startswith("preset hbm3-h100: ")


def test_unknown_preset_and_bad_override():
    with pytest.raises(InputError, match="expected one of: .*hbm3-h100"):
        resolve("memory", "hbm4-future", {}, source="x.yaml", field="system.memory.hbm")
    with pytest.raises(InputError, match="system.memory.hbm.channels"):
        resolve("memory", "hbm3-h100", {"channels": -1}, field="system.memory.hbm")
    with pytest.raises(InputError, match="unknown memory preset 'pcie5-x16'"):
        resolve("memory", "pcie5-x16", {})
