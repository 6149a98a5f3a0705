"""Ground the dense stage on this CPU: ``embsim measure --stage dense`` times an experiment's
MLPs with torch, ``embsim calibrate --stage dense`` fits the engine's effective peak from GEMM
microbenchmarks, and ``embsim validate`` compares them (``latency_dense_p50_us``).

The measured model is the simulated one (``simulator.core.dense.dense_layers``' shapes):
``nn.Linear`` + ReLU for each layer (the last one of the top MLP ends in a sigmoid), DLRM's
interaction (``dot``: ``bmm`` of the F + 1 vectors with their transpose and the strictly lower
triangle kept, concatenated with the bottom MLP's output; ``cat``: the concatenation), over
random dense features and random pooled embeddings. One thread (``torch.set_num_threads(1)``:
the machine is shared, and one core's peak is what the fit can hold steady); weights stay
warm in the caches from call to call, as in a serving loop (``flush: false``). Each point:
``warmup`` untimed calls, then ``repeats`` timed calls per round; the time is the median over
rounds of each round's median.

The calibration never sees the validation shapes: it times single ``nn.Linear`` + ReLU layers
over a grid of square widths and batch sizes (``GEMM_GRID``) and fits the simulator's roofline
to them, t = max(FLOPs / (peak_flops * B / (B + half_batch)), bytes / cache_bandwidth) +
layer_overhead for a batch of B rows (least squares on the log of the times): at batch 1 a
wide layer streams its weights from the caches and is bound by their bandwidth, at large
batches by the FLOPs, and a small batch fills the vector units' tiles only partly
(``half_batch``: the batch at which a layer reaches half the peak).
"""

from __future__ import annotations

import datetime
import platform
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embsim.errors import InputError
from hwmodels.dense import linear
from simulator.core.dense import dense_layers, dense_shape
from simulator.core.workload import open_workload
from simulator.grounding.measure import MeasureSettings, workload_hash, write_measurements
from simulator.runs.experiment import Point, load_points
from traces.schema import DTYPE_BYTES

METRIC = "latency_dense_p50_us"
"""The simulated column a dense measurement is compared with."""
GEMM_GRID = {"width": (64, 128, 512, 1024, 2048), "batch": (1, 8, 32, 128, 512)}
"""Square layers (width -> width) and batch sizes the calibration times."""
THREADS = 1
DEPTH = 3
"""Layers of each calibration MLP (its time is divided among them)."""


def _torch():
    try:
        import torch
    except ImportError:
        raise InputError("the dense measurement needs torch: pip install 'embsim[torch]'",
                         field="--backend") from None
    torch.set_num_threads(THREADS)
    return torch


def _median_time(call: Callable[[], Any], warmup: int, repeats: int, rounds: int) -> float:
    for _ in range(warmup):
        call()
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        medians.append(statistics.median(times))
    return statistics.median(medians)


def torch_forward(bottom: list[int], top: list[int], kind: str, batch: int, dims: list[int],
                  seed: int = 0) -> Callable[[], Any]:
    """A call that runs DLRM's dense forward pass once (widths as ``dense_layers`` takes)."""
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)

    def stack(widths: list[int], last: Any) -> Any:
        layers: list[Any] = []
        for i, (n_in, n_out) in enumerate(zip(widths, widths[1:], strict=False)):
            layers += [torch.nn.Linear(n_in, n_out),
                       last if i == len(widths) - 2 else torch.nn.ReLU()]
        return torch.nn.Sequential(*layers).eval()

    width = bottom[-1]
    vectors = len(dims) + 1
    top_in = (width + vectors * (vectors - 1) // 2) if kind == "dot" else width + sum(dims)
    bottom_mlp = stack(bottom, torch.nn.ReLU())
    top_mlp = stack([top_in, *top], torch.nn.Sigmoid())
    dense = torch.rand(batch, bottom[0], generator=gen)
    pooled = [torch.rand(batch, d, generator=gen) for d in dims]
    li, lj = torch.tril_indices(vectors, vectors, offset=-1)

    def forward() -> Any:
        with torch.no_grad():
            x = bottom_mlp(dense)
            if kind == "dot":
                t = torch.cat([x, *pooled], dim=1).view(batch, vectors, width)
                z = torch.bmm(t, t.transpose(1, 2))
                joined = torch.cat([x, z[:, li, lj]], dim=1)
            else:
                joined = torch.cat([x, *pooled], dim=1)
            return top_mlp(joined)

    return forward


def time_dense_point(point: Point, source: str, settings: MeasureSettings) -> dict[str, Any]:
    """Measure one point's dense layers; returns its results row."""
    cfg = point.config.system.dense
    if cfg is None:
        raise InputError("measuring --stage dense needs a system.dense section",
                         source=source, field="system.dense")
    if cfg.dtype != "float32":
        raise InputError("the torch-cpu dense measurement runs float32", source=source,
                         field="system.dense.dtype")
    shape = dense_shape(cfg, source)
    meta, _ = open_workload(point.config.workload, source)
    dims = [t.dim for t in meta.tables]
    layers = dense_layers(shape, meta.batch_size, dims, DTYPE_BYTES[cfg.dtype], source)
    forward = torch_forward(shape.bottom_mlp, shape.top_mlp, shape.interaction,
                            meta.batch_size, dims, point.config.run.seed)
    seconds = _median_time(forward, settings.warmup, settings.repeats, settings.rounds)
    flops = sum(layer.flops for part in layers for layer in part)
    return {"point": point.index, **point.overrides, "config_hash": point.config_hash,
            "workload_hash": workload_hash(point), "metric": METRIC, "batches": 1,
            "repeats": settings.repeats, "rounds": settings.rounds, "warmup": settings.warmup,
            "flush": False, "batch_size": meta.batch_size, "flops": flops,
            "time_per_batch_us": seconds * 1e6, "gflops": flops / seconds / 1e9}


def provenance(kind: str, **extra: Any) -> dict[str, Any]:
    """Where and how a dense measurement or calibration ran."""
    torch = _torch()
    from simulator.grounding.backends.torch_cpu import cpu_model_name, os_cache_bytes

    return {"backend": "torch-cpu", "kernel": kind, "device": cpu_model_name(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": socket.gethostname(), "machine": platform.machine(),
            "torch": str(torch.__version__), "torch_threads": torch.get_num_threads(),
            "caches": os_cache_bytes(), **extra}


def measure_dense(path: Path, out: Path, sets: dict[str, Any], settings: MeasureSettings,
                  progress: bool = True) -> pd.DataFrame:
    """Measure the dense layers of every point of the experiment at ``path``; write ``out``."""
    from tqdm import tqdm

    _, points = load_points(path, sets)
    meta = provenance("dense", experiment=str(path), warmup=settings.warmup,
                      repeats=settings.repeats, rounds=settings.rounds, flush=False)
    rows = [time_dense_point(point, str(path), settings)
            | {k: meta[k] for k in ("backend", "kernel", "device", "host")}
            | {"date": meta["date"][:10]}
            for point in tqdm(points, unit="point", disable=None if progress else True,
                              leave=False, desc="measure dense")]
    frame = pd.DataFrame(rows)
    write_measurements(frame, meta, out)
    return frame


def gemm_benchmarks(rounds: int, repeats: int = 15) -> list[dict[str, Any]]:
    """Median seconds of an MLP of ``DEPTH`` ``nn.Linear`` + ReLU layers over ``GEMM_GRID``
    (as the models' MLPs run: one ``nn.Sequential`` call), and its per-layer shape."""
    torch = _torch()
    runs = []
    for width in GEMM_GRID["width"]:
        layer = torch.nn.Sequential(*[m for _ in range(DEPTH) for m in (
            torch.nn.Linear(width, width), torch.nn.ReLU())]).eval()
        for batch in GEMM_GRID["batch"]:
            x = torch.rand(batch, width)

            def call(layer=layer, x=x) -> None:
                with torch.no_grad():
                    layer(x)

            seconds = _median_time(call, 3, repeats, rounds)
            runs.append({"name": "linear_relu", "seconds": seconds / DEPTH,
                         "params": {"batch": batch, "n_in": width, "n_out": width,
                                    "layers": DEPTH, "seconds_per": "layer",
                                    "flops": 2.0 * batch * width * width,
                                    "bytes": linear("", batch, width, width, 4).footprint}})
    return runs


def fit_engine(runs: list[dict[str, Any]]) -> tuple[dict[str, float], float]:
    """(peak_flops, cache_bandwidth, layer_overhead, half_batch) fitted to the runs by the
    roofline the simulator uses (``hwmodels.dense.roofline_time``), least squares on the log
    of the times (relative errors); and the fit's MAPE."""
    from scipy.optimize import least_squares

    seconds = np.array([r["seconds"] for r in runs])
    flops = np.array([r["params"]["flops"] for r in runs])
    nbytes = np.array([r["params"]["bytes"] for r in runs])
    batch = np.array([r["params"]["batch"] for r in runs])

    def predict(x: np.ndarray) -> np.ndarray:
        peak, bandwidth, overhead, half = np.exp(np.clip(x, -50, 50))
        return (np.maximum(flops * (batch + half) / batch / peak, nbytes / bandwidth)
                + overhead)

    def residual(x: np.ndarray) -> np.ndarray:
        return np.log(predict(x)) - np.log(seconds)

    # the max() makes the surface kinked: start from several guesses, keep the best fit
    fits = [least_squares(residual, np.log([np.max(flops / seconds) * scale,
                                            np.max(nbytes / seconds) * scale,
                                            np.min(seconds) * share, half]))
            for scale in (1.0, 2.0) for share in (0.2, 0.8) for half in (1.0, 8.0, 64.0)]
    fit = min(fits, key=lambda f: f.cost)
    peak, bandwidth, overhead, half = (float(v) for v in np.exp(np.clip(fit.x, -50, 50)))
    mape = float(np.mean(np.abs(predict(fit.x) - seconds) / seconds) * 100)
    return {"peak_flops": peak, "cache_bandwidth": bandwidth, "layer_overhead": overhead,
            "half_batch": half}, mape


def calibrate_dense(name: str, rounds: int) -> dict[str, Any]:
    """A ``dense`` preset of this CPU (one thread), every number with its source."""
    runs = gemm_benchmarks(rounds)
    return dense_preset(name, runs, provenance("dense", rounds=rounds))


def refit_dense(preset: dict[str, Any], name: str) -> dict[str, Any]:
    """The preset refitted to the microbenchmarks it records (``calibrate --refit``)."""
    return dense_preset(name, preset["microbenchmarks"], preset["provenance"])


def dense_preset(name: str, runs: list[dict[str, Any]], meta: dict[str, Any]
                 ) -> dict[str, Any]:
    """The preset fitted to ``runs`` measured on the machine of ``meta``."""
    values, mape = fit_engine(runs)
    llc = max(meta["caches"].values()) if meta["caches"] else 0
    where = (f"measured: embsim calibrate --stage dense on {meta['device']} "
             f"({meta['host']}), {meta['date'][:10]}, torch {meta['torch']}, {THREADS} "
             f"thread: roofline fitted (log least squares) to {len(runs)} nn.Linear+ReLU runs "
             f"(widths {list(GEMM_GRID['width'])}, batches {list(GEMM_GRID['batch'])}); "
             f"fit MAPE {mape:.1f}%")
    params = {key: {"value": value, "source": where} for key, value in values.items()}
    params["cache"] = {"value": int(llc), "source": "the last-level cache the OS reports "
                       f"({meta['device']}, /sys/devices/system/cpu)"}
    return {"name": name, "kind": "dense",
            "description": f"torch nn.Linear on {meta['device']}, one thread, fitted "
                           f"{meta['date'][:10]}",
            "params": params, "provenance": meta, "microbenchmarks": runs}
