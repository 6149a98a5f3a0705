"""Calibration: the fits recover known parameters; presets round-trip; committed presets."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from simulator.calibrate import (
    COSTS,
    GRID,
    chain_was_warm,
    fit_cache_capacity,
    fit_memory_bandwidth,
    fit_processor_and_cache,
    refit,
)
from simulator.machine_preset import load_machine_preset, save_machine_preset
from simulator.microbench import Sample

MEASURED = ROOT / "experiments" / "measurements"


def synthetic(tables, batch, pooling, dim, footprint, costs, bandwidth):
    lookups = tables * batch * pooling
    nbytes = lookups * dim * 4
    seconds = (costs[0] + tables * costs[1] + tables * batch * costs[2] + lookups * costs[3]
               + tables * pooling * costs[4] + nbytes / bandwidth)
    return Sample("gather", seconds, {"tables": tables, "batch_size": batch,
                                      "pooling": pooling, "dim": dim, "bytes": nbytes,
                                      "footprint_bytes": footprint, "where": "local"})


def test_processor_and_cache_fit_recovers_known_parameters():
    costs = (8e-6, 3e-6, 2e-9, 0.5e-9, 60e-9)
    import itertools
    samples = [synthetic(t, b, p, d, 2**20, costs, 200e9)
               for t, b, p, d in itertools.product(*GRID.values())]
    fitted = fit_processor_and_cache(samples)
    for name, value in zip(("query_overhead", "call_overhead", "bag_overhead",
                            "lookup_overhead", "lookup_chain_latency"), costs, strict=True):
        assert fitted[name] == pytest.approx(value, rel=1e-6)
    assert fitted["bandwidth"] == pytest.approx(200e9, rel=1e-6)


@pytest.mark.parametrize("overlapped", [True, False])
def test_memory_bandwidth_fit(overlapped):
    cached = {"query_overhead": 1e-6, "call_overhead": 0.0, "bag_overhead": 0.0,
              "lookup_overhead": 0.0, "lookup_chain_latency": 0.0, "bandwidth": 1e12}
    footprint, cache = 2**30, 2**24
    samples = []
    for dim in (32, 256):
        nbytes = 4 * 1024 * 64 * dim * 4
        missed = nbytes * (1 - cache / footprint)
        cache_time = 0.0 if overlapped else nbytes / 1e12
        seconds = 1e-6 + cache_time + missed / 50e9
        samples.append(Sample("gather", seconds, {"tables": 4, "batch_size": 1024,
                                                  "pooling": 64, "dim": dim, "bytes": nbytes,
                                                  "footprint_bytes": footprint}))
    assert fit_memory_bandwidth(samples, cached, cache, overlapped) == pytest.approx(50e9)


@pytest.mark.parametrize("machine", ["h100", "h200", "cpu-amd-epyc"])
def test_committed_preset_round_trips_and_refits_identically(tmp_path, machine):
    path = MEASURED / f"{machine}-2026-11-26-preset.yaml"
    preset = load_machine_preset(path)
    copy = tmp_path / "copy.yaml"
    save_machine_preset(preset, copy)
    assert load_machine_preset(copy) == preset
    assert copy.read_text() == path.read_text()
    assert _numbers(refit(preset)["system"]) == pytest.approx(_numbers(preset["system"]),
                                                              rel=1e-6)
    runs = preset["microbenchmarks"]
    assert sum(m["name"] == "gather" for m in runs) >= int(np.prod([len(v) for v in
                                                                     GRID.values()]))
    for value in _values(preset["system"]):
        assert isinstance(value["source"], str) and value["source"]


def _numbers(node):
    return [v["value"] for v in _values(node) if isinstance(v["value"], (int, float))]


def _values(node):
    if isinstance(node, dict):
        if set(node) == {"value", "source"}:
            yield node
        else:
            for child in node.values():
                yield from _values(child)


def test_cpu_calibration_end_to_end_at_small_sizes(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from simulator.backends import backend_by_name
    from simulator.calibrate import calibrate

    # a small grid keeps the test quick; the fitting code is the same
    for key, values in {"tables": (1, 2), "batch_size": (8, 64), "pooling": (1, 8),
                        "dim": (16, 64)}.items():
        monkeypatch.setitem(GRID, key, values)
    preset = calibrate(backend_by_name("torch-cpu"), memory_footprint=2**24)  # >= 4x LLC
    path = tmp_path / "cpu.yaml"
    save_machine_preset(preset, path)
    loaded = load_machine_preset(path)
    assert loaded == preset
    memory = loaded["system"]["memory"]
    llc = max(loaded["provenance"]["caches"].values())
    assert 0 < loaded["system"]["cache"]["size"]["value"] <= llc
    assert memory["dram"]["bandwidth"]["value"] > 0
    assert "calibrated" in memory["dram"]["bandwidth"]["source"]
    assert {m["name"] for m in loaded["microbenchmarks"]} >= {
        "gather", "gather_sweep", "sequential_read", "dependent_load_latency"}


def test_cache_capacity_fit_recovers_a_known_capacity():
    cached = dict.fromkeys(COSTS, 0.0) | {"query_overhead": 1e-6, "bandwidth": 200e9}
    memory_bw, capacity = 40e9, 12 * 2**20
    samples = []
    for footprint in [2**k for k in range(19, 28)]:
        nbytes = 4 * 1024 * 64 * 256
        hit = min(1.0, capacity / footprint)
        seconds = 1e-6 + max(nbytes / 200e9, (1 - hit) * nbytes / memory_bw)
        samples.append(Sample("gather_sweep", seconds, {
            "tables": 4, "batch_size": 1024, "pooling": 64, "dim": 64, "bytes": nbytes,
            "footprint_bytes": footprint}))
    fitted = fit_cache_capacity(samples, cached, memory_bw, reported=32 * 2**20)
    assert fitted == pytest.approx(capacity, rel=0.1)


def test_latency_chains_count_only_when_warmed_over_their_cycle():
    def chain(nbytes, steps, **extra):
        return Sample("dependent_load_latency", 1e-7, {"bytes": nbytes, "steps": steps,
                                                       **extra})
    assert chain_was_warm(chain(2**20, 10, warm_steps=2**20 // 64))
    assert not chain_was_warm(chain(2**30, 10, warm_steps=2_000_000))
    assert not chain_was_warm(chain(25 * 2**20, 200_000))      # an old GPU record


def test_refit_of_a_preset_without_its_runs_is_bad_input(tmp_path):
    from conftest import embsim, write_yaml

    preset = load_machine_preset(MEASURED / "h200-2026-11-26-preset.yaml")
    del preset["microbenchmarks"]
    write_yaml(tmp_path / "bare.yaml", preset)
    proc = embsim("calibrate", "--refit", str(tmp_path / "bare.yaml"), "-o",
                  str(tmp_path / "out.yaml"))
    assert proc.returncode == 2 and "records no microbenchmarks" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out.yaml").exists()


def test_calibrate_cli_refit_and_exclusive_options(tmp_path):
    from conftest import embsim

    out = tmp_path / "refit.yaml"
    proc = embsim("calibrate", "--refit", str(MEASURED / "h100-2026-11-26-preset.yaml"), "-o",
                  str(out))
    assert proc.returncode == 0, proc.stderr
    assert _numbers(load_machine_preset(out)["system"]) == pytest.approx(_numbers(
        load_machine_preset(MEASURED / "h100-2026-11-26-preset.yaml")["system"]), rel=1e-6)
    assert "l2:" in proc.stdout and "hbm:" in proc.stdout
    proc = embsim("calibrate", "-o", str(tmp_path / "x.yaml"))
    assert proc.returncode == 2 and "exactly one of --backend or --refit" in proc.stderr
