"""Ground the dense stage on this CPU or an NVIDIA GPU: ``embsim measure --stage dense`` times
an experiment's MLPs with torch, ``embsim calibrate --stage dense`` fits the engine's effective
peak from GEMM microbenchmarks, and ``embsim validate`` compares them (``latency_dense_p50_us``).

The measured model is the simulated one (``simulator.core.dense.dense_layers``' shapes):
``nn.Linear`` + ReLU for each layer (the last one of the top MLP ends in a sigmoid), DLRM's
interaction (``dot``: ``bmm`` of the F + 1 vectors with their transpose and the strictly lower
triangle kept, concatenated with the bottom MLP's output; ``cat``: the concatenation), over
random dense features and random pooled embeddings. One thread (``torch.set_num_threads(1)``:
the machine is shared, and one core's peak is what the fit can hold steady; on a GPU the one
thread only launches the kernels); weights stay warm in the caches (a GPU's L2) from call to
call, as in a serving loop (``flush: false``). Each point:
``warmup`` untimed calls, then ``repeats`` timed calls per round; the time is the median over
rounds of each round's median.

Where it runs is a ``DenseDevice`` (``dense_device``): ``torch-cpu`` (this CPU, float32) or
``torch-cuda`` (GPU 0; float32, float16 or bfloat16). Both build the same modules and inputs
on their device and time them the same way: the host clock around the call and the device's
``synchronize`` (nothing on the CPU, ``torch.cuda.synchronize`` on a GPU, whose launches
return before the work is done).

The calibration never sees the validation shapes: it times single ``nn.Linear`` + ReLU layers
over a grid of square widths and batch sizes (``GEMM_GRID``; ``CUDA_GEMM_GRID`` on a GPU,
large enough to reach its compute-bound regime) and fits the simulator's roofline
to them, t = max(FLOPs / (peak_flops * B / (B + half_batch)), bytes / cache_bandwidth) +
layer_overhead for a batch of B rows (least squares on the log of the times): at batch 1 a
wide layer streams its weights from the caches and is bound by their bandwidth, at large
batches by the FLOPs, and a small batch fills the vector units' tiles only partly
(``half_batch``: the batch at which a layer reaches half the peak).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
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
"""Square layers (width -> width) and batch sizes the calibration times on a CPU."""
CUDA_GEMM_GRID = {"width": (256, 512, 1024, 2048, 4096, 8192),
                  "batch": (1, 4, 16, 64, 256, 1024, 4096, 8192)}
"""The same on a GPU: up to weights far beyond its L2 (HBM-bound at small batches) and batches
well into the compute-bound regime."""
CUDA_MAX_LAYER_MACS = 2**35
"""On a GPU, a (width, batch) of the grid is timed only if batch * width² (multiply-adds of a
layer) stays within this: 69 GFLOP a layer, about 4 ms for the ``DEPTH`` layers of a call at
FP32's 50-60 TFLOP/s on an H100/H200 (the whole grid: about 1 s of kernels a round of 3)."""
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


def _no_sync() -> None:
    """A CPU's work is done when the call returns."""


@dataclasses.dataclass(frozen=True)
class DenseDevice:
    """Where the dense layers run and how they are timed (``dense_device`` builds one)."""

    backend: str
    torch: Any
    device: Any
    """The torch device modules and tensors are made on."""
    name: str
    caches: dict[str, int]
    synchronize: Callable[[], None]
    """Waits until the issued work is done; timed with each call."""
    dtypes: tuple[str, ...]
    """``system.dense.dtype`` values this device measures."""
    grid: dict[str, tuple[int, ...]]
    max_layer_macs: float = math.inf
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Provenance beyond the keys every dense measurement records."""

    def torch_dtype(self, dtype: str, source: str) -> Any:
        """The torch dtype of ``system.dense.dtype`` (InputError if this device does not run
        it)."""
        if dtype not in self.dtypes:
            raise InputError(f"the {self.backend} dense measurement runs "
                             f"{', '.join(self.dtypes)}", source=source,
                             field="system.dense.dtype")
        return getattr(self.torch, dtype)

    def median_time(self, call: Callable[[], Any], warmup: int, repeats: int,
                    rounds: int) -> float:
        """Seconds of ``call`` and ``synchronize`` together: the median over ``rounds`` of each
        round's median of ``repeats`` timed calls, after ``warmup`` untimed ones."""
        for _ in range(warmup):
            call()
            self.synchronize()
        medians = []
        for _ in range(rounds):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                self.synchronize()
                times.append(time.perf_counter() - start)
            medians.append(statistics.median(times))
        return statistics.median(medians)

    def batches(self, width: int) -> list[int]:
        """The grid's batch sizes the calibration times at ``width``."""
        return [batch for batch in self.grid["batch"]
                if batch * width * width <= self.max_layer_macs]


DENSE_BACKENDS = ("torch-cpu", "torch-cuda")


def dense_device(backend: str | None) -> DenseDevice:
    """The device of ``--backend``: this CPU (one thread) or GPU 0 (InputError, field
    ``--backend``, for another backend or where no GPU is usable)."""
    if backend not in DENSE_BACKENDS:
        raise InputError(f"--stage dense runs on {' or '.join(DENSE_BACKENDS)}, not {backend}",
                         field="--backend")
    torch = _torch()
    if backend == "torch-cpu":
        from simulator.grounding.backends.torch_cpu import cpu_model_name, os_cache_bytes

        return DenseDevice(backend, torch, torch.device("cpu"), cpu_model_name(),
                           os_cache_bytes(), _no_sync, ("float32",), GEMM_GRID)
    from simulator.grounding.backends import backend_by_name

    gpu = backend_by_name(backend)          # InputError (--backend) without a usable GPU
    meta = gpu.provenance()
    extra = {key: meta[key] for key in ("cuda", "multiprocessors", "memory_bytes")}
    return DenseDevice(backend, torch, gpu.device, gpu.device_name(), gpu.cache_bytes(),
                       gpu.synchronize, ("float32", "float16", "bfloat16"), CUDA_GEMM_GRID,
                       CUDA_MAX_LAYER_MACS,
                       extra | {"tf32": bool(torch.backends.cuda.matmul.allow_tf32)})


def torch_forward(bottom: list[int], top: list[int], kind: str, batch: int, dims: list[int],
                  seed: int = 0, device: DenseDevice | None = None,
                  dtype: str = "float32") -> Callable[[], Any]:
    """A call that runs DLRM's dense forward pass once (widths as ``dense_layers`` takes) on
    ``device`` (default: this CPU) in ``dtype``."""
    device = device or dense_device("torch-cpu")
    torch = device.torch
    on = {"device": device.device, "dtype": getattr(torch, dtype)}
    gen = torch.Generator().manual_seed(seed)

    def stack(widths: list[int], last: Any) -> Any:
        layers: list[Any] = []
        for i, (n_in, n_out) in enumerate(zip(widths, widths[1:], strict=False)):
            layers += [torch.nn.Linear(n_in, n_out, **on),
                       last if i == len(widths) - 2 else torch.nn.ReLU()]
        return torch.nn.Sequential(*layers).eval()

    width = bottom[-1]
    vectors = len(dims) + 1
    top_in = (width + vectors * (vectors - 1) // 2) if kind == "dot" else width + sum(dims)
    bottom_mlp = stack(bottom, torch.nn.ReLU())
    top_mlp = stack([top_in, *top], torch.nn.Sigmoid())
    dense = torch.rand(batch, bottom[0], generator=gen).to(**on)
    pooled = [torch.rand(batch, d, generator=gen).to(**on) for d in dims]
    li, lj = torch.tril_indices(vectors, vectors, offset=-1).to(device.device)

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


def time_dense_point(point: Point, source: str, settings: MeasureSettings,
                     device: DenseDevice) -> dict[str, Any]:
    """Measure one point's dense layers on ``device``; returns its results row."""
    cfg = point.config.system.dense
    if cfg is None:
        raise InputError("measuring --stage dense needs a system.dense section",
                         source=source, field="system.dense")
    device.torch_dtype(cfg.dtype, source)
    shape = dense_shape(cfg, source)
    meta, _ = open_workload(point.config.workload, source)
    dims = [t.dim for t in meta.tables]
    layers = dense_layers(shape, meta.batch_size, dims, DTYPE_BYTES[cfg.dtype], source)
    forward = torch_forward(shape.bottom_mlp, shape.top_mlp, shape.interaction,
                            meta.batch_size, dims, point.config.run.seed, device, cfg.dtype)
    seconds = device.median_time(forward, settings.warmup, settings.repeats, settings.rounds)
    flops = sum(layer.flops for part in layers for layer in part)
    return {"point": point.index, **point.overrides, "config_hash": point.config_hash,
            "workload_hash": workload_hash(point), "metric": METRIC, "batches": 1,
            "repeats": settings.repeats, "rounds": settings.rounds, "warmup": settings.warmup,
            "flush": False, "batch_size": meta.batch_size, "flops": flops,
            "time_per_batch_us": seconds * 1e6, "gflops": flops / seconds / 1e9}


def provenance(kind: str, device: DenseDevice, **extra: Any) -> dict[str, Any]:
    """Where and how a dense measurement or calibration ran."""
    torch = device.torch
    return {"backend": device.backend, "kernel": kind, "device": device.name,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": socket.gethostname(), "machine": platform.machine(),
            "torch": str(torch.__version__), "torch_threads": torch.get_num_threads(),
            "caches": device.caches, **device.extra, **extra}


def measure_dense(path: Path, out: Path, sets: dict[str, Any], settings: MeasureSettings,
                  progress: bool = True, backend: str = "torch-cpu") -> pd.DataFrame:
    """Measure the dense layers of every point of the experiment at ``path`` on ``backend``;
    write ``out``."""
    from tqdm import tqdm

    device = dense_device(backend)
    _, points = load_points(path, sets)
    meta = provenance("dense", device, experiment=str(path), warmup=settings.warmup,
                      repeats=settings.repeats, rounds=settings.rounds, flush=False)
    rows = [time_dense_point(point, str(path), settings, device)
            | {k: meta[k] for k in ("backend", "kernel", "device", "host")}
            | {"date": meta["date"][:10]}
            for point in tqdm(points, unit="point", disable=None if progress else True,
                              leave=False, desc="measure dense")]
    frame = pd.DataFrame(rows)
    write_measurements(frame, meta, out)
    return frame


def gemm_benchmarks(rounds: int, repeats: int = 15, device: DenseDevice | None = None
                    ) -> list[dict[str, Any]]:
    """Median seconds of an MLP of ``DEPTH`` ``nn.Linear`` + ReLU layers (float32) over the
    device's grid (as the models' MLPs run: one ``nn.Sequential`` call), and its per-layer
    shape."""
    device = device or dense_device("torch-cpu")
    torch = device.torch
    runs = []
    for width in device.grid["width"]:
        layer = torch.nn.Sequential(*[m for _ in range(DEPTH) for m in (
            torch.nn.Linear(width, width, device=device.device), torch.nn.ReLU())]).eval()
        for batch in device.batches(width):
            x = torch.rand(batch, width, device=device.device)

            def call(layer=layer, x=x) -> None:
                with torch.no_grad():
                    layer(x)

            seconds = device.median_time(call, 3, repeats, rounds)
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


def calibrate_dense(name: str, rounds: int, backend: str = "torch-cpu") -> dict[str, Any]:
    """A ``dense`` preset of this CPU (one thread) or GPU 0, every number with its source."""
    device = dense_device(backend)
    runs = gemm_benchmarks(rounds, device=device)
    return dense_preset(name, runs, provenance("dense", device, rounds=rounds))


def refit_dense(preset: dict[str, Any], name: str) -> dict[str, Any]:
    """The preset refitted to the microbenchmarks it records (``calibrate --refit``)."""
    return dense_preset(name, preset["microbenchmarks"], preset["provenance"])


def dense_preset(name: str, runs: list[dict[str, Any]], meta: dict[str, Any]
                 ) -> dict[str, Any]:
    """The preset fitted to ``runs`` measured on the machine of ``meta``."""
    values, mape = fit_engine(runs)
    llc = max(meta["caches"].values()) if meta["caches"] else 0
    gpu = meta.get("backend") == "torch-cuda"
    widths = sorted({r["params"]["n_in"] for r in runs})
    batches = sorted({r["params"]["batch"] for r in runs})
    ran = f"CUDA {meta.get('cuda')}, GPU 0" if gpu else f"{THREADS} thread"
    where = (f"measured: embsim calibrate --stage dense on {meta['device']} "
             f"({meta['host']}), {meta['date'][:10]}, torch {meta['torch']}, {ran}: "
             f"roofline fitted (log least squares) to {len(runs)} nn.Linear+ReLU runs "
             f"(widths {widths}, batches {batches}); fit MAPE {mape:.1f}%")
    params = {key: {"value": value, "source": where} for key, value in values.items()}
    params["cache"] = {"value": int(llc), "source": (
        f"the GPU's L2 ({meta['device']}, torch.cuda.get_device_properties(0).L2_cache_size; "
        "50 MiB where it reports none)" if gpu else
        f"the last-level cache the OS reports ({meta['device']}, /sys/devices/system/cpu)")}
    return {"name": name, "kind": "dense",
            "description": f"torch nn.Linear on {meta['device']}, "
                           f"{'GPU 0' if gpu else 'one thread'}, fitted {meta['date'][:10]}",
            "params": params, "provenance": meta, "microbenchmarks": runs}
