"""Reference backends: bookkeeping equals the simulator's; CPU measurement end to end."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import ROOT, embsim, experiment, write_yaml

from simulator.grounding.measure import read_provenance
from simulator.runs.experiment import load_points, run_point

pytest.importorskip("torch")


def local_tables_experiment(tmp_path):
    # no cache, tables in the compute tier: every lookup reads its row from that tier once
    data = experiment(system__cache=None, system__tables={"tier": "hbm"})
    data["workload"]["generator"].update(batches=3, batch_size=8)
    data["sweep"] = {"grid": {"workload.generator.pooling": [1, 6]}}
    return write_yaml(tmp_path / "exp.yaml", data)


def test_measure_cpu_end_to_end_and_bookkeeping_matches_the_simulator(tmp_path):
    path = local_tables_experiment(tmp_path)
    out = tmp_path / "m.parquet"
    proc = embsim("measure", str(path), "--backend", "torch-cpu", "-o", str(out),
                  "--repeats", "2", "--warmup", "1", "--rounds", "2", "--no-flush")
    assert proc.returncode == 0, proc.stderr
    measured = pd.read_parquet(out)
    for column in ["point", "workload.generator.pooling", "config_hash", "time_per_batch_us",
                   "time_per_batch_min_us", "time_per_batch_max_us", "effective_bw_gbps",
                   "lookups_per_s", "device", "backend", "date", "host", "torch"]:
        assert column in measured.columns, column
    assert (measured["time_per_batch_min_us"] <= measured["time_per_batch_us"]).all()
    # the generator gives every batch the same size, so the medians relate exactly
    seconds = measured["time_per_batch_us"] * 1e-6
    assert measured["lookups_per_s"].to_numpy() == pytest.approx(
        (measured["lookups_per_batch"] / seconds).to_numpy())
    assert measured["effective_bw_gbps"].to_numpy() == pytest.approx(
        (measured["bytes_per_batch"] / seconds / 1e9).to_numpy())
    assert (measured["time_per_batch_us"] <= measured["time_per_batch_max_us"]).all()
    provenance = read_provenance(out)
    assert provenance["backend"] == "torch-cpu" and provenance["repeats"] == 2
    assert provenance["rounds"] == 2 and not provenance["flush"]
    assert (measured["rounds"] == 2).all() and not measured["flush"].any()
    _, points = load_points(path, {})
    for point, (_, row) in zip(points, measured.iterrows(), strict=True):
        assert row["config_hash"] == point.config_hash
        simulated = run_point(point, str(path)).row
        assert row["lookups_per_batch"] * row["batches"] == simulated["lookups"]
        # rows of 64 B and 128 B are whole 32 B sectors: bytes read = lookups x row bytes
        assert row["bytes_per_batch"] * row["batches"] == simulated["bytes_read_hbm"]


def test_cuda_backend_without_a_gpu_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = local_tables_experiment(tmp_path)
    proc = embsim("measure", str(path), "--backend", "torch-cuda", "-o",
                  str(tmp_path / "m.parquet"))
    assert proc.returncode == 2
    assert "torch.cuda.is_available() is False" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "m.parquet").exists()


def test_passes_of_every_round_are_pooled(tmp_path):
    from simulator.grounding.backends import backend_by_name
    from simulator.grounding.measure import MeasureSettings, point_row, time_point

    path = local_tables_experiment(tmp_path)
    _, points = load_points(path, {})
    settings = MeasureSettings(warmup=0, repeats=3, rounds=2)
    backend, kept = backend_by_name("torch-cpu"), {}
    times = time_point(backend, points[0], str(path), settings, kept)
    times = time_point(backend, points[0], str(path), settings, kept, times)
    assert len(times.passes) == 6 and all(p.shape == (3,) for p in times.passes)
    row = point_row(points[0], settings, times)
    passes = pd.DataFrame(times.passes)
    assert row["time_per_batch_us"] == pytest.approx(passes.median().median() * 1e6)
    assert row["time_per_batch_min_us"] == pytest.approx(passes.min().min() * 1e6)


def tbe_backend():
    from embsim.errors import InputError
    from simulator.grounding.backends import backend_by_name

    try:
        return backend_by_name("torch-cpu", "tbe")
    except InputError as err:
        pytest.skip(f"FBGEMM is not usable here: {err}")


@pytest.mark.parametrize(("mode", "dtype"), [("sum", "float32"), ("mean", "float32"),
                                             ("sum", "float16")])
def test_tbe_kernel_pools_every_table_as_embedding_bag_does(mode, dtype):
    import numpy as np
    import torch

    from simulator.grounding.backends import backend_by_name
    from simulator.grounding.microbench import uniform_batch

    tbe, plain = tbe_backend(), backend_by_name("torch-cpu")
    tables = [plain.random_table(500, dim, dtype, "local", seed) for seed, dim in
              ((1, 16), (2, 24), (3, 8))]
    batch = uniform_batch(np.random.default_rng(0), 3, 500, 16, 5)
    expected = torch.cat([t.float() for t in plain.pooled_batch(tables, batch, mode)()], 1)
    got = tbe.pooled_batch(tables, batch, mode)()
    assert got.shape == (16, 16 + 24 + 8)
    assert torch.allclose(got.float(), expected, rtol=1e-2 if dtype == "float16" else 1e-5,
                          atol=1e-2 if dtype == "float16" else 1e-5)


def test_measure_with_the_tbe_kernel_end_to_end(tmp_path):
    tbe_backend()
    path = local_tables_experiment(tmp_path)
    out = tmp_path / "tbe.parquet"
    proc = embsim("measure", str(path), "--backend", "torch-cpu", "--kernel", "tbe", "-o",
                  str(out), "--repeats", "2", "--warmup", "1")
    assert proc.returncode == 0, proc.stderr
    measured = pd.read_parquet(out)
    assert (measured["kernel"] == "tbe").all() and (measured["time_per_batch_us"] > 0).all()
    provenance = read_provenance(out)
    assert provenance["kernel"] == "tbe" and provenance["fbgemm_gpu"]
    _, points = load_points(path, {})
    for point, (_, row) in zip(points, measured.iterrows(), strict=True):
        simulated = run_point(point, str(path)).row
        assert row["lookups_per_batch"] * row["batches"] == simulated["lookups"]


def test_tbe_kernel_without_fbgemm_is_a_clear_error(monkeypatch):
    import sys

    from embsim.errors import InputError
    from simulator.grounding.backends import backend_by_name

    monkeypatch.setitem(sys.modules, "fbgemm_gpu", None)    # import fails as if absent
    with pytest.raises(InputError, match="--kernel tbe needs FBGEMM.*fbgemm-gpu-cpu") as err:
        backend_by_name("torch-cpu", "tbe")
    assert err.value.field == "--kernel"


AMD = ROOT / "experiments" / "measurements" / "cpu-amd-epyc-2026-12-05"
DESIGN = ROOT / "experiments" / "validation_cpu.yaml"


def test_measure_pool_keeps_each_points_fastest_round(tmp_path):
    rounds = [AMD.parent / f"{AMD.name}-rounds" / f"{r}.parquet" for r in (1, 2, 3)]
    out = tmp_path / "pooled.parquet"
    args = [a for path in rounds for a in ("--pool", str(path))]
    proc = embsim("measure", str(DESIGN), *args, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "the fastest of 3 rounds" in proc.stdout
    pooled, frames = pd.read_parquet(out), [pd.read_parquet(p) for p in rounds]
    times = pd.concat([f["time_per_batch_us"] for f in frames], axis=1)
    assert pooled["time_per_batch_us"].tolist() == times.min(axis=1).tolist()
    assert pooled["round_spread"].to_numpy() == pytest.approx(
        (times.max(axis=1) / times.min(axis=1)).to_numpy())
    assert (pooled["rounds"] == 3).all() and read_provenance(out)["rounds"] == 3
    committed = pd.read_parquet(AMD.parent / f"{AMD.name}.parquet")
    assert pooled["time_per_batch_us"].tolist() == committed["time_per_batch_us"].tolist()


def test_measure_pool_refuses_files_of_another_experiment(tmp_path):
    out = tmp_path / "pooled.parquet"
    test_round = AMD.parent / f"{AMD.name}-rounds" / "1-test.parquet"
    proc = embsim("measure", str(DESIGN), "--pool", str(test_round), "-o", str(out))
    assert proc.returncode == 2 and "--pool" in proc.stderr and str(test_round) in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    proc = embsim("measure", str(DESIGN), "--backend", "torch-cpu", "--pool", str(test_round),
                  "-o", str(out))
    assert proc.returncode == 2 and "exactly one of --backend" in proc.stderr
    proc = embsim("measure", str(DESIGN), "-o", str(out))
    assert proc.returncode == 2 and "exactly one of --backend" in proc.stderr
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("not parquet")
    proc = embsim("measure", str(DESIGN), "--pool", str(garbage), "-o", str(out))
    assert proc.returncode == 2 and "--pool: not a readable Parquet file" in proc.stderr
    assert not out.exists()


def test_the_cpu_backend_fixes_the_allocator_and_says_so():
    import platform

    from simulator.grounding.backends import backend_by_name

    provenance = backend_by_name("torch-cpu").provenance()
    if platform.libc_ver()[0] == "glibc":
        assert provenance["malloc"].startswith("glibc, fixed mmap threshold 32 MiB")
    else:
        assert provenance["malloc"].startswith("not glibc")


@pytest.mark.parametrize("flush, calls", [
    (False, [0, 1, 2, 0, 1, 2, 0, 1, 2]),     # two warm-up passes over every batch
    (True, [0, 0, 0, 1, 2]),                  # flushed passes: warm-up calls of the first
])
def test_warm_up_runs_whole_passes_unless_each_pass_flushes(flush, calls):
    from simulator.grounding.backends import backend_by_name

    called: list[int] = []
    runs = [lambda i=i: called.append(i) for i in range(3)]
    passes = backend_by_name("torch-cpu").timed_passes(runs, passes=1, warmup=2, flush=flush)
    assert called == calls
    assert len(passes) == 1 and passes[0].shape == (3,)
