"""Calibration: the fits recover known parameters; presets round-trip; committed presets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.tier import touched_units
from simulator.core.config import ComputeConfig
from simulator.core.processor import Processor
from simulator.grounding.calibrate import (
    GRID,
    HALF_GRID,
    PRIVATE_GRID,
    REMAINDER_GRID,
    TLB_ENTRIES,
    chain_was_warm,
    refit,
)
from simulator.grounding.cost_fit import (
    COSTS,
    NO_STRUCTURES,
    TERMS,
    Structures,
    best_tlb,
    entry_hit_share,
    expected_hits,
    fit_cache_capacity,
    fit_memory,
    fit_memory_bandwidth,
    fit_processor,
    floor_term,
    mean_touched_lines,
    pool_seconds,
    relative_error,
    terms,
)
from simulator.grounding.machine_preset import load_machine_preset, save_machine_preset
from simulator.grounding.microbench import Sample

MEASURED = ROOT / "experiments" / "measurements"


def run_of(tables, batch, pooling, dim, footprint, seconds=1.0, where="local", element=4):
    lookups = tables * batch * pooling
    return Sample("gather", seconds, {
        "tables": tables, "batch_size": batch, "pooling": pooling, "dim": dim,
        "bytes": lookups * dim * element, "footprint_bytes": footprint,
        "rows": footprint // (tables * dim * element), "where": where,
        "dtype": {4: "float32", 2: "float16"}[element]})


def timed(sample, per_unit, structures=NO_STRUCTURES):
    """The sample with the seconds the engine's model gives it at ``per_unit`` costs."""
    seconds = float(terms(sample, structures) @ per_unit)
    return Sample(sample.name, seconds, sample.params)


def test_expected_hits_closed_forms():
    assert expected_hits(1000, 50, 10, 1, fits_all=True) == 1000
    assert expected_hits(1000, 50, 10, 1, fits_all=False) == pytest.approx(200)
    # a call that starts cold first misses on each distinct unit it touches
    distinct = 50 * (1 - np.exp(-1000 / 50))
    assert expected_hits(1000, 50, 100, 4, fits_all=False) == pytest.approx(1000 - distinct)
    assert expected_hits(3, 1e6, 1e3, 2, fits_all=False) == pytest.approx(0, abs=1e-7)


def test_terms_count_work_the_way_the_engine_does():
    sample = run_of(2, 32, 8, 64, 2 * 1000 * 256)          # 2 tables of 1000 rows, 256 B
    plain = dict(zip(TERMS, terms(sample), strict=True))
    assert plain["lookup_overhead"] == 2 * 32 * 8 and plain["bag_overhead"] == 64
    assert plain["element_overhead"] == 2 * 32 * 8 * 64
    assert plain["lookup_chain_latency"] == 2 * 8
    assert plain["compute_bytes"] == (2 * 32 * 8 + 2 * 32) * 256    # rows and outputs
    assert plain["private_lines"] == plain["tlb_misses"] == 0
    # everything fits a 1 MiB private cache and a 256-page TLB: all near, no misses
    fits = dict(zip(TERMS, terms(sample, Structures(2**20, 256)), strict=True))
    assert fits["private_lines"] == 2 * 32 * 8 * 4 and fits["tlb_misses"] == 0
    assert fits["compute_bytes"] == 2 * 32 * 256


@pytest.mark.parametrize(("row", "lines"), [(64, 1), (128, 2), (32, 1), (56, 1.75), (48, 1.5),
                                           (120, 2.75), (96, 2), (112, 2.5)])
def test_mean_touched_lines_closed_forms(row, lines):
    assert mean_touched_lines(row, 64) == pytest.approx(lines)


@given(st.integers(1, 700))
@settings(max_examples=50, deadline=None)
def test_mean_touched_lines_is_what_the_engine_touches_over_a_table(row):
    """Rows back to back from address 0, as the engine lays a table out: the mean of the lines
    ``touched_units`` gives each row over many rows."""
    rows = 64 * 8
    _, count = touched_units(np.arange(rows) * row, np.full(rows, row), 64)
    assert mean_touched_lines(row, 64) == pytest.approx(count.mean())


def test_remainder_lookups_are_those_of_rows_that_are_not_whole_vectors():
    remainder = TERMS.index("remainder_overhead")
    sixteen = Structures(vector_elements=16)
    assert terms(run_of(2, 8, 4, 20, 2**20), sixteen)[remainder] == 2 * 8 * 4
    assert terms(run_of(2, 8, 4, 32, 2**20), sixteen)[remainder] == 0
    assert terms(run_of(2, 8, 4, 20, 2**20))[remainder] == 0        # width unknown: none
    assert terms(run_of(2, 8, 4, 24, 2**20), Structures(vector_elements=8))[remainder] == 0
    # a 56 B row straddles lines: the compute tier reads 1.75 lines a lookup on average
    straddling = dict(zip(TERMS, terms(run_of(1, 8, 4, 14, 2**20), sixteen), strict=True))
    assert straddling["compute_bytes"] == pytest.approx(32 * 1.75 * 64 + 8 * 64)


def test_processor_fit_recovers_a_remainder_overhead():
    """Runs of whole-vector dims (32, 256) and of dims 12, 28 and 100, timed with 0.7 ns more
    per lookup of the latter: the fit finds the 0.7 ns and the other costs."""
    per_unit = np.array([8e-6, 3e-6, 2e-9, 0.5e-9, 0.02e-9, 0.0, 1 / 200e9, 0.0, 0.0, 0.0,
                         0.7e-9, 0.0])
    sixteen = Structures(vector_elements=16)
    samples = [timed(run_of(t, b, p, d, 2**22, element=e), per_unit, sixteen)
               for t, b, p, d, e in itertools.product((1, 4), (32, 512, 4096), (16, 128),
                                                      (12, 28, 32, 100, 256), (4, 2))]
    fitted = fit_processor(samples, sixteen)
    assert fitted["remainder_overhead"] == pytest.approx(0.7e-9, rel=1e-6)
    assert fitted["lookup_overhead"] == pytest.approx(0.5e-9, rel=1e-6)
    assert fit_processor([s for s in samples if s.params["dim"] % 16 == 0],
                         sixteen)["remainder_overhead"] == 0


def test_half_remainder_lookups_are_16_bit_partial_vectors_beyond_the_private_cache():
    half, lookups = TERMS.index("half_remainder_overhead"), TERMS.index("lookup_overhead")
    sixteen = Structures(vector_elements=16)
    assert terms(run_of(2, 8, 4, 20, 2**20, element=2), sixteen)[half] == 2 * 8 * 4
    assert terms(run_of(2, 8, 4, 20, 2**20), sixteen)[half] == 0             # float32
    assert terms(run_of(2, 8, 4, 32, 2**20, element=2), sixteen)[half] == 0  # whole vectors
    holds_all = Structures(private_bytes=2**22, vector_elements=16)
    assert terms(run_of(2, 8, 4, 20, 2**20, element=2), holds_all)[half] == 0
    holds_some = Structures(private_bytes=2**18, vector_elements=16)
    row = terms(run_of(1, 512, 16, 20, 2**20, element=2), holds_some)
    assert 0 < row[half] < row[lookups]            # the rows the private cache holds pay not


def test_processor_fit_recovers_a_half_remainder_overhead():
    """Runs in and beyond a 1 MiB private cache, of float32 and float16 rows of whole and
    partial vectors, timed with 0.7 ns more per partial-vector lookup and 2.5 ns more again
    per float16 one read from beyond the private cache: the fit finds both."""
    per_unit = np.array([8e-6, 3e-6, 2e-9, 0.5e-9, 0.02e-9, 0.0, 1 / 200e9, 0.1e-9, 0.0, 0.0,
                         0.7e-9, 2.5e-9])
    structures = Structures(private_bytes=2**20, vector_elements=16)
    samples = [timed(run_of(t, b, p, d, f, element=e), per_unit, structures)
               for t, b, p, d, f, e in itertools.product(
                   (1, 4), (512, 4096), (16, 128), (12, 28, 32, 100, 256), (2**19, 2**24),
                   (4, 2))]
    fitted = fit_processor(samples, structures)
    assert fitted["half_remainder_overhead"] == pytest.approx(2.5e-9, rel=1e-6)
    assert fitted["remainder_overhead"] == pytest.approx(0.7e-9, rel=1e-6)


@pytest.mark.parametrize(("flags", "lanes"), [
    ("flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512dq avx512vl", 16),
    ("flags\t\t: fpu sse2 avx avx2 avx512f", 8),
    ("flags\t\t: fpu sse2 avx avx2 fma", 8), ("flags : fpu sse2", 4),
    ("Features\t: fp asimd evtstrm", 4), ("flags : fpu", None), ("processor : 0", None)])
def test_simd_lanes_come_from_the_cpus_flags(flags, lanes):
    from simulator.grounding.backends.torch_cpu import simd_elements

    assert simd_elements(f"processor : 0\n{flags}\n") == lanes


def test_processor_fit_recovers_known_parameters():
    per_unit = np.array([8e-6, 3e-6, 2e-9, 0.5e-9, 0.02e-9, 60e-9, 1 / 200e9, 0.1e-9, 2e-9,
                         0.0, 0.0, 0.0])
    structures = Structures(private_bytes=2**20, tlb_entries=512)
    samples = [timed(run_of(t, b, p, d, f, element=e), per_unit, structures)
               for t, b, p, d in itertools.product(*GRID.values())
               for f in (2**19, 2**24) for e in (4, 2)]
    fitted = fit_processor(samples, structures)
    for name, value in zip(COSTS, per_unit, strict=False):
        assert fitted[name] == pytest.approx(value, rel=1e-6)
    assert fitted["bandwidth"] == pytest.approx(200e9, rel=1e-6)
    assert fitted["private_lines"] == pytest.approx(0.1e-9, rel=1e-6)
    assert fitted["tlb_misses"] == pytest.approx(2e-9, rel=1e-6)
    chosen, _ = best_tlb(samples, 2**20, (128, 512, 2048))
    assert chosen.tlb_entries == 512


def test_floor_fit_recovers_a_lookup_floor_that_narrow_rows_hit():
    """Runs timed with a 0.6 ns floor over 0.1 ns per lookup and 0.02 ns per element: rows of
    8 and 16 elements sit on the floor, rows of 64 and 256 above it. The floor fit recovers
    it and the costs; the plain fit cannot (it has no floor) and fits worse."""
    per_unit = np.array([8e-6, 3e-6, 2e-9, 0.1e-9, 0.02e-9, 0.0, 1 / 200e9, 0.0, 0.0, 0.0, 0.0,
                         0.0])
    fit = dict(zip(TERMS, per_unit, strict=True)) | {"bandwidth": 200e9, "lookup_floor": 0.6e-9}
    samples = []
    for t, b, p, d, e in itertools.product((1, 4), (32, 512, 4096), (1, 16, 128),
                                           (8, 16, 64, 256), (4, 2)):
        run = run_of(t, b, p, d, 2**22, element=e)
        samples.append(Sample(run.name, pool_seconds(run, fit, NO_STRUCTURES), run.params))
    fitted = fit_processor(samples, floor=True)
    assert fitted["lookup_floor"] == pytest.approx(0.6e-9, rel=1e-3)
    assert fitted["element_overhead"] == pytest.approx(0.02e-9, rel=1e-3)
    assert relative_error(samples, fitted, NO_STRUCTURES) < 1e-4
    plain = fit_processor(samples)
    assert plain["lookup_floor"] == 0
    assert relative_error(samples, plain, NO_STRUCTURES) > 0.01


def test_floor_fit_leaves_the_floor_zero_where_runs_have_none():
    per_unit = np.array([8e-6, 3e-6, 2e-9, 0.5e-9, 0.1e-9, 60e-9, 1 / 200e9, 0.0, 0.0, 0.0, 0.0,
                         0.0])
    samples = [timed(run_of(t, b, p, d, 2**24, element=e), per_unit)
               for t, b, p, d in itertools.product(*GRID.values()) for e in (4, 2)]
    fitted = fit_processor(samples, floor=True)
    assert fitted["lookup_floor"] == 0.0
    assert fitted["lookup_chain_latency"] == pytest.approx(60e-9, rel=1e-6)
    assert relative_error(samples, fitted, NO_STRUCTURES) < 1e-6


def test_the_fits_floor_is_the_engines():
    """What ``floor_term`` adds to a run is what ``ComputeConfig.lookup_extra`` adds to
    each of its lookups, for rows under the floor and over it."""
    costs = {"lookup_overhead": 0.1e-9, "element_overhead": 0.02e-9, "lookup_floor": 0.6e-9}
    compute = ComputeConfig(tier="llc", **costs)
    for dim in (8, 16, 24, 26, 64, 256):
        sample = run_of(4, 512, 16, dim, 2**22)
        row = terms(sample)
        added = floor_term(row[None, :], costs["lookup_overhead"], costs["element_overhead"],
                           costs["lookup_floor"])[0]
        per_lookup = compute.lookup_extra(np.array([dim]))[0]
        assert added == pytest.approx(4 * 512 * 16 * per_lookup, rel=1e-12, abs=1e-21)
        assert (added > 0) == (dim <= 24)


def test_processor_fit_without_structures_leaves_their_costs_zero():
    per_unit = np.array([8e-6, 3e-6, 2e-9, 0.5e-9, 0.0, 60e-9, 1 / 200e9, 0.0, 0.0, 0.0, 0.0,
                         0.0])
    samples = [timed(run_of(t, b, p, d, 2**24), per_unit)
               for t, b, p, d in itertools.product(*GRID.values())]
    fitted = fit_processor(samples)
    assert fitted["private_lines"] == fitted["tlb_misses"] == 0
    assert fitted["bandwidth"] == pytest.approx(200e9, rel=1e-6)


def test_one_element_type_cannot_tell_elements_from_bytes():
    """With float32 runs only, elements are bytes / 4: the per-element cost stays zero and the
    bytes carry it; float16 runs beside them separate the two."""
    per_unit = np.array([8e-6, 3e-6, 2e-9, 0.5e-9, 0.1e-9, 60e-9, 1 / 200e9, 0.0, 0.0, 0.0, 0.0,
                         0.0])
    grid = list(itertools.product(*GRID.values()))
    float32 = [timed(run_of(t, b, p, d, 2**24), per_unit) for t, b, p, d in grid]
    assert fit_processor(float32)["element_overhead"] == 0
    both = float32 + [timed(run_of(t, b, p, d, 2**24, element=2), per_unit)
                      for t, b, p, d in grid]
    fitted = fit_processor(both)
    assert fitted["element_overhead"] == pytest.approx(0.1e-9, rel=1e-6)
    assert fitted["bandwidth"] == pytest.approx(200e9, rel=1e-6)


@pytest.mark.parametrize("overlapped", [True, False])
def test_memory_bandwidth_fit(overlapped):
    fit = dict.fromkeys(COSTS, 0.0) | {"query_overhead": 1e-6, "bandwidth": 1e12,
                                       "private_lines": 0.0, "tlb_misses": 0.0}
    footprint, cache = 2**30, 2**24
    samples = []
    for dim in (32, 256):
        sample = run_of(4, 1024, 64, dim, footprint)
        missed = sample.params["bytes"] * (1 - cache / footprint)
        pool = 1e-6 + terms(sample)[TERMS.index("compute_bytes")] / 1e12
        seconds = missed / 50e9 if overlapped else pool + missed / 50e9
        samples.append(Sample("gather", seconds, sample.params))
    assert fit_memory_bandwidth(samples, fit, cache, overlapped) == pytest.approx(50e9)


def test_entry_hit_share_closed_forms_and_the_engines_lru():
    assert entry_hit_share(1000, 2, 10, 1.0, 4096) == 1.0          # all fits
    assert entry_hit_share(1e6, 4, 1e4, 0.0, 4096) == 1.0          # no walks
    shares = [entry_hit_share(1e6, 4, n, 1.0, 32768) for n in (1e3, 1e4, 1e5)]
    assert 1 > shares[0] > shares[1] > shares[2] > 0
    # the engine's private cache, fed uniform rows of a 1 GiB table through a small TLB
    rng = np.random.default_rng(0)
    row, footprint = 256, 2**30
    cpu = Processor(ComputeConfig(tier="x", tlb={"entries": 16, "ways": 16, "miss_time": 0},
                                  private_cache={"size": 2**20, "ways": 16, "line_time": 0}))
    addresses = rng.integers(0, footprint // row, 400_000) * row
    cpu.serve(np.zeros(addresses.size, dtype=np.int64), addresses, np.full(addresses.size, row))
    simulated = 1 - cpu.walk_misses / cpu.tlb_misses
    expected = entry_hit_share(footprint / row, 4, footprint / 4096 * 8 / 64,
                               cpu.tlb_misses / addresses.size, 2**20 / 64)
    assert simulated == pytest.approx(expected, abs=0.03)


@pytest.mark.parametrize("dims", [(16, 32, 64, 256), (32, 256)])
def test_memory_fit_tells_page_walks_from_bandwidth_given_three_row_sizes(dims):
    structures = Structures(private_bytes=2**20, tlb_entries=512)
    fit = dict.fromkeys(COSTS, 0.0) | {"bandwidth": 1e12, "private_lines": 0.0,
                                       "tlb_misses": 1e-9, "walk_misses": 0.0}
    per_unit = np.array([*(fit[t] for t in COSTS), 1e-12, 0.0, 1e-9, 20e-9, 0.0, 0.0])
    footprint, cache, memory_bw = 2**31, 2**25, 15e9
    samples = []
    for dim in dims:
        sample = run_of(4, 1024, 64, dim, footprint)
        pool = float(terms(sample, structures) @ per_unit)
        fetch = sample.params["bytes"] * (1 - cache / footprint) / memory_bw
        samples.append(Sample("gather", max(pool, fetch), sample.params))
    bandwidth, walk = fit_memory(samples, fit, cache, structures)
    if len(dims) < 3:
        assert walk == 0.0
        assert bandwidth == fit_memory_bandwidth(samples, fit, cache, True, structures)
    else:
        assert walk == pytest.approx(20e-9, rel=0.06)
        assert bandwidth == pytest.approx(memory_bw, rel=0.03)


def test_cache_capacity_fit_finds_the_size_that_explains_the_sweep():
    fit = dict.fromkeys(COSTS, 0.0) | {"bandwidth": 1e12, "private_lines": 0.0,
                                       "tlb_misses": 0.0}
    capacity, memory_bw = 2**24, 40e9
    samples = []
    for footprint in (2**k for k in range(19, 28)):
        sample = run_of(4, 1024, 64, 64, footprint)
        pool = terms(sample)[TERMS.index("compute_bytes")] / 1e12
        missed = sample.params["bytes"] * max(0.0, 1 - capacity / footprint)
        samples.append(Sample("gather_sweep", max(pool, missed / memory_bw), sample.params))
    found = fit_cache_capacity(samples, fit, memory_bw, 2**25)
    assert found == pytest.approx(capacity, rel=0.05)


@pytest.mark.parametrize("machine", ["h100", "h200", "cpu-amd-epyc", "cpu-amd-epyc-tbe"])
def test_committed_preset_round_trips_and_refits_identically(tmp_path, machine):
    path = MEASURED / f"{machine}-2026-11-26-preset.yaml"
    preset = load_machine_preset(path)
    copy = tmp_path / "copy.yaml"
    save_machine_preset(preset, copy)
    assert load_machine_preset(copy) == preset
    assert copy.read_text() == path.read_text()
    committed, refitted = _flat(preset["system"]), _flat(refit(preset)["system"])
    assert {k: refitted[k] for k in committed} == pytest.approx(committed, rel=1e-6)
    # parameters added since the preset was written are zero: its runs cannot fit them
    assert {k: v for k, v in refitted.items() if k not in committed} == dict.fromkeys(
        set(refitted) - set(committed), 0.0)
    runs = preset["microbenchmarks"]
    assert sum(m["name"] == "gather" for m in runs) >= int(np.prod([len(v) for v in
                                                                     GRID.values()]))
    for value in _values(preset["system"]):
        assert isinstance(value["source"], str) and value["source"]


def _flat(node, path=""):
    """Every number of a preset section by its dotted path."""
    if isinstance(node, dict) and set(node) == {"value", "source"}:
        return {path: node["value"]} if isinstance(node["value"], (int, float)) else {}
    if isinstance(node, dict):
        return {k: v for key, child in node.items() for k, v in _flat(child, f"{path}.{key}")
                .items()}
    return {}


def _values(node):
    if isinstance(node, dict):
        if set(node) == {"value", "source"}:
            yield node
        else:
            for child in node.values():
                yield from _values(child)


def test_cpu_calibration_end_to_end_at_small_sizes(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from simulator.grounding.backends import backend_by_name
    from simulator.grounding.calibrate import calibrate

    # a small grid keeps the test quick; the fitting code is the same
    for key, values in {"tables": (1, 2), "batch_size": (8, 64), "pooling": (1, 8),
                        "dim": (16, 64)}.items():
        monkeypatch.setitem(GRID, key, values)
        monkeypatch.setitem(PRIVATE_GRID, key, values)
        monkeypatch.setitem(HALF_GRID, key, values)
    for key, values in {"tables": (1,), "batch_size": (8,), "pooling": (8,),
                        "dim": (12, 20)}.items():
        monkeypatch.setitem(REMAINDER_GRID, key, values)
    monkeypatch.setattr("simulator.grounding.calibrate.TLB_PAGES", (128, 2048))
    # caches of a small machine: the LLC runs (up to 4x the LLC) stay small on any machine
    backend = backend_by_name("torch-cpu")
    monkeypatch.setattr(type(backend), "cache_bytes",
                        lambda self: {"L1": 48 * 2**10, "L2": 2**20, "L3": 4 * 2**20})
    preset = calibrate(backend, memory_footprint=2**24)  # >= 4x LLC
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
        "gather", "gather_sweep", "gather_pages", "sequential_read", "dependent_load_latency"}
    compute = loaded["system"]["compute"]
    vector = loaded["provenance"]["vector_elements"]
    if vector is not None:      # runs of dims 12 and 20, float32 and 16: not whole vectors
        assert compute["vector_elements"]["value"] == vector
        assert compute["remainder_overhead"]["value"] >= 0
        assert compute["half_remainder_overhead"]["value"] >= 0
    assert compute["tlb"]["entries"]["value"] in TLB_ENTRIES
    assert compute["tlb"]["miss_time"]["value"] >= 0
    caches = loaded["provenance"]["caches"]
    if {"L2", "L3"} <= caches.keys():
        assert compute["private_cache"]["size"]["value"] == caches["L2"]
        assert any(m["params"].get("footprint_bytes", 0) <= caches["L2"]
                   for m in loaded["microbenchmarks"] if m["name"] == "gather")


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
    committed = _flat(load_machine_preset(MEASURED / "h100-2026-11-26-preset.yaml")["system"])
    refitted = _flat(load_machine_preset(out)["system"])
    assert {k: refitted[k] for k in committed} == pytest.approx(committed, rel=1e-6)
    assert "l2:" in proc.stdout and "hbm:" in proc.stdout
    proc = embsim("calibrate", "-o", str(tmp_path / "x.yaml"))
    assert proc.returncode == 2 and "exactly one of --backend or --refit" in proc.stderr


def test_rounds_are_pooled_by_median_per_microbenchmark():
    from simulator.grounding.calibrate import pooled_rounds

    def rounds_of(*seconds):
        return [[Sample("gather", t, {"dim": 32}),
                 Sample("sequential_read", 2 * t, {"bytes": 10**9, "gbps": 0.5 / t})]
                for t in seconds]
    pooled = pooled_rounds(rounds_of(1.0, 3.0, 2.0))
    assert [s.seconds for s in pooled] == [2.0, 4.0]
    assert pooled[1].params["gbps"] == pytest.approx(0.25)
    assert pooled[0].params == {"dim": 32, "rounds": 3}
    mismatched = rounds_of(1.0, 2.0)
    mismatched[1][0] = Sample("gather", 1.0, {"dim": 64})
    with pytest.raises(ValueError, match="rounds ran different microbenchmarks"):
        pooled_rounds(mismatched)


def test_zipf_gathers_draw_the_experiments_rows():
    from simulator.grounding.microbench import uniform_batch, zipf_batches
    from traces.generators import synthesize
    from traces.schema import TableSpec

    skewed = zipf_batches(tables=2, rows=50_000, batch_size=64, pooling=16, batches=2,
                          alpha=1.2, seed=7)
    _, stream = synthesize([TableSpec(rows=50_000, dim=64)] * 2, 16, batches=2,
                           batch_size=64, alpha=1.2, seed=7)
    for ours, generated in zip(skewed, stream, strict=True):
        assert np.array_equal(ours.indices, generated.indices)
        assert np.array_equal(ours.offsets, generated.offsets)
    uniform = uniform_batch(np.random.default_rng(7), 2, 50_000, 64, 16)
    assert np.unique(skewed[0].indices).size < 0.8 * np.unique(uniform.indices).size


def test_skewed_gathers_and_host_sweep_run_and_are_recorded():
    pytest.importorskip("torch")
    from simulator.grounding.backends import backend_by_name
    from simulator.grounding.calibrate import ZIPF_ALPHAS, footprint_sweep, skewed_gathers

    backend = backend_by_name("torch-cpu")
    skewed = skewed_gathers(backend, 2**22, "local")
    assert [s.params["alpha"] for s in skewed] == list(ZIPF_ALPHAS)
    assert {s.name for s in skewed} == {"gather_zipf"} and all(s.seconds > 0 for s in skewed)
    sweep = footprint_sweep(backend, 2**20, where="host")
    assert [s.params["footprint_bytes"] for s in sweep] == sorted(
        s.params["footprint_bytes"] for s in sweep)
    assert {s.params["where"] for s in sweep} == {"host"}


@pytest.mark.parametrize("machine", ["h100", "h200"])
def test_gpu_presets_record_host_sweep_and_skewed_runs(machine):
    runs = load_machine_preset(MEASURED / f"{machine}-2026-11-26-preset.yaml")["microbenchmarks"]
    host_sweep = [m for m in runs if m["name"] == "gather_sweep"
                  and m["params"]["where"] == "host"]
    skewed = [m for m in runs if m["name"] == "gather_zipf"]
    assert len(host_sweep) == 9 and len(skewed) == 6
    assert all(m["params"]["rounds"] == 3 for m in host_sweep + skewed)


def page_run(pages, seconds=1.0, batch=1024, pooling=64, dim=16):
    lookups = batch * pooling
    return Sample("gather_pages", seconds, {
        "tables": 1, "batch_size": batch, "pooling": pooling, "dim": dim, "dtype": "float32",
        "bytes": lookups * dim * 4, "footprint_bytes": pages * 4096,
        "rows": pages * 4096 // (dim * 4), "hot_rows": pages, "where": "local"})


def test_terms_of_a_page_gather_count_one_row_per_page():
    within, beyond = page_run(256), page_run(4096)
    lookups = 1024 * 64
    structures = Structures(private_bytes=2**20, tlb_entries=1024)
    near = dict(zip(TERMS, terms(within, structures), strict=True))
    # 256 lines of 64 B fit the private cache and 256 pages the TLB: all near, no misses
    assert near["private_lines"] == lookups and near["tlb_misses"] == 0
    far = dict(zip(TERMS, terms(beyond, structures), strict=True))
    # 4096 lines (256 KiB) still fit the private cache; a 1024-entry TLB holds a quarter
    assert far["private_lines"] == lookups
    assert far["tlb_misses"] == pytest.approx(lookups * (1 - 1024 / 4096))
    # the same table read over all its rows would not fit the private cache
    spread = Sample("gather", 1.0, {k: v for k, v in beyond.params.items() if k != "hot_rows"})
    assert dict(zip(TERMS, terms(spread, structures), strict=True))["private_lines"] < lookups


def test_page_gathers_let_the_fit_see_a_tlb_the_llc_runs_all_fit():
    """LLC runs of 4 MiB fit a 2048-entry TLB's 8 MiB reach: alone they cannot tell its size or
    its miss cost; the page gathers (128 to 32768 pages) can."""
    from simulator.grounding.calibrate import TLB_PAGES

    per_unit = np.array([8e-6, 3e-6, 2e-9, 0.5e-9, 0.02e-9, 60e-9, 1 / 200e9, 0.1e-9, 2e-9,
                         0.0, 0.0, 0.0])
    truth = Structures(private_bytes=2**20, tlb_entries=2048)
    grid = [timed(run_of(t, b, p, d, 2**22, element=e), per_unit, truth)
            for t, b, p, d in itertools.product(*GRID.values()) for e in (4, 2)]
    pages = [timed(page_run(n), per_unit, truth) for n in TLB_PAGES]
    chosen, fitted = best_tlb(grid + pages, 2**20, TLB_ENTRIES)
    assert chosen.tlb_entries == 2048
    assert fitted["tlb_misses"] == pytest.approx(2e-9, rel=1e-6)
    _, blind = best_tlb(grid, 2**20, (512, 2048, 8192))
    assert blind["tlb_misses"] == 0      # no grid run misses a TLB of 2048 or 8192 entries


def test_page_gather_runs_on_the_cpu_and_records_its_hot_rows():
    pytest.importorskip("torch")
    from simulator.grounding.backends import backend_by_name
    from simulator.grounding.microbench import page_gather

    sample = page_gather(backend_by_name("torch-cpu"), pages=64, batch_size=16, pooling=4)
    p = sample.params
    assert sample.name == "gather_pages" and sample.seconds > 0
    assert p["hot_rows"] == 64 and p["rows"] == 64 * 64 and p["footprint_bytes"] == 64 * 4096
    assert p["bytes"] == 16 * 4 * 64


AMD = "cpu-amd-epyc-2026-12-05"


def session_rounds(session: str = AMD) -> list:
    return [MEASURED / f"{session}-rounds" / f"{r}-preset.yaml" for r in (1, 2, 3)]


HALF_SESSIONS = ("cpu-intel-xeon-2026-12-06e", "cpu-intel-xeon-2026-12-06g",
                 "cpu-intel-xeon-2026-12-06h")
"""Committed sessions whose calibration ran float16 rows that are not whole vectors."""


@pytest.mark.parametrize("session", [AMD, "cpu-intel-xeon-2026-12-06b", *HALF_SESSIONS])
def test_an_interleaved_sessions_preset_is_the_refit_of_its_rounds(session):
    """The committed preset is what ``calibrate --refit`` makes of the three committed
    rounds: every microbenchmark at its fastest round (the Xeon sessions' with runs of rows
    that are not whole vectors, and the remainder costs fitted to them)."""
    rounds = [load_machine_preset(path) for path in session_rounds(session)]
    pooled = refit(*rounds)
    committed = load_machine_preset(MEASURED / f"{session}-preset.yaml")
    assert _flat(pooled["system"]) == pytest.approx(_flat(committed["system"]), rel=1e-9)
    fastest = [min(r["microbenchmarks"][i]["seconds"] for r in rounds)
               for i in range(len(rounds[0]["microbenchmarks"]))]
    assert [m["seconds"] for m in pooled["microbenchmarks"]] == fastest
    assert pooled["provenance"]["rounds"] == 3
    assert len(pooled["provenance"]["pooled_dates"]) == 3
    remainder = "remainder_overhead" in committed["system"]["compute"]
    assert remainder == (committed["provenance"].get("vector_elements") is not None)
    half = "half_remainder_overhead" in committed["system"]["compute"]
    assert half == (session in HALF_SESSIONS)


def test_refit_pools_only_one_machines_rounds(tmp_path):
    from conftest import embsim, write_yaml

    other = load_machine_preset(session_rounds()[1])
    other["provenance"]["device"] = "Another CPU"
    write_yaml(tmp_path / "other.yaml", other)
    out = tmp_path / "out.yaml"
    proc = embsim("calibrate", "--refit", str(session_rounds()[0]), "--refit",
                  str(tmp_path / "other.yaml"), "-o", str(out))
    assert proc.returncode == 2 and "different machines" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    fewer = load_machine_preset(session_rounds()[1])
    fewer["microbenchmarks"] = fewer["microbenchmarks"][:-1]
    write_yaml(tmp_path / "fewer.yaml", fewer)
    proc = embsim("calibrate", "--refit", str(session_rounds()[0]), "--refit",
                  str(tmp_path / "fewer.yaml"), "-o", str(out))
    assert proc.returncode == 2 and "--refit" in proc.stderr and not out.exists()
