"""Microbenchmarks that calibration fits a machine preset to.

Each returns a ``Sample`` (what was run and how long it took) so the preset can say which
measurement set which parameter. They run through the same backends as ``embsim measure``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numba import njit

from simulator.grounding.backends import Backend
from simulator.grounding.backends.base import typical_seconds
from traces.batch import Batch
from traces.generators import synthesize
from traces.schema import TableSpec

ROW_ALIGN_BYTES = 64
ELEMENT_BYTES = {"float32": 4, "float16": 2}
"""Element types the pooling microbenchmarks time."""
WARMUP = 3
"""Untimed passes before a gather's timed passes (``embsim measure``'s default)."""


@dataclass
class Sample:
    """One microbenchmark result: its name, its parameters and the seconds per call."""

    name: str
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """Plain-Python form, for YAML."""
        out = asdict(self)
        out["params"] = {k: v.item() if hasattr(v, "item") else v for k, v in self.params.items()}
        return out


def median_seconds(backend: Backend, fn: Any, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after one untimed call."""
    backend.time_call(fn)
    return float(np.median(backend.time_pass([fn] * repeats, flush=False)))


def uniform_batch(rng: np.random.Generator, tables: int, rows: int, batch_size: int,
                  pooling: int) -> Batch:
    """A batch with ``pooling`` uniform random rows per bag in every table."""
    lookups = tables * batch_size * pooling
    offsets = np.arange(0, lookups + 1, pooling, dtype=np.int64)
    indices = rng.integers(0, rows, lookups, dtype=np.int64)
    return Batch(0, indices, offsets, tables, batch_size)


def zipf_batches(tables: int, rows: int, batch_size: int, pooling: int, batches: int,
                 alpha: float, seed: int) -> list[Batch]:
    """Batches whose bags draw distinct Zipf(``alpha``) rows, as the experiments' synthetic
    generator draws them (same sampler, same random row permutation per table)."""
    specs = [TableSpec(rows=rows, dim=1)] * tables
    _, stream = synthesize(specs, pooling, batches=batches, batch_size=batch_size,
                           alpha=alpha, seed=seed)
    return list(stream)


def gather(backend: Backend, *, footprint: int, tables: int, dim: int, batch_size: int,
           pooling: int, where: str = "local", batches: int = 5, passes: int = 3,
           flush: bool = False, alpha: float = 0.0, seed: int = 0, dtype: str = "float32",
           name: str = "gather") -> Sample:
    """Time ``embedding_bag`` over ``tables`` tables of ``dtype`` of ``footprint`` bytes in all
    (recorded as ``name``, which says what the fit uses the run for).

    Rows are uniform random, or Zipf-skewed when ``alpha`` > 1. Timed as ``embsim measure``
    times an experiment's point (``Backend.timed_passes``): ``batches`` batches are prepared
    and run in ``WARMUP`` untimed passes (unless flushing), then ``passes`` timed passes; the
    record is the median over batches of each batch's median over passes.
    """
    rng = np.random.default_rng(seed)
    row_bytes = dim * ELEMENT_BYTES[dtype]
    rows = max(pooling, footprint // (tables * row_bytes))
    weights = [backend.random_table(rows, dim, dtype, where, seed + t)
               for t in range(tables)]
    prepared = (zipf_batches(tables, rows, batch_size, pooling, batches, alpha, seed)
                if alpha > 1 else
                [uniform_batch(rng, tables, rows, batch_size, pooling) for _ in range(batches)])
    seconds, protocol = timed_batches(backend, weights, prepared, where, passes, flush)
    params = {"footprint_bytes": tables * rows * row_bytes, "tables": tables, "rows": rows,
              "dim": dim, "dtype": dtype, "batch_size": batch_size, "pooling": pooling,
              "where": where, "flush": flush, "alpha": alpha,
              "bytes": prepared[0].num_lookups * row_bytes, "protocol": protocol}
    return Sample(name, seconds, params)


def timed_batches(backend: Backend, weights: list[Any], prepared: list[Batch], where: str,
                  passes: int, flush: bool) -> tuple[float, str]:
    """Seconds of pooling the prepared batches over ``weights``, timed as ``embsim measure``
    times a point (``Backend.timed_passes``: the median over batches of each batch's median
    over passes), and that protocol in words for the record."""
    runs = [backend.pooled_batch(weights, batch, "sum", where) for batch in prepared]
    seconds, _ = typical_seconds(backend.timed_passes(runs, passes, WARMUP, flush))
    return seconds, (f"{len(prepared)} batches, {WARMUP} warm-up passes, {passes} passes "
                     "(timed_passes, as embsim measure)")


PAGE_BYTES = 4096
"""Base page of x86-64 and ARMv8 Linux, which PyTorch's CPU allocator gets."""


def page_gather(backend: Backend, *, pages: int, dim: int = 16, batch_size: int = 1024,
                pooling: int = 64, batches: int = 3, passes: int = 3, seed: int = 0) -> Sample:
    """Time ``embedding_bag`` over one float32 table of ``pages`` pages whose lookups read one
    fixed random row in each page (``hot_rows`` = pages): as many lines as pages, so that
    with rows of at most a line the lines stay in the private cache while the pages outgrow
    the TLB. Pooling over these against ``pages`` shows the TLB's reach and the cost of a
    miss apart from the caches'. Timed as ``gather``."""
    rng = np.random.default_rng(seed)
    row_bytes = dim * ELEMENT_BYTES["float32"]
    per_page = max(1, PAGE_BYTES // row_bytes)
    rows = pages * per_page
    hot = np.arange(pages, dtype=np.int64) * per_page + rng.integers(0, per_page, pages)
    table = [backend.random_table(rows, dim, "float32", "local", seed)]
    prepared = []
    for _ in range(batches):
        batch = uniform_batch(rng, 1, pages, batch_size, pooling)
        prepared.append(Batch(0, hot[batch.indices], batch.offsets, 1, batch_size))
    seconds, protocol = timed_batches(backend, table, prepared, "local", passes, False)
    params = {"footprint_bytes": rows * row_bytes, "tables": 1, "rows": rows,
              "hot_rows": pages, "dim": dim, "dtype": "float32", "batch_size": batch_size,
              "pooling": pooling, "where": "local", "flush": False, "alpha": 0.0,
              "bytes": batch_size * pooling * row_bytes, "protocol": protocol}
    return Sample("gather_pages", seconds, params)


def sequential_read(backend: Backend, nbytes: int, repeats: int = 10) -> Sample:
    """Streaming read bandwidth: a sum over one large float32 tensor."""
    values = backend.random_table(max(1, nbytes // 4096), 1024, "float32", "local", seed=0)
    seconds = median_seconds(backend, values.sum, repeats)
    return Sample("sequential_read", seconds, {"bytes": nbytes, "gbps": nbytes / seconds / 1e9})


@njit(cache=True)
def _chase(next_slot: np.ndarray, steps: int) -> int:
    at = 0
    for _ in range(steps):
        at = next_slot[at]
    return at


def random_cycle(rng: np.random.Generator, slots: int, stride: int) -> np.ndarray:
    """A single random cycle over ``slots`` nodes ``stride`` int64s apart (pointer-chase list)."""
    order = rng.permutation(slots)
    chain = np.zeros(slots * stride, dtype=np.int64)
    chain[order * stride] = np.roll(order, -1) * stride
    return chain


def warm_steps(nodes: int) -> int:
    """Untimed steps before a chain is timed: the whole cycle when it is small enough to be
    cache-resident (so its timed loads hit), enough to settle when it is not."""
    return min(nodes, 2_000_000)


def cpu_dependent_latency(nbytes: int, steps: int = 2_000_000, seed: int = 0) -> Sample:
    """Load-to-use latency: a single dependent chain through a random cycle, one 64 B line
    per node, over ``nbytes`` of memory."""
    stride = ROW_ALIGN_BYTES // 8
    nodes = max(2, nbytes // ROW_ALIGN_BYTES)
    chain = random_cycle(np.random.default_rng(seed), nodes, stride)
    _chase(chain, warm_steps(nodes))
    start = time.perf_counter()
    _chase(chain, steps)
    seconds = (time.perf_counter() - start) / steps
    return Sample("dependent_load_latency", seconds, {"bytes": nbytes, "steps": steps,
                                                      "where": None,
                                                      "warm_steps": warm_steps(nodes)})


CHASE_KERNEL = r"""
extern "C" __global__ void chase(const long long* next, long long steps, long long* out) {
    long long at = 0;
    for (long long i = 0; i < steps; ++i) at = next[at];
    *out = at;
}
"""


def cuda_dependent_latency(backend: Backend, nbytes: int, where: str, steps: int = 200_000,
                           seed: int = 0) -> Sample:
    """One GPU thread chasing a random cycle (one node per 64 B) in HBM or in pinned host
    memory; needs CuPy to compile the one-line kernel."""
    try:
        import cupy
    except ImportError:
        raise RuntimeError("the GPU latency microbenchmark needs CuPy") from None
    stride = ROW_ALIGN_BYTES // 8
    chain = random_cycle(np.random.default_rng(seed), max(2, nbytes // ROW_ALIGN_BYTES), stride)
    nodes = chain.size // stride
    on_gpu = cupy.asarray(backend.place(chain, where))
    out = cupy.zeros(1, dtype=cupy.int64)
    kernel = cupy.RawKernel(CHASE_KERNEL, "chase")
    kernel((1,), (1,), (on_gpu, cupy.int64(warm_steps(nodes)), out))
    seconds = backend.time_call(lambda: kernel((1,), (1,), (on_gpu, cupy.int64(steps), out)))
    return Sample("dependent_load_latency", seconds / steps,
                  {"bytes": nbytes, "steps": steps, "where": where,
                   "warm_steps": warm_steps(nodes)})


def host_to_device_copy(backend: Backend, nbytes: int, repeats: int = 10) -> Sample:
    """Bandwidth of copying a pinned host buffer to the GPU."""
    torch = backend.torch
    host = torch.ones(nbytes // 4, dtype=torch.float32).pin_memory()
    device = torch.empty_like(host, device="cuda")
    seconds = median_seconds(backend, lambda: device.copy_(host, non_blocking=True), repeats)
    return Sample("host_to_device_copy", seconds, {"bytes": nbytes, "gbps": nbytes / seconds / 1e9})
