"""``embsim presets list|show`` through the real command line."""

from __future__ import annotations

import json

import pytest

from hwmodels.presets import all_presets, load_preset
from simulator.cli.presets import human
from tests.conftest import embsim


def test_list_json_has_every_preset_once():
    result = embsim("presets", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["presets"]
    assert {(r["kind"], r["name"]) for r in rows} == set(all_presets())
    assert len(rows) == len(all_presets())
    assert all(set(r) == {"name", "kind", "description"} for r in rows)


def test_list_text_names_kinds():
    result = embsim("presets", "list")
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("ddr4-3200 "))
    assert " dram " in line and "DDR4-3200" in line


def test_show_json_gives_values_sources_and_derived_figures():
    result = embsim("presets", "show", "hbm3-h100", "--kind", "dram", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    preset = load_preset("hbm3-h100", "dram")
    assert set(shown) == {"name", "kind", "description", "params", "derived"}
    assert shown["params"]["tCK"] == {"value": preset.values["tCK"],
                                      "source": preset.sources["tCK"]}
    assert set(shown["params"]) == set(preset.values)
    derived = shown["derived"]
    assert derived["peak_bandwidth"] == pytest.approx(3.35e12, rel=1e-3)
    cycles = {k: preset.values[k] for k in ("CL", "tRCD", "tRP")}
    t_ck = 1 / 2.619e9
    front = derived["read_latency_miss_s"] - (cycles["tRCD"] + cycles["CL"] + 4) * t_ck
    assert derived["read_latency_hit_s"] == pytest.approx(front + (cycles["CL"] + 4) * t_ck,
                                                          rel=1e-4)
    assert derived["read_latency_conflict_s"] == pytest.approx(
        derived["read_latency_miss_s"] + cycles["tRP"] * t_ck, rel=1e-4)


def test_show_text_lists_parameters_with_sources_and_derived():
    result = embsim("presets", "show", "ddr4-3200")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "JEDEC JESD79-4 DDR4-3200AA" in out
    assert "derived:" in out
    assert "25.6 GB/s" in out            # peak bandwidth: 3200 MT/s x 8 B
    assert "30 ns" in out                # row miss: (22 + 22 + 4) x 0.625 ns


def test_show_unknown_preset_or_kind_exits_2_with_names():
    result = embsim("presets", "show", "ddr9-9999")
    assert result.returncode == 2
    assert "unknown preset 'ddr9-9999'; expected one of:" in result.stderr
    assert "ddr4-3200" in result.stderr and "Traceback" not in result.stderr
    result = embsim("presets", "show", "ddr4-3200", "--kind", "memory")
    assert result.returncode == 2 and "unknown memory preset 'ddr4-3200'" in result.stderr


@pytest.mark.parametrize(("key", "value", "text"), [
    ("read_latency_hit_s", 16.25e-9, "16.25 ns"), ("peak_bandwidth", 3.352e12, "3.352 TB/s"),
    ("capacity", 16 * 2**30, "16 GiB"), ("refresh_overhead", 0.0449, "0.0449"),
    ("energy_j", 2.5e-9, "2.5 nJ"), ("request_bytes", 0.0, "0 B")])
def test_human_units_follow_the_key(key, value, text):
    assert human(key, value) == text
