"""``embsim calibrate``: fit a machine preset to microbenchmarks run on a backend.

The preset describes the machine in embsim's terms, every value with the microbenchmark (or
OS/device property) that set it:

- a cache level that pooling reads (``llc`` on a CPU, ``l2`` on a GPU), sized from the OS or
  the device properties, modelled as an LRU row cache in front of main memory;
- main memory (``dram`` on a CPU; ``hbm``, plus ``host`` memory over ``pcie``, on a GPU);
- the processor's fixed costs (``compute.*_overhead`` and ``lookup_chain_latency``).

Fits: pooling over cache-resident tables (varied tables, batch, pooling and dim) gives, by
non-negative least squares on relative error, the processor costs and the cache level's
bandwidth. Pooling over tables far larger than the cache then gives main memory's random-row
bandwidth (what is left after the cached part, over the bytes that miss), and pooling over
pinned host memory the link's. Dependent-load chains give the latencies. No experiment point
is used, so everything an experiment measures can validate the preset.

Running and fitting are separate: the preset records every microbenchmark run, and
``refit`` rebuilds a preset from those records with the current fitting code.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from embsim.errors import InputError
from embsim.registry import Registry
from hwmodels.presets import resolve
from simulator.core.config import is_half_remainder
from simulator.grounding import microbench
from simulator.grounding.backends import Backend
from simulator.grounding.cost_fit import (
    COSTS,
    FLOOR,
    HALF_REMAINDER,
    NO_STRUCTURES,
    REMAINDER,
    Structures,
    best_tlb,
    fit_cache_capacity,
    fit_memory,
    fit_memory_bandwidth,
    fit_processor,
    relative_error,
    row_sizes,
)
from simulator.grounding.microbench import Sample
from simulator.grounding.validate import MACHINE_KEYS

GRID = {"tables": (1, 2, 4, 8), "batch_size": (32, 512, 4096), "pooling": (1, 16, 128),
        "dim": (32, 256)}
PRIVATE_GRID = {"tables": (1, 4), "batch_size": (32, 512, 4096), "pooling": (1, 16, 128),
                "dim": (32, 256)}
"""Runs over tables that fit a CPU core's private cache (L2), to tell its cost from the LLC's."""
HALF_GRID = {"tables": (1, 4), "batch_size": (32, 512, 4096), "pooling": (16, 128),
             "dim": (32, 256), "dtype": ("float16",)}
"""Runs over float16 tables (on a CPU, in the LLC and in the private cache): half the bytes of
float32 rows for as many elements, so that the fit tells the cost per element from the cost
per byte."""
REMAINDER_GRID = {"tables": (1, 4), "batch_size": (512, 4096), "pooling": (16, 128),
                  "dim": (12, 28, 44, 100), "dtype": ("float32", "float16")}
"""Runs over rows that are not a whole number of SIMD vectors (4 elements past a multiple of 8,
and 12 or 4 past one of 16), of float32 and float16: their extra cost per lookup (the kernel's
tail) is what ``remainder_overhead`` is fitted to, and float16's further cost beyond the
private cache ``half_remainder_overhead``; the other grids' rows are all whole vectors."""
TLB_ENTRIES = tuple(int(n) for n in np.unique(np.round(2 ** np.arange(5, 14.1, 0.5) / 16) * 16))
"""TLB sizes (4 KiB pages) the CPU fit chooses among: 32 to 16384 entries."""
CACHED, MEMORY, HOST = "cached", "memory", "host"
WALK_ROUNDS = 3
"""Alternations of the processor fit (given the walk cost) and the memory fit (given the
processor): the walk cost settles within them."""


def entry(value: float | int | str | bool, source: str) -> dict[str, Any]:
    """A preset value with its source; numpy scalars become plain Python numbers."""
    return {"value": value.item() if hasattr(value, "item") else value, "source": source}


# ---------------------------------------------------------------- running microbenchmarks

def cache_grid(backend: Backend, footprint: int, grid: dict[str, tuple[int, ...]] = GRID
               ) -> list[Sample]:
    """Pooling over cache-resident tables, across the grid's axes (tables x batch x pooling x
    dim, and element types where it has them)."""
    return [microbench.gather(backend, footprint=footprint, **dict(zip(grid, values, strict=True)))
            for values in itertools.product(*grid.values())]


def memory_gathers(backend: Backend, footprint: int, where: str = "local",
                   dims: tuple[int, ...] = (32, 256)) -> list[Sample]:
    """Pooling over tables far larger than any cache (uniform rows: nearly all miss)."""
    return [microbench.gather(backend, footprint=footprint, tables=4, dim=dim,
                              batch_size=1024, pooling=64, batches=4, passes=2, where=where)
            for dim in dims]


CPU_MEMORY_DIMS = (16, 32, 64, 256)
"""Row sizes of a CPU's memory runs: 1 to 16 lines, so that the fit tells the cost of each
row's page walk from the bandwidth each line takes."""


SWEEP_SHAPE = {"tables": 4, "batch_size": 1024, "pooling": 64, "dim": 64}


def footprint_sweep(backend: Backend, cache_bytes: int, where: str = "local") -> list[Sample]:
    """Pooling over tables from 1/64 to 4x the cache's reported size (powers of two), to find
    how much of it the workload really gets (for rows in ``where`` memory)."""
    sizes = [cache_bytes >> k for k in range(6, 0, -1)] + [cache_bytes << k for k in range(3)]
    return [microbench.gather(backend, footprint=size, batches=3, passes=3, where=where,
                              name="gather_sweep", **SWEEP_SHAPE)
            for size in sizes]


ZIPF_ALPHAS = (1.05, 1.1, 1.2)


def skewed_gathers(backend: Backend, footprint: int, where: str) -> list[Sample]:
    """Pooling over Zipf-skewed rows of tables far larger than the cache: how much the hot
    rows gain from it (on a GPU, whether host rows read over the link are kept in L2)."""
    return [microbench.gather(backend, footprint=footprint, batches=3, passes=3, where=where,
                              alpha=alpha, name="gather_zipf", **SWEEP_SHAPE)
            for alpha in ZIPF_ALPHAS]


TLB_PAGES = tuple(2 ** k for k in range(7, 16))
"""Pages (128 to 32768) that the CPU's page-gather runs spread their rows over: their lines
fit the private cache, their pages outgrow any TLB, so the TLB fit sees its reach and miss
cost even on a machine whose LLC runs all fit it."""


def page_gathers(backend: Backend) -> list[Sample]:
    """Pooling over one row in each of ``TLB_PAGES`` pages (``microbench.page_gather``)."""
    return [microbench.page_gather(backend, pages=pages) for pages in TLB_PAGES]


LLC_SHARE = 8
"""A CPU's LLC runs use tables of 1/8 of the size the OS reports: a VM shares its LLC with
other tenants (29% of a 480 MiB L3 and 60% of a 32 MiB one behaved as cache in the footprint
sweeps of 2026-12-04 and 2026-11-26), and tables of half its size were partly served by DRAM."""


def run_cpu(backend: Backend, memory_footprint: int = 2**30) -> list[Sample]:
    """Every microbenchmark the CPU preset is fitted to."""
    caches = backend.cache_bytes()
    llc = max(caches.values(), default=32 * 2**20)
    resident = llc // LLC_SHARE
    memory_footprint = max(memory_footprint, 4 * llc)
    private = ([*cache_grid(backend, caches["L2"] // 2, PRIVATE_GRID),
                *cache_grid(backend, caches["L2"] // 2, HALF_GRID)]
               if {"L2", "L3"} <= caches.keys() else [])
    return [*cache_grid(backend, resident), *cache_grid(backend, resident, HALF_GRID), *private,
            *cache_grid(backend, resident, REMAINDER_GRID),
            *page_gathers(backend),
            *memory_gathers(backend, memory_footprint, dims=CPU_MEMORY_DIMS),
            *footprint_sweep(backend, llc),
            microbench.sequential_read(backend, memory_footprint),
            microbench.cpu_dependent_latency(resident),
            microbench.cpu_dependent_latency(memory_footprint)]


def run_cuda(backend: Backend, hbm_footprint: int = 4 * 2**30,
             host_footprint: int = 2**30) -> list[Sample]:
    """Every microbenchmark the GPU preset is fitted to (GPU latency chains need CuPy)."""
    l2 = backend.cache_bytes()["L2"]
    samples = [*cache_grid(backend, l2 // 2), *memory_gathers(backend, hbm_footprint),
               *memory_gathers(backend, host_footprint, where="host"),
               *footprint_sweep(backend, l2), *footprint_sweep(backend, l2, where="host"),
               *skewed_gathers(backend, hbm_footprint, "local"),
               *skewed_gathers(backend, host_footprint, "host"),
               microbench.sequential_read(backend, hbm_footprint),
               microbench.host_to_device_copy(backend, 2**30),
               microbench.cpu_dependent_latency(host_footprint)]
    for nbytes, where in ((l2 // 2, "local"), (host_footprint, "local"),
                          (host_footprint, "host")):
        try:
            samples.append(microbench.cuda_dependent_latency(backend, nbytes, where))
        except Exception as err:  # noqa: BLE001  (no CuPy, or it failed: keep the rest)
            print(f"GPU latency chain over {where} memory failed: {err}")
    return samples


# ---------------------------------------------------------------------------- fitting

def role(sample: Sample, cache_bytes: int) -> str:
    """Which part of the fit a gather run informs."""
    if sample.params.get("where") == "host":
        return HOST
    return CACHED if sample.params["footprint_bytes"] <= cache_bytes else MEMORY


def _gathers(samples: list[Sample], cache_bytes: int, wanted: str) -> list[Sample]:
    return [s for s in samples if s.name == "gather" and role(s, cache_bytes) == wanted]


def _one(samples: list[Sample], name: str, **params: Any) -> Sample | None:
    for s in samples:
        if s.name == name and all(s.params.get(k) == v for k, v in params.items()):
            return s
    return None


def chain_was_warm(sample: Sample) -> bool:
    """Whether a latency chain visited its whole cycle before being timed, so that a chain
    small enough for a cache measured that cache (records before ``warm_steps`` was kept
    warmed steps // 10 on a GPU)."""
    nodes = sample.params["bytes"] // microbench.ROW_ALIGN_BYTES
    return sample.params.get("warm_steps", sample.params["steps"] // 10) >= nodes


def _fit_source(what: str, samples: list[Sample], error: float, method: str = "NNLS") -> str:
    pages = sorted(s.params["hot_rows"] for s in samples if s.name == "gather_pages")
    footprints = sorted({s.params["footprint_bytes"] for s in samples
                         if s.name != "gather_pages"})
    spread = (f", and {len(pages)} over one row per page of {pages[0]} to {pages[-1]} pages"
              if pages else "")
    return (f"calibrated: {what}; {method} over {len(samples)} embedding_bag runs on "
            f"cache-resident tables ({footprints[0] >> 10} KiB to {footprints[-1] >> 10} KiB; "
            f"grid {GRID}{spread}), mean relative fit error {error:.1%}")


def _memory_source(what: str, samples: list[Sample]) -> str:
    footprint = samples[0].params["footprint_bytes"]
    return (f"calibrated: {what} random-row bandwidth from embedding_bag over "
            f"{footprint / 2**30:.2f} GiB of tables ({len(samples)} runs, dims "
            f"{sorted({s.params['dim'] for s in samples})}), after the cached share")


def _walk_source(samples: list[Sample], walk_time: float) -> str:
    """Where the cost of a page walk that misses the private cache came from."""
    sizes = sorted(int(size) for size in row_sizes(samples))
    if walk_time or len(sizes) >= 3:
        return (f"calibrated: with DRAM bandwidth, from embedding_bag over tables far larger "
                f"than the caches, rows of {sizes} B (the walk of each row against the "
                "bandwidth of its lines)")
    return (f"not fitted: the runs over tables far larger than the caches have rows of only "
            f"{sizes} B (three sizes needed); taken as 0")


def _latency(sample: Sample | None, where: str, fallback: tuple[str, str] | None) -> dict:
    if sample is not None:
        return entry(sample.seconds, f"calibrated: dependent-load chain over "
                     f"{sample.params['bytes'] / 2**20:.0f} MiB of {where}, one 64 B line "
                     "per node")
    if fallback is None:
        return entry(0.0, f"not measured ({where} latency chain did not run); taken as 0")
    kind, preset = fallback
    spec = resolve(kind, preset, {})[0]
    latency = spec.derived()["read_latency_miss_s"] if kind == "dram" else spec.latency
    return entry(latency, f"not measured ({where} latency chain did not run): preset "
                 f"{preset}" + (", row-miss read latency" if kind == "dram" else ""))


def _tier(capacity: dict, bandwidth: dict, latency: dict, granularity: dict,
          **extra: Any) -> dict[str, Any]:
    one = entry(1, "one effective channel: the fitted bandwidth is the whole level's")
    return {"capacity": capacity, "bandwidth": bandwidth, "latency": latency,
            "access_granularity": granularity, "channels": one, "interleave": granularity,
            **extra}


def _processor(runs: list[Sample], level: str) -> tuple[dict[str, float], str]:
    """The processor-and-cache fit over runs served from the cache level (no TLB or private
    cache), and its source."""
    if not runs:
        raise InputError(f"no pooling runs over tables that fit the {level} cache to fit the "
                         "processor to", field="microbenchmarks")
    fit = fit_processor(runs)
    return fit, _fit_source(f"{level} bandwidth and processor costs", runs,
                            relative_error(runs, fit, NO_STRUCTURES))


def _cpu_structures(samples: list[Sample], caches: dict[str, int], llc: int,
                    vector_elements: int) -> tuple[list[Sample], Structures, dict[str, float]]:
    """Runs served from the LLC (grids, the footprint sweep's runs no larger than their
    tables, and the page gathers, whose lines all fit it), and the private cache (L2, when
    there is a level below it) and TLB size that explain them."""
    grids = _gathers(samples, llc, CACHED)
    resident = max((s.params["footprint_bytes"] for s in grids), default=0)
    runs = grids + [s for s in samples
                    if s.name == "gather_sweep" and s.params["footprint_bytes"] <= resident
                    or s.name == "gather_pages"]
    if not runs:
        raise InputError("no pooling runs over tables that fit the LLC to fit the processor to",
                         field="microbenchmarks")
    private = caches["L2"] if {"L2", "L3"} <= caches.keys() else 0
    structures, fit = best_tlb(runs, private, TLB_ENTRIES, vector_elements)
    return runs, structures, fit


def _cpu_compute(structures: Structures, fit: dict[str, float], fit_source: str,
                 walk_source: str, provenance: dict[str, Any], runs: list[Sample]
                 ) -> dict[str, Any]:
    """The ``compute`` section of a CPU preset: costs, TLB and private cache."""
    compute: dict[str, Any] = {"tier": "llc", **{k: entry(fit[k], fit_source)
                                                for k in (*COSTS, FLOOR)}}
    vector = structures.vector_elements
    if vector and any(s.params["dim"] % vector for s in runs):
        compute["vector_elements"] = entry(vector, "OS: /proc/cpuinfo flags (float lanes of "
                                           "the widest vectors: 16 with avx512f, bw, dq and "
                                           "vl; 8 with avx2)")
        compute[REMAINDER] = entry(fit[REMAINDER], fit_source)
        if any(is_half_remainder(s.params.get("dtype"), s.params["dim"], vector) for s in runs):
            compute[HALF_REMAINDER] = entry(fit[HALF_REMAINDER], fit_source)
    compute["tlb"] = {
        "entries": entry(structures.tlb_entries, f"calibrated: the TLB size among "
                         f"{TLB_ENTRIES[0]}..{TLB_ENTRIES[-1]} entries whose fit explains the "
                         f"{len(runs)} cache-resident runs best"),
        "page": entry(structures.page, "x86-64 base page (4 KiB): PyTorch's CPU allocator does "
                      "not ask for huge pages"),
        "miss_time": entry(fit["tlb_misses"], fit_source),
        "walk_miss_time": entry(fit["walk_misses"], walk_source)}
    if structures.private_bytes:
        ways = provenance.get("l2_ways")
        compute["private_cache"] = {
            "size": entry(structures.private_bytes, "OS: /sys/devices/system/cpu/cpu0/cache, "
                          "L2 (one core's)"),
            "ways": entry(ways or 16, "OS: L2 ways_of_associativity" if ways
                          else "assumed 16 (the OS does not say)"),
            "line": entry(structures.line, "cache line size of x86-64 processors (64 B)"),
            "line_time": entry(fit["private_lines"], fit_source)}
    return compute


def fit_cpu(samples: list[Sample], provenance: dict[str, Any]) -> dict[str, Any]:
    """CPU machine preset: last-level cache, DRAM, processor costs, TLB and private cache."""
    caches = provenance["caches"]
    level = max(caches, default="L3")
    llc = caches.get(level, 32 * 2**20)
    runs, structures, cached = _cpu_structures(samples, caches, llc,
                                               provenance.get("vector_elements") or 0)
    big = _gathers(samples, llc, MEMORY)
    for _ in range(WALK_ROUNDS):
        memory_bw, walk_time = fit_memory(big, cached, llc, structures)
        cached = fit_processor(runs, structures, walk_time, floor=True)
    fit_source = _fit_source(f"{level} bandwidth and processor costs", runs,
                             relative_error(runs, cached, structures),
                             "NNLS, then least squares with a lookup floor," if cached[FLOOR]
                             else "NNLS (a lookup floor did not lower the error)")
    sweep = [s for s in samples if s.name == "gather_sweep"]
    if sweep:
        fitted = fit_cache_capacity(sweep, cached, memory_bw, llc, structures)
        capacity = entry(fitted, f"calibrated: pooling over {len(sweep)} table footprints "
                         f"from {sweep[0].params['footprint_bytes'] >> 10} KiB to "
                         f"{sweep[-1].params['footprint_bytes'] >> 20} MiB; the OS reports "
                         f"{llc >> 20} MiB of {level}, of which this much behaves as cache")
    else:
        capacity = entry(llc, f"OS: {level} size")
    stream = _one(samples, "sequential_read")
    latencies = sorted((s for s in samples if s.name == "dependent_load_latency"),
                       key=lambda s: s.params["bytes"])
    line = entry(64, "cache line size of x86-64 processors (64 B)")
    ways = provenance.get("llc_ways")
    memory = {
        "llc": _tier(entry(llc, f"OS: /sys/devices/system/cpu/cpu0/cache, {level}"),
                     entry(cached["bandwidth"], fit_source),
                     _latency(latencies[0] if latencies else None,
                              f"{level}-resident memory", None), line),
        "dram": _tier(entry(provenance["physical_memory_bytes"], "OS: physical memory pages"),
                      entry(memory_bw, _memory_source("DRAM", big)),
                      _latency(latencies[-1] if latencies else None, "DRAM",
                               ("dram", "ddr5-4800-8ch")),
                      line, link="membus", host_memory=True),
    }
    system = {
        "memory": memory,
        "links": {"membus": {
            "bandwidth": entry(stream.params["gbps"] * 1e9, f"calibrated: sequential read of "
                               f"{stream.params['bytes'] / 2**30:.2f} GiB (torch sum)"),
            "latency": entry(0.0, "the DRAM tier carries the memory latency")}},
        "tables": {"tier": "dram"},
        "compute": _cpu_compute(structures, cached, fit_source, _walk_source(big, walk_time),
                                provenance, runs),
        "cache": {"tier": "llc", "size": capacity,
                  "ways": entry(ways or 16, f"OS: {level} ways_of_associativity" if ways
                                else "assumed 16 (the OS does not say)"),
                  "policy": "lru", "hardware": True},
    }
    return _preset(provenance, samples, system)


def fit_cuda(samples: list[Sample], provenance: dict[str, Any]) -> dict[str, Any]:
    """GPU machine preset: L2, HBM, host memory over PCIe, processor costs."""
    l2 = provenance["caches"]["L2"]
    cached, fit_source = _processor(_gathers(samples, l2, CACHED), "L2")
    big, remote = _gathers(samples, l2, MEMORY), _gathers(samples, l2, HOST)
    stream = _one(samples, "sequential_read")
    host_chain = _one(samples, "dependent_load_latency", where="host")
    host_dram = _one(samples, "dependent_load_latency", where=None)
    local_chains = sorted((s for s in samples if s.name == "dependent_load_latency"
                           and s.params.get("where") == "local"), key=lambda s: s.params["bytes"])
    l2_chain = local_chains[0] if local_chains and chain_was_warm(local_chains[0]) else None
    pcie_bw = fit_memory_bandwidth(remote, cached, 0, overlapped=False)   # L2 skips host rows
    sector = entry(32, "CUDA C++ Best Practices Guide: global memory is accessed in 32 B sectors")
    host_line = entry(64, "x86-64 cache line (64 B)")
    if host_chain is not None and host_dram is not None:
        link_latency = entry(max(host_chain.seconds - host_dram.seconds, 0.0),
                             "calibrated: GPU dependent-load chain over pinned host memory less "
                             "the host DRAM latency (CPU chain)")
    else:
        link_latency = _latency(None, "PCIe", ("link", "pcie5-x16"))
    memory = {
        "l2": _tier(entry(l2, "device property L2_cache_size"),
                    entry(cached["bandwidth"], fit_source),
                    _latency(l2_chain, "L2-resident HBM", None), sector),
        "hbm": _tier(entry(provenance["memory_bytes"], "device property total_memory"),
                     entry(fit_memory_bandwidth(big, cached, l2, overlapped=True),
                           _memory_source("HBM", big)),
                     _latency(local_chains[-1] if len(local_chains) > 1 else None, "HBM",
                              ("dram", "hbm3-h100")), sector, link="hbm_bus"),
        "host": _tier(entry(provenance["physical_memory_bytes"], "OS: physical memory pages"),
                      entry(pcie_bw * 4, "assumed 4x the PCIe read bandwidth: host DRAM is "
                            "not the bottleneck of GPU reads"),
                      _latency(host_dram, "host DRAM (read by the CPU)",
                               ("dram", "ddr5-4800-8ch")),
                      host_line, link="pcie", host_memory=True),
    }
    system = {
        "memory": memory,
        "links": {
            "hbm_bus": {"bandwidth": entry(stream.params["gbps"] * 1e9,
                                           "calibrated: sequential read of HBM (torch sum)"),
                        "latency": entry(0.0, "the HBM tier carries the memory latency")},
            "pcie": {"bandwidth": entry(pcie_bw, _memory_source("PCIe zero-copy", remote)),
                     "latency": link_latency},
        },
        "tables": {"tier": "hbm"},
        "compute": {"tier": "l2", **{k: entry(cached[k], fit_source) for k in COSTS}},
        "cache": {"tier": "l2", "size": entry(l2, "device property L2_cache_size"),
                  "caches": ["hbm"],  # measured: zero-copy host reads gain nothing from L2
                  "ways": entry(16, "assumed 16 (NVIDIA does not publish L2 associativity)"),
                  "policy": "lru", "hardware": True},
    }
    return _preset(provenance, samples, system)


def _preset(provenance: dict[str, Any], samples: list[Sample],
            system: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"calibrated-{provenance['backend']}",
        "kind": "machine",
        "description": f"{provenance['device']} measured with {provenance['backend']} on "
                       f"{provenance['date']}",
        "provenance": provenance,
        "microbenchmarks": [s.record() for s in samples],
        "system": system,
    }


def physical_memory_bytes() -> int:
    """Installed memory as the OS counts it."""
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def cache_ways() -> dict[str, int | None]:
    """Associativity the OS reports: ``llc_ways`` (the largest data cache level) and
    ``l2_ways`` (None where it does not say)."""
    from simulator.grounding.backends.torch_cpu import os_caches

    levels = os_caches()
    return {"llc_ways": levels[max(levels)][1] if levels else None,
            "l2_ways": levels["L2"][1] if "L2" in levels else None}


Calibration = tuple[Callable[..., list[Sample]], Callable[[list[Sample], dict], dict]]
CALIBRATORS: Registry[Calibration] = Registry("calibration backend")
CALIBRATORS.register("torch-cpu")((run_cpu, fit_cpu))
CALIBRATORS.register("torch-cuda")((run_cuda, fit_cuda))


def pooled_rounds(rounds: list[list[Sample]], combine: Callable[[list[float]], Any] = np.median
                  ) -> list[Sample]:
    """One sample per microbenchmark: the median seconds (or ``combine``'s) over rounds that
    ran the same ones in the same order (a sequential read's bandwidth follows that time)."""
    def what(sample: Sample) -> tuple[str, dict[str, Any]]:
        return sample.name, {k: v for k, v in sample.params.items() if k != "gbps"}

    pooled = []
    for same in zip(*rounds, strict=True):
        first = same[0]
        if any(what(s) != what(first) for s in same):
            raise ValueError(f"rounds ran different microbenchmarks: {first.name} "
                             f"{first.params} against another")
        seconds = float(combine([s.seconds for s in same]))
        params = dict(first.params)
        if "gbps" in params:
            params["gbps"] = params["bytes"] / seconds / 1e9
        pooled.append(Sample(first.name, seconds, params | {"rounds": len(same)}))
    return pooled


def calibrate(backend: Backend, rounds: int = 1, **sizes: int) -> dict[str, Any]:
    """Run the backend's microbenchmarks (``rounds`` times, pooled by median) and fit its
    machine preset."""
    run, fit = CALIBRATORS.get(backend.name, field="--backend")
    provenance = backend.provenance() | {"physical_memory_bytes": physical_memory_bytes(),
                                         "rounds": rounds, **cache_ways()}
    samples = [run(backend, **sizes) for _ in range(rounds)]
    return fit(samples[0] if rounds == 1 else pooled_rounds(samples), provenance)


def refit(*presets: dict[str, Any]) -> dict[str, Any]:
    """The preset rebuilt from its recorded microbenchmarks with the current fitting code.
    Several presets of one machine (the rounds of an interleaved session: one calibrate round
    between measurements) are pooled first, microbenchmark by microbenchmark, by the fastest
    round (``measure --pool`` pools their measurements alike)."""
    for preset in presets:
        missing = [k for k in ("provenance", "microbenchmarks", "system") if k not in preset]
        if missing:
            raise InputError(f"the preset records no {', '.join(missing)}; only presets written "
                             "by 'embsim calibrate' can be refitted", field="--refit")
    rounds = [[Sample(m["name"], m["seconds"], m["params"]) for m in preset["microbenchmarks"]]
              for preset in presets]
    if _one(rounds[0], "sequential_read") is None:
        raise InputError("the preset records no sequential_read run", field="--refit")
    preset = presets[0]
    provenance = dict(preset["provenance"])
    if len(presets) > 1:
        machines = {str({k: p["provenance"].get(k) for k in MACHINE_KEYS}) for p in presets}
        if len(machines) > 1:
            raise InputError("the presets come from different machines or backends "
                             f"({' / '.join(sorted(machines))}); pool only one machine's rounds",
                             field="--refit")
        try:
            samples = pooled_rounds(rounds, np.min)
        except ValueError as err:
            raise InputError(f"{err}; pool only presets of one embsim version's calibrate",
                             field="--refit") from None
        provenance |= {"rounds": sum(p["provenance"].get("rounds", 1) for p in presets),
                       "pooled_dates": [p["provenance"].get("date") for p in presets]}
    else:
        samples = rounds[0]
    provenance.setdefault("physical_memory_bytes", preset["system"]["memory"][
        "dram" if provenance["backend"] == "torch-cpu" else "host"]["capacity"]["value"])
    provenance.setdefault("llc_ways", None)
    _, fit = CALIBRATORS.get(provenance["backend"], field="backend")
    return fit(samples, provenance)
