"""The dense stage (docs/dense.md): the roofline per layer, the bottom MLP overlapping the
embeddings, the results' columns, model presets, bad input, and its grounding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, embsim_here, experiment, reduced, write_yaml

from hwmodels.dense import DenseSpec, compute_time, interaction, linear, mlp, roofline_time
from simulator.core.metrics import metric_columns
from simulator.runs.experiment import load_points, run_point
from traces.models import model_preset

PEAK = 1e9                  # FLOP/s
OVERHEAD = 1e-6             # per layer
ENGINE = {"peak_flops": PEAK, "layer_overhead": "1 us", "cache": "1 GiB"}


SMALL = {"workload__generator__tables": [{"rows": 1000, "dim": 8}, {"rows": 1000, "dim": 8}],
         "workload__generator__batch_size": 4, "workload__generator__batches": 3,
         "run__arrivals__concurrency": 1, "run__fidelity": "analytic",
         "system__memory__dram__latency": "20 us"}
"""Two tables of dim 8, one query in flight, analytic memory (closed forms), a slow DRAM
(the embeddings take tens of microseconds)."""


def _run(tmp_path, data, name="dense.yaml") -> dict:
    path = write_yaml(tmp_path / name, data)
    _, points = load_points(path, {})
    return run_point(points[0], str(path)).row


def _dense_experiment(bottom=(16, 8), top=(4, 1), kind="cat", engine=ENGINE, **overrides):
    data = experiment(**{**SMALL, **overrides})
    data["system"]["dense"] = {"bottom_mlp": list(bottom), "top_mlp": list(top),
                               "interaction": kind, "params": dict(engine)}
    return data


def _top_time(batch=4, dims=(8, 8), bottom=(16, 8), top=(4, 1), kind="cat") -> float:
    spec = DenseSpec(peak_flops=PEAK, layer_overhead=OVERHEAD)
    joined, width = interaction(kind, batch, bottom[-1], list(dims), 4)
    layers = [joined, *mlp("top", batch, [width, *top], 4)]
    return sum(roofline_time(layer, spec, 0.0) for layer in layers)


def _bottom_time(batch=4, bottom=(16, 8)) -> float:
    spec = DenseSpec(peak_flops=PEAK, layer_overhead=OVERHEAD)
    return sum(roofline_time(layer, spec, 0.0) for layer in mlp("b", batch, list(bottom), 4))


# --- the roofline, closed form ---------------------------------------------------------------

def test_compute_bound_layer_takes_its_flops_at_the_peak():
    spec = DenseSpec(peak_flops=2e9, layer_overhead=3e-6)
    layer = linear("l", 64, 256, 128, 4)
    assert layer.flops == 2 * 64 * 256 * 128
    assert layer.weight_bytes == (256 * 128 + 128) * 4
    assert layer.in_bytes == 64 * 256 * 4 and layer.out_bytes == 64 * 128 * 4
    memory_s = layer.footprint / 100e9                      # a fast memory: compute-bound
    assert roofline_time(layer, spec, memory_s) == pytest.approx(2 * 64 * 256 * 128 / 2e9
                                                                 + 3e-6)


def test_memory_bound_layer_takes_its_bytes_at_the_memory_speed():
    spec = DenseSpec(peak_flops=1e12, layer_overhead=2e-6)
    layer = linear("l", 1, 1024, 1024, 2)                  # a GEMV of fp16 weights
    memory_s = layer.footprint / 10e9
    assert compute_time(layer, spec) < memory_s
    assert roofline_time(layer, spec, memory_s) == pytest.approx(
        ((1024 * 1024 + 1024) * 2 + 1024 * 2 + 1024 * 2) / 10e9 + 2e-6)


def test_small_batches_get_a_share_of_the_peak():
    spec = DenseSpec(peak_flops=1e9, half_batch=8)
    assert compute_time(linear("l", 8, 10, 10, 4), spec) == pytest.approx(2 * 8 * 100 / 0.5e9)


def test_interactions_output_widths():
    joined, width = interaction("dot", 2, 128, [128] * 26, 4)
    assert width == 479                                     # MLPerf DLRM's top MLP input
    assert joined.flops == 2 * 2 * 27 * 27 * 128
    _, width = interaction("cat", 2, 32, [32] * 8, 4)
    assert width == 288                                     # rm1: 9 vectors of 32


def test_a_layer_through_the_weights_tier_matches_the_analytic_memory(tmp_path):
    """cache 0: every layer's bytes go through the analytic DRAM (20 us + bytes / 300 GB/s);
    one bottom layer that is memory-bound and no top work to speak of."""
    engine = {"peak_flops": 1e15, "layer_overhead": "1 us"}
    data = _dense_experiment(bottom=(1024, 8), top=(1,), engine=engine)
    data["system"]["dense"]["tier"] = "dram"
    data["system"]["memory"]["dram"]["link"] = "direct"     # on the host's own memory bus
    row = _run(tmp_path, data)
    bottom = linear("b", 4, 1024, 8, 4)
    joined, width = interaction("cat", 4, 8, [8, 8], 4)
    top = linear("t", 4, width, 1, 4)

    def through_dram(layer):
        sizes = [s for s in (layer.weight_bytes, layer.in_bytes, layer.out_bytes) if s]
        moved = sum(-(-s // 64) * 64 for s in sizes)       # whole 64 B units, aligned
        return 20e-6 + moved / 300e9 + 1e-6

    expected = sum(through_dram(layer) for layer in (bottom, joined, top))
    assert row["latency_dense_p50_us"] == pytest.approx(expected * 1e6, rel=1e-6)


# --- overlap with the embeddings --------------------------------------------------------------

def test_bottom_mlp_hides_behind_slower_embeddings(tmp_path):
    plain = _run(tmp_path, experiment(**SMALL), "plain.yaml")
    row = _run(tmp_path, _dense_experiment())
    embedding = row["latency_embedding_mean_us"]
    assert _bottom_time() * 1e6 < embedding                 # the bottom MLP is the shorter
    assert embedding == pytest.approx(plain["latency_mean_us"])   # embeddings unchanged
    assert row["latency_mean_us"] == pytest.approx(embedding + _top_time() * 1e6)
    assert row["latency_dense_mean_us"] == pytest.approx((_bottom_time() + _top_time()) * 1e6)
    assert row["share_embedding"] + row["share_dense"] == pytest.approx(1.0)
    assert row["share_embedding"] == pytest.approx(embedding / row["latency_mean_us"])
    # the compute counts the bottom MLP in full though it hid behind the embeddings
    assert row["compute_s_total"] == pytest.approx(
        plain["compute_s_total"] + row["queries"] * (_bottom_time() + _top_time()))


def test_a_longer_bottom_mlp_sets_the_latency(tmp_path):
    slow = {**ENGINE, "peak_flops": 1e6}                    # 1 MFLOP/s: milliseconds a layer
    row = _run(tmp_path, _dense_experiment(engine=slow))
    spec = DenseSpec(peak_flops=1e6, layer_overhead=OVERHEAD)
    bottom = sum(roofline_time(layer, spec, 0.0) for layer in mlp("b", 4, [16, 8], 4))
    joined, width = interaction("cat", 4, 8, [8, 8], 4)
    top = sum(roofline_time(layer, spec, 0.0)
              for layer in [joined, *mlp("t", 4, [width, 4, 1], 4)])
    assert bottom * 1e6 > row["latency_embedding_mean_us"]
    assert row["latency_p50_us"] == pytest.approx((bottom + top) * 1e6)
    assert row["share_dense"] > 0.9


def test_queries_take_turns_on_the_dense_engine(tmp_path):
    slow = {**ENGINE, "peak_flops": 1e6}
    one = _run(tmp_path, _dense_experiment(engine=slow), "one.yaml")
    two = _run(tmp_path, _dense_experiment(engine=slow, run__arrivals__concurrency=2),
               "two.yaml")
    assert two["throughput_qps"] == pytest.approx(one["throughput_qps"], rel=0.05)
    assert two["latency_p50_us"] > 1.5 * one["latency_p50_us"]


# --- no dense section: nothing changes ------------------------------------------------------

def test_a_system_without_dense_has_no_dense_columns(tmp_path):
    row = _run(tmp_path, experiment())
    assert not any(k.startswith(("latency_dense", "share_")) for k in row)
    from simulator.core.config import parse_experiment
    from simulator.core.system import build_system
    from simulator.core.workload import open_workload

    exp = parse_experiment(_dense_experiment(), "x")
    meta, _ = open_workload(exp.workload, "x")
    columns = metric_columns(build_system(exp, meta, "x"))
    assert {"latency_dense_p99_us", "share_embedding", "share_dense"} <= columns


# --- presets -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "bottom", "top", "kind"), [
    ("rm1", [128, 64, 32], [256, 64, 1], "cat"),
    ("rm2", [256, 128, 64], [128, 64, 1], "cat"),
    ("rm3", [2560, 1024, 256, 32], [512, 256, 1], "cat"),
    ("mlperf-dlrm", [13, 512, 256, 128], [1024, 1024, 512, 256, 1], "dot"),
])
def test_model_presets_give_dlrm_dense_shapes(name, bottom, top, kind):
    dense = model_preset(name).dense
    assert (dense.bottom_mlp, dense.top_mlp, dense.interaction) == (bottom, top, kind)
    assert "github.com" in dense.source


def test_mlperf_preset_has_the_criteo_terabyte_tables():
    preset = model_preset("mlperf-dlrm")
    rows = [t.rows for t in preset.tables]
    assert rows == [39884406, 39043, 17289, 7420, 20263, 3, 7120, 1543, 63, 38532951, 2953546,
                    403346, 10, 2208, 11938, 155, 4, 976, 14, 39979771, 25641295, 39664984,
                    585935, 12972, 108, 36]                  # MLCommons' ln_emb
    assert {t.dim for t in preset.tables} == {128}
    assert set(preset.pooling) == {1}


def test_model_shorthand_runs_the_models_layers(tmp_path):
    data = experiment(**{"workload__generator": {"model": "rm2", "rows": 1000, "batches": 2,
                                                 "batch_size": 4, "seed": 1},
                         "run__arrivals__concurrency": 1})
    data["system"]["dense"] = {"model": "rm2", "params": ENGINE}
    row = _run(tmp_path, data)
    spec = DenseSpec(peak_flops=PEAK, layer_overhead=OVERHEAD)
    joined, width = interaction("cat", 4, 64, [64] * 32, 4)
    assert width == 64 * 33
    layers = [*mlp("b", 4, [256, 128, 64], 4), joined, *mlp("t", 4, [width, 128, 64, 1], 4)]
    expected = sum(roofline_time(layer, spec, 0.0) for layer in layers)
    assert row["latency_dense_p50_us"] == pytest.approx(expected * 1e6)


# --- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize(("dense", "field"), [
    ({"params": ENGINE}, "system.dense"),                                  # no shapes
    ({"model": "rm1"}, "system.dense"),                                    # no engine
    ({"model": "rm1", "params": ENGINE, "bogus": 1}, "system.dense.bogus"),
    ({"model": "rm9", "params": ENGINE}, "system.dense.model"),
    ({"model": "rm1", "params": {"peak_flops": 0}}, "system.dense.peak_flops"),
    ({"model": "rm1", "preset": "nope", "params": {}}, "system.dense.preset"),
    ({"model": "rm1", "params": ENGINE, "tier": "ssd"}, "system.dense.tier"),
    ({"model": "rm1", "params": ENGINE, "tier": "dram"}, "system.dense.tier"),   # over PCIe
    ({"model": "rm1", "params": ENGINE, "interaction": "dot"}, "system.dense.bottom_mlp"),
    ({"bottom_mlp": [4], "top_mlp": [1], "params": ENGINE}, "system.dense.bottom_mlp"),
])
def test_bad_dense_sections_exit_2_naming_the_field(tmp_path, dense, field):
    data = experiment()
    data["system"]["dense"] = dense
    path = write_yaml(tmp_path / "bad.yaml", data)
    proc = embsim_here("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert str(path) in proc.stderr and field in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_dense_weights_may_not_reach_the_cache_slots_below_them(tmp_path):
    """rm3's MLPs (about 12 MB) fit a 16 MiB HBM alone, not beside an 8 MiB row cache."""
    data = experiment(system__memory__hbm__capacity="16 MiB", system__cache__size="8 MiB")
    data["system"]["dense"] = {"model": "rm3", "params": ENGINE}
    path = write_yaml(tmp_path / "bad.yaml", data)
    proc = embsim_here("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "system.dense.tier" in proc.stderr and "left after the tables" in proc.stderr
    data["system"]["cache"]["size"] = "1 MiB"                  # with a smaller cache it fits
    path = write_yaml(tmp_path / "good.yaml", data)
    assert embsim_here("run", str(path), "--out", str(tmp_path / "out"), "--set",
                       "workload.generator.batches=1").returncode == 0


def test_training_with_a_dense_stage_is_refused(tmp_path):
    data = _dense_experiment(run__mode="training")
    path = write_yaml(tmp_path / "bad.yaml", data)
    proc = embsim_here("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "system.dense" in proc.stderr


# --- grounding -------------------------------------------------------------------------------

def test_engine_fit_recovers_a_known_roofline():
    from simulator.grounding.dense import fit_engine

    truth = DenseSpec(peak_flops=80e9, cache_bandwidth=20e9, layer_overhead=5e-6, half_batch=6)
    runs = []
    for width in (64, 256, 1024, 2048):
        for batch in (1, 4, 32, 256):
            layer = linear("l", batch, width, width, 4)
            memory = layer.footprint / truth.cache_bandwidth
            runs.append({"seconds": roofline_time(layer, truth, memory),
                         "params": {"flops": layer.flops, "bytes": layer.footprint,
                                    "batch": batch}})
    fitted, mape = fit_engine(runs)
    assert mape < 0.5
    assert fitted["peak_flops"] == pytest.approx(80e9, rel=0.02)
    assert fitted["cache_bandwidth"] == pytest.approx(20e9, rel=0.02)
    assert fitted["layer_overhead"] == pytest.approx(5e-6, rel=0.05)
    assert fitted["half_batch"] == pytest.approx(6, rel=0.05)


def test_measure_and_validate_dense_on_this_cpu(tmp_path):
    pytest.importorskip("torch")
    data = _dense_experiment(bottom=(16, 8), top=(8, 1))
    data["system"]["dense"] = {"bottom_mlp": [16, 8], "top_mlp": [8, 1], "interaction": "dot",
                               "preset": "cpu-xeon-1t"}
    path = write_yaml(tmp_path / "v.yaml", data)
    out = tmp_path / "m.parquet"
    proc = embsim_here("measure", str(path), "--backend", "torch-cpu", "--stage", "dense",
                       "--repeats", "3", "--warmup", "1", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    measured = pd.read_parquet(out)
    assert (measured["metric"] == "latency_dense_p50_us").all()
    assert (measured["time_per_batch_us"] > 0).all()
    proc = embsim_here("validate", str(path), "--measurements", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"points": 1' in proc.stdout


def test_validation_dense_reproduces_its_committed_mape():
    """The committed comparison recomputes from the committed measurement and preset."""
    from simulator.grounding.validate import validate

    base = ROOT / "experiments" / "measurements" / "dense-cpu-intel-xeon-2026-12-04"
    result = validate(ROOT / "experiments" / "validation_dense.yaml",
                      base.with_suffix(".parquet"), base.with_suffix(".yaml"), {})
    committed = pd.read_parquet(base.with_suffix(".validation.parquet"))
    assert result.summary["points"] == 16
    assert np.allclose(result.frame["predicted_us"], committed["predicted_us"], rtol=1e-6)
    assert result.summary["mape"] <= 15.0


# --- the shipped experiment, reduced ---------------------------------------------------------

def test_end_to_end_reduced(tmp_path):
    def shrink(data):
        data["workload"]["generator"].update(rows=20000, batches=3)
        data["sweep"]["grid"] = {"workload.generator.batch_size": [1, 32]}
        data["plots"] = data["plots"][:1]

    frame, out = reduced("end_to_end", tmp_path, shrink)
    assert (frame["status"] == "ok").all() and len(frame) == 18
    assert (out / "end_to_end_rm1.png").read_bytes().startswith(b"\x89PNG")
    assert ((frame["share_dense"] >= 0) & (frame["share_dense"] <= 1)).all()
    assert (frame["latency_p50_us"] >= frame["latency_dense_p50_us"] - 1e-6).all()
    by = frame.set_index(["case", "workload.generator.model", "workload.generator.batch_size"])
    # rm3's MLPs dominate on the CPU; rm2's embeddings do
    assert by.loc[("cpu", "rm3", 32), "share_dense"] > by.loc[("cpu", "rm2", 32), "share_dense"]
    # near-memory pooling helps rm2's embeddings, not rm3's dense-bound latency much
    assert by.loc[("nmp", "rm2", 32), "latency_p50_us"] < by.loc[("cpu", "rm2", 32),
                                                                 "latency_p50_us"]


def test_committed_presets_refit_to_their_own_values():
    """The measured preset is its recorded microbenchmarks' fit; the shipped copy equals it."""
    import yaml

    from hwmodels.presets import resolve
    from simulator.grounding.dense import refit_dense

    path = ROOT / "experiments" / "measurements" / "dense-cpu-intel-xeon-2026-12-04.yaml"
    preset = yaml.safe_load(path.read_text())
    refitted = refit_dense(preset, preset["name"])
    for key, entry in preset["params"].items():
        assert refitted["params"][key]["value"] == pytest.approx(entry["value"], rel=1e-6), key
    shipped, sources = resolve("dense", "cpu-xeon-1t", {})
    assert shipped.peak_flops == preset["params"]["peak_flops"]["value"]
    assert all(path.name in source for source in sources.values())


def test_more_engines_let_queries_run_their_layers_at_once(tmp_path):
    slow = {**ENGINE, "peak_flops": 1e6, "engines": 2}
    one = _run(tmp_path, _dense_experiment(engine=slow, workload__generator__batches=4),
               "one.yaml")
    two = _run(tmp_path, _dense_experiment(engine=slow, workload__generator__batches=4,
                                           run__arrivals__concurrency=2), "two.yaml")
    assert two["throughput_qps"] == pytest.approx(2 * one["throughput_qps"], rel=0.05)
    assert two["latency_p50_us"] == pytest.approx(one["latency_p50_us"], rel=0.05)


# --- grounding on a GPU (torch-cuda), exercised on this CPU ----------------------------------

class _FakeGPU:
    """What ``dense_device`` takes from the torch-cuda backend, on the CPU: a device, its name
    and L2, a counting ``synchronize`` and the backend's provenance."""

    def __init__(self, kernel="embedding_bag"):
        import torch

        self.device = torch.device("cpu")
        self.syncs = 0

    def device_name(self):
        return "Fake GPU"

    def cache_bytes(self):
        return {"L2": 60 * 2**20}

    def synchronize(self):
        self.syncs += 1

    def provenance(self):
        return {"backend": "torch-cuda", "cuda": "12.8", "multiprocessors": 132,
                "memory_bytes": 141 * 2**30, "numpy": "x"}


@pytest.fixture
def fake_gpu(monkeypatch):
    """``--backend torch-cuda`` runs on the CPU through ``_FakeGPU``, over a small grid."""
    pytest.importorskip("torch")
    from simulator.grounding import backends, dense

    made = []

    def by_name(name, kernel="embedding_bag"):
        assert name == "torch-cuda"
        made.append(_FakeGPU(kernel))
        return made[-1]

    monkeypatch.setattr(backends, "backend_by_name", by_name)
    monkeypatch.setattr(dense, "CUDA_GEMM_GRID", {"width": (16, 32), "batch": (1, 4, 64)})
    monkeypatch.setattr(dense, "CUDA_MAX_LAYER_MACS", 16 * 16 * 64)   # (32, 64) is left out
    return made


def test_the_cpu_path_keeps_its_grid_threads_and_provenance_keys():
    pytest.importorskip("torch")
    from simulator.grounding.dense import GEMM_GRID, dense_device, provenance

    device = dense_device("torch-cpu")
    assert str(device.device) == "cpu" and device.dtypes == ("float32",)
    assert [(w, b) for w in device.grid["width"] for b in device.batches(w)] == [
        (w, b) for w in GEMM_GRID["width"] for b in GEMM_GRID["batch"]]     # 25, as before
    meta = provenance("dense", device, rounds=1)
    assert list(meta) == ["backend", "kernel", "device", "date", "host", "machine", "torch",
                          "torch_threads", "caches", "rounds"]
    assert meta["backend"] == "torch-cpu" and meta["torch_threads"] == 1


def test_the_timer_synchronizes_inside_each_timed_call():
    """The timed interval holds the call and the device's synchronize (a GPU's launches return
    before the work is done): one synchronize per call, warm-up calls included."""
    pytest.importorskip("torch")
    import dataclasses
    import time

    from simulator.grounding.dense import dense_device

    syncs = []

    def slow_sync():
        syncs.append(1)
        time.sleep(0.002)

    device = dataclasses.replace(dense_device("torch-cpu"), synchronize=slow_sync)
    seconds = device.median_time(lambda: None, warmup=2, repeats=3, rounds=2)
    assert len(syncs) == 2 + 3 * 2
    assert seconds >= 0.002


def test_the_cuda_grid_reaches_past_the_cpu_grid_within_a_few_ms_a_call():
    from hwmodels.dense import DenseSpec
    from simulator.grounding.dense import (
        CUDA_GEMM_GRID,
        CUDA_MAX_LAYER_MACS,
        DEPTH,
        GEMM_GRID,
        DenseDevice,
    )

    cpu = DenseDevice("torch-cpu", None, None, "", {}, lambda: None, ("float32",), GEMM_GRID)
    gpu = DenseDevice("torch-cuda", None, None, "", {}, lambda: None, ("float32",), CUDA_GEMM_GRID,
                      CUDA_MAX_LAYER_MACS)
    shapes = {name: [(w, b) for w in d.grid["width"] for b in d.batches(w)]
              for name, d in (("cpu", cpu), ("gpu", gpu))}
    assert len(shapes["gpu"]) > len(shapes["cpu"])
    assert max(w for w, _ in shapes["gpu"]) == 8192 and max(b for _, b in shapes["gpu"]) == 8192
    assert (8192, 8192) not in shapes["gpu"]                # 3.3 TFLOP: too long a call
    # an H200 at FP32 (no TF32), HBM and an assumed launch cost: each call at most a few ms,
    # the whole calibration at 3 rounds (3 warm-up + 3 x 15 timed calls a shape) well in 40 s
    h200 = DenseSpec(peak_flops=50e12, cache_bandwidth=3e12, layer_overhead=10e-6)
    calls = [DEPTH * roofline_time(linear("l", b, w, w, 4), h200,
                                   linear("l", b, w, w, 4).footprint / 3e12)
             for w, b in shapes["gpu"]]
    assert max(calls) < 5e-3
    assert sum(calls) * (3 + 3 * 15) < 10


def test_calibrate_on_torch_cuda_records_the_gpu(fake_gpu, tmp_path):
    import yaml

    out = tmp_path / "gpu.yaml"
    proc = embsim_here("calibrate", "--backend", "torch-cuda", "--stage", "dense",
                       "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    preset = yaml.safe_load(out.read_text())
    meta = preset["provenance"]
    assert meta["backend"] == "torch-cuda" and meta["device"] == "Fake GPU"
    assert meta["cuda"] == "12.8" and meta["caches"] == {"L2": 60 * 2**20}
    assert {"torch", "torch_threads", "host", "date", "machine", "tf32"} <= set(meta)
    assert preset["params"]["cache"]["value"] == 60 * 2**20
    assert "L2" in preset["params"]["cache"]["source"]
    assert "CUDA 12.8" in preset["params"]["peak_flops"]["source"]
    shapes = [(r["params"]["n_in"], r["params"]["batch"]) for r in preset["microbenchmarks"]]
    assert shapes == [(16, 1), (16, 4), (16, 64), (32, 1), (32, 4)]
    # warm-up and timed calls, each followed by the GPU's synchronize
    assert fake_gpu[0].syncs == len(shapes) * (3 + 15)


def test_measure_on_torch_cuda_runs_the_dtype_of_system_dense(fake_gpu, tmp_path):
    """float16/bfloat16 run on a GPU (modules and inputs cast); the CPU refuses them."""
    data = _dense_experiment(bottom=(16, 8), top=(8, 1))
    data["system"]["dense"] = {"bottom_mlp": [16, 8], "top_mlp": [8, 1], "interaction": "dot",
                               "preset": "cpu-xeon-1t", "dtype": "bfloat16"}
    path = write_yaml(tmp_path / "v.yaml", data)
    out = tmp_path / "m.parquet"
    args = ("measure", str(path), "--stage", "dense", "--repeats", "2", "--warmup", "1",
            "-o", str(out))
    proc = embsim_here(*args, "--backend", "torch-cuda")
    assert proc.returncode == 0, proc.stderr
    measured = pd.read_parquet(out)
    assert (measured["backend"] == "torch-cuda").all() and (measured["device"] == "Fake GPU").all()
    assert fake_gpu[0].syncs == 1 + 2
    proc = embsim_here(*args, "--backend", "torch-cpu")
    assert proc.returncode == 2
    assert "system.dense.dtype" in proc.stderr and "runs float32" in proc.stderr


def test_torch_forward_casts_modules_and_inputs_to_the_dtype():
    torch = pytest.importorskip("torch")
    from simulator.grounding.dense import torch_forward

    out = torch_forward([13, 8], [8, 1], "dot", 4, [8, 8], dtype="bfloat16")()
    assert out.dtype == torch.bfloat16 and out.shape == (4, 1)


@pytest.mark.parametrize("command", ["calibrate", "measure"])
def test_torch_cuda_without_a_gpu_exits_2_naming_the_backend(tmp_path, command):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / ("gpu.yaml" if command == "calibrate" else "gpu.parquet")
    args = [command, "--backend", "torch-cuda", "--stage", "dense", "-o", str(out)]
    if command == "measure":
        args.insert(1, str(ROOT / "experiments" / "validation_dense.yaml"))
    proc = embsim_here(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("embsim: error: --backend: ") and "Traceback" not in proc.stderr
    assert "torch.cuda.is_available() is False" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_dense_refuses_a_backend_without_dense_layers(tmp_path):
    proc = embsim_here("measure", str(ROOT / "experiments" / "validation_dense.yaml"),
                       "--backend", "fhe-cpu", "--stage", "dense", "-o", str(tmp_path / "m"))
    assert proc.returncode == 2
    assert "--backend" in proc.stderr and "torch-cpu or torch-cuda" in proc.stderr
