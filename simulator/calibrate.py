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
from scipy.optimize import nnls

from embsim.errors import InputError
from embsim.registry import Registry
from hwmodels.presets import resolve
from simulator import microbench
from simulator.backends import Backend
from simulator.microbench import Sample

GRID = {"tables": (1, 2, 4, 8), "batch_size": (32, 512, 4096), "pooling": (1, 16, 128),
        "dim": (32, 256)}
COSTS = ("query_overhead", "call_overhead", "bag_overhead", "lookup_overhead",
         "lookup_chain_latency")
CACHED, MEMORY, HOST = "cached", "memory", "host"


def entry(value: float | int | str | bool, source: str) -> dict[str, Any]:
    """A preset value with its source; numpy scalars become plain Python numbers."""
    return {"value": value.item() if hasattr(value, "item") else value, "source": source}


# ---------------------------------------------------------------- running microbenchmarks

def cache_grid(backend: Backend, footprint: int) -> list[Sample]:
    """Pooling over cache-resident tables, across tables x batch x pooling x dim."""
    return [microbench.gather(backend, footprint=footprint, tables=t, dim=d, batch_size=b,
                              pooling=p)
            for t, b, p, d in itertools.product(*GRID.values())]


def memory_gathers(backend: Backend, footprint: int, where: str = "local") -> list[Sample]:
    """Pooling over tables far larger than any cache (uniform rows: nearly all miss)."""
    return [microbench.gather(backend, footprint=footprint, tables=4, dim=dim,
                              batch_size=1024, pooling=64, repeats=7, where=where)
            for dim in (32, 256)]


SWEEP_SHAPE = {"tables": 4, "batch_size": 1024, "pooling": 64, "dim": 64}


def footprint_sweep(backend: Backend, cache_bytes: int) -> list[Sample]:
    """Pooling over tables from 1/64 to 4x the cache's reported size (powers of two), to find
    how much of it the workload really gets."""
    sizes = [cache_bytes >> k for k in range(6, 0, -1)] + [cache_bytes << k for k in range(3)]
    return [Sample("gather_sweep", s.seconds, s.params) for s in (
        microbench.gather(backend, footprint=size, repeats=9, **SWEEP_SHAPE) for size in sizes)]


def run_cpu(backend: Backend, memory_footprint: int = 2**30) -> list[Sample]:
    """Every microbenchmark the CPU preset is fitted to."""
    llc = max(backend.cache_bytes().values(), default=32 * 2**20)
    memory_footprint = max(memory_footprint, 4 * llc)
    return [*cache_grid(backend, llc // 2), *memory_gathers(backend, memory_footprint),
            *footprint_sweep(backend, llc),
            microbench.sequential_read(backend, memory_footprint),
            microbench.cpu_dependent_latency(llc // 2),
            microbench.cpu_dependent_latency(memory_footprint)]


def run_cuda(backend: Backend, hbm_footprint: int = 4 * 2**30,
             host_footprint: int = 2**30) -> list[Sample]:
    """Every microbenchmark the GPU preset is fitted to (GPU latency chains need CuPy)."""
    l2 = backend.cache_bytes()["L2"]
    samples = [*cache_grid(backend, l2 // 2), *memory_gathers(backend, hbm_footprint),
               *memory_gathers(backend, host_footprint, where="host"),
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


def _terms(sample: Sample) -> np.ndarray:
    """Units a run costs: query, table calls, bags, lookups, longest-bag chains, bytes."""
    p = sample.params
    bags = p["tables"] * p["batch_size"]
    return np.array([1, p["tables"], bags, bags * p["pooling"], p["tables"] * p["pooling"],
                     p["bytes"]], dtype=float)


def fit_processor_and_cache(samples: list[Sample]) -> dict[str, float]:
    """Processor costs (seconds per unit) and the cache level's bytes/s, by NNLS on relative
    error."""
    terms = np.array([_terms(s) for s in samples])
    seconds = np.array([s.seconds for s in samples])
    scale = terms.max(axis=0)
    solution, _ = nnls(terms / scale / seconds[:, None], np.ones(len(samples)))
    *costs, per_byte = solution / scale
    return dict(zip(COSTS, costs, strict=True)) | {
        "bandwidth": 1.0 / per_byte if per_byte > 0 else 1e15}


def _predicted(sample: Sample, cached: dict[str, float], with_bytes: bool = True) -> float:
    """Seconds the fitted processor-and-cache model gives a run served from the cache (only
    the processor's share when ``with_bytes`` is false)."""
    per_byte = 1.0 / cached["bandwidth"] if with_bytes else 0.0
    per_unit = np.array([*(cached[c] for c in COSTS), per_byte])
    return float(_terms(sample) @ per_unit)


def fit_memory_bandwidth(samples: list[Sample], cached: dict[str, float],
                         cache_bytes: int, overlapped: bool) -> float:
    """Bytes/s of the memory behind the cache, from runs over tables larger than the cache.

    Behind a hardware cache (``overlapped``) misses stream while hits are read, so the time
    left for the misses is what the processor's costs leave; behind a software cache it is
    also less the time of reading every row from the cache.
    """
    if not samples:
        raise InputError("no pooling runs over tables larger than the cache to fit memory "
                         "bandwidth to", field="microbenchmarks")
    missed, spent = [], []
    for sample in samples:
        miss_fraction = max(0.0, 1.0 - cache_bytes / sample.params["footprint_bytes"])
        missed.append(sample.params["bytes"] * miss_fraction)
        known = _predicted(sample, cached, with_bytes=not overlapped)
        spent.append(max(sample.seconds - known, 1e-12))
    return float(np.dot(missed, missed) / np.dot(missed, spent))


def fit_cache_capacity(samples: list[Sample], cached: dict[str, float], memory_bw: float,
                       reported: int) -> int:
    """The cache capacity (bytes) that best explains pooling time against table footprint.

    Uniform random rows over a footprint F hit an LRU cache of capacity C with probability
    min(1, C/F); behind a hardware cache the run takes the processor's costs plus the longer
    of reading every row from the cache and fetching the misses. C is searched among
    1/64 .. 1x the reported size (a cache shared with other tenants gives less than it says).
    """
    def error(capacity: float) -> float:
        total = 0.0
        for s in samples:
            nbytes = s.params["bytes"]
            hit = min(1.0, capacity / s.params["footprint_bytes"])
            model = _predicted(s, cached, with_bytes=False) + max(
                nbytes / cached["bandwidth"], (1 - hit) * nbytes / memory_bw)
            total += ((model - s.seconds) / s.seconds) ** 2
        return total

    candidates = reported / 2 ** np.linspace(6, 0, 49)
    return int(min(candidates, key=error))


def relative_fit_error(samples: list[Sample], cached: dict[str, float]) -> float:
    """Mean absolute relative error of the processor-and-cache fit on its own samples."""
    return float(np.mean([abs(_predicted(s, cached) - s.seconds) / s.seconds for s in samples]))


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


def _fit_source(what: str, samples: list[Sample], error: float) -> str:
    return (f"calibrated: {what}; NNLS over {len(samples)} embedding_bag runs on "
            f"cache-resident tables (grid {GRID}), mean relative fit error {error:.1%}")


def _memory_source(what: str, samples: list[Sample]) -> str:
    footprint = samples[0].params["footprint_bytes"]
    return (f"calibrated: {what} random-row bandwidth from embedding_bag over "
            f"{footprint / 2**30:.2f} GiB of tables ({len(samples)} runs, dims "
            f"{sorted({s.params['dim'] for s in samples})}), after the cached share")


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


def _processor(samples: list[Sample], cache_bytes: int, level: str
               ) -> tuple[dict[str, float], str]:
    """The processor-and-cache fit over the cache-resident runs, and its source string."""
    grid = _gathers(samples, cache_bytes, CACHED)
    if not grid:
        raise InputError(f"no pooling runs over tables that fit the {level} cache "
                         f"({cache_bytes} B) to fit the processor to", field="microbenchmarks")
    cached = fit_processor_and_cache(grid)
    source = _fit_source(f"{level} bandwidth and processor costs", grid,
                         relative_fit_error(grid, cached))
    return cached, source


def fit_cpu(samples: list[Sample], provenance: dict[str, Any]) -> dict[str, Any]:
    """CPU machine preset: last-level cache, DRAM, processor costs."""
    caches = provenance["caches"]
    level = max(caches, default="L3")
    llc = caches.get(level, 32 * 2**20)
    cached, fit_source = _processor(samples, llc, level)
    big = _gathers(samples, llc, MEMORY)
    memory_bw = fit_memory_bandwidth(big, cached, llc, overlapped=True)
    sweep = [s for s in samples if s.name == "gather_sweep"]
    if sweep:
        fitted = fit_cache_capacity(sweep, cached, memory_bw, llc)
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
        "compute": {"tier": "llc", **{k: entry(cached[k], fit_source) for k in COSTS}},
        "cache": {"tier": "llc", "size": capacity,
                  "ways": entry(ways or 16, f"OS: {level} ways_of_associativity" if ways
                                else "assumed 16 (the OS does not say)"),
                  "policy": "lru", "hardware": True},
    }
    return _preset(provenance, samples, system)


def fit_cuda(samples: list[Sample], provenance: dict[str, Any]) -> dict[str, Any]:
    """GPU machine preset: L2, HBM, host memory over PCIe, processor costs."""
    l2 = provenance["caches"]["L2"]
    cached, fit_source = _processor(samples, l2, "L2")
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


def llc_ways() -> int | None:
    """Associativity of the largest data cache level, if the OS says."""
    from simulator.backends.torch_cpu import os_caches

    levels = os_caches()
    return levels[max(levels)][1] if levels else None


Calibration = tuple[Callable[..., list[Sample]], Callable[[list[Sample], dict], dict]]
CALIBRATORS: Registry[Calibration] = Registry("calibration backend")
CALIBRATORS.register("torch-cpu")((run_cpu, fit_cpu))
CALIBRATORS.register("torch-cuda")((run_cuda, fit_cuda))


def calibrate(backend: Backend, **sizes: int) -> dict[str, Any]:
    """Run the backend's microbenchmarks and fit its machine preset."""
    run, fit = CALIBRATORS.get(backend.name, field="--backend")
    provenance = backend.provenance() | {"physical_memory_bytes": physical_memory_bytes(),
                                         "llc_ways": llc_ways()}
    return fit(run(backend, **sizes), provenance)


def refit(preset: dict[str, Any]) -> dict[str, Any]:
    """The preset rebuilt from its recorded microbenchmarks with the current fitting code."""
    missing = [k for k in ("provenance", "microbenchmarks", "system") if k not in preset]
    if missing:
        raise InputError(f"the preset records no {', '.join(missing)}; only presets written by "
                         "'embsim calibrate' can be refitted", field="--refit")
    if _one([Sample(m["name"], m["seconds"], m["params"]) for m in preset["microbenchmarks"]],
            "sequential_read") is None:
        raise InputError("the preset records no sequential_read run", field="--refit")
    provenance = dict(preset["provenance"])
    provenance.setdefault("physical_memory_bytes", preset["system"]["memory"][
        "dram" if provenance["backend"] == "torch-cpu" else "host"]["capacity"]["value"])
    provenance.setdefault("llc_ways", None)
    samples = [Sample(m["name"], m["seconds"], m["params"]) for m in preset["microbenchmarks"]]
    _, fit = CALIBRATORS.get(provenance["backend"], field="backend")
    return fit(samples, provenance)
