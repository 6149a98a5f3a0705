"""Replaying a raw memory-request trace through one memory device (``embsim memtrace``).

The device is a preset name (a request-level kind: dram, scm or ssd) or a YAML file describing
one, optionally with a hierarchy of caches in front of it::

    kind: dram
    preset: ddr4-3200          # optional: without it, params must be a full parameter set
    params: {mapping: rochrababgco, ranks: 2}
    caches:                    # optional (hwmodels.cache.hierarchy): from the core outwards
      inclusion: nine          # nine | inclusive | exclusive
      levels:
        - {name: L1, size: 32 KiB, ways: 8, line: 64 B, policy: lru}
        - {name: L2, size: 1 MiB, ways: 16, policy: srrip}

With caches, the trace's requests go through the levels; the line fills and write-backs that
leave the last level reach the device at the cycle of the request that caused them, and the
summary adds each level's statistics. Requests arrive at their trace cycle stamps in the
device's controller clock (``Device.cycle_s``), through ``Device.service_in_cycles``: DRAM
devices replay in whole cycles (latency at the controller, without ``frontend_latency``), the
others in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from embsim.errors import InputError
from embsim.validation import first_problem
from hwmodels.cache.hierarchy import CacheHierarchy, hierarchy_from_config
from hwmodels.device import Device, request_level_kinds
from hwmodels.presets import kinds_of, preset_names, resolve
from hwmodels.specs import Spec
from simulator.core.config import read_yaml
from traces.memtrace import MemRequests

ROW_KEYS = ("row_hits", "row_misses", "row_conflicts", "activates", "precharges", "refreshes")
HISTOGRAM_BINS = 1 << 20


class DeviceSystemFile(BaseModel):
    """A YAML file describing one device: its kind, an optional preset and field overrides."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    preset: str | None = None
    params: dict[str, Any] = {}
    caches: dict[str, Any] | None = None


@dataclass(frozen=True)
class DeviceSystem:
    """A device to replay a trace through: its kind, validated spec and where it came from."""

    name: str
    kind: str
    spec: Spec
    sources: dict[str, str]
    caches: CacheHierarchy | None = None


def load_device_system(arg: str, sets: dict[str, Any]) -> DeviceSystem:
    """The device named by ``arg`` (a preset name or a YAML file) with ``sets`` applied."""
    path = Path(arg)
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        return _from_file(path, sets)
    replayable = request_level_kinds()
    kinds = [k for k in kinds_of(arg) if k in replayable]
    if not kinds:
        names = sorted({n for k in replayable for n in preset_names(k)})
        raise InputError(f"unknown device preset or file {arg!r}; expected a YAML file or one "
                         f"of: {', '.join(names)}", field="SYSTEM")
    if len(kinds) > 1:
        raise InputError(f"preset {arg!r} exists as kinds {', '.join(kinds)}; describe the "
                         "device in a YAML file with its kind", field="SYSTEM")
    spec, sources = resolve(kinds[0], arg, sets, source="--set")
    return DeviceSystem(arg, kinds[0], spec, sources)


def _from_file(path: Path, sets: dict[str, Any]) -> DeviceSystem:
    source = str(path)
    if not path.is_file():
        raise InputError("no such device file", source=source)
    try:
        system = DeviceSystemFile.model_validate(read_yaml(path))
    except ValidationError as err:
        where, message = first_problem(err)
        raise InputError(message, source=source, field=where or None) from None
    if system.kind not in request_level_kinds():
        raise InputError(f"unknown device kind {system.kind!r}; expected one of: "
                         f"{', '.join(request_level_kinds())}", source=source, field="kind")
    spec, sources = resolve(system.kind, system.preset, system.params, source=source,
                            field="params")
    if sets:
        spec, set_sources = resolve(system.kind, system.preset, {**system.params, **sets},
                                    source="--set")
        sources.update({k: set_sources[k] for k in sets})
    caches = (None if system.caches is None else
              hierarchy_from_config(system.caches, source=source, field="caches"))
    return DeviceSystem(system.preset or path.stem, system.kind, spec, sources, caches)


class CycleHistogram:
    """Counts of integer cycle values in bounded memory, for nearest-rank percentiles.

    Bins are one cycle wide (exact) until a value reaches ``max_bins``; then bin widths double
    as often as needed, so a percentile is exact within one bin width (relative error below
    2 / ``max_bins`` of the largest value).
    """

    def __init__(self, max_bins: int = HISTOGRAM_BINS):
        self.max_bins = max_bins
        self.width = 1
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        while int(values.max()) // self.width >= self.max_bins:
            counts = np.pad(self.counts, (0, self.counts.size % 2))
            self.counts = counts.reshape(-1, 2).sum(axis=1)
            self.width *= 2
        binned = np.bincount(values // self.width)
        if binned.size > self.counts.size:
            self.counts = np.pad(self.counts, (0, binned.size - self.counts.size))
        self.counts[:binned.size] += binned

    def quantile(self, q: float) -> int | None:
        """Smallest value with at least a fraction ``q`` of all values at or below it (the upper
        edge of its bin once bins are wider than one cycle); None if empty."""
        total = int(self.counts.sum())
        if total == 0:
            return None
        rank = max(1, int(np.ceil(q * total)))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        return index * self.width + self.width - 1


class Replay:
    """Feeds trace chunks to a device and accumulates the read-latency statistics."""

    def __init__(self, device: Device, caches: CacheHierarchy | None = None):
        self.device = device
        self.caches = caches
        self.requests = 0
        self.reads = 0
        self.read_latency_sum = 0.0
        self.histogram = CycleHistogram()
        self.end_cycle = 0.0

    def feed(self, chunk: MemRequests) -> None:
        if self.caches is not None:
            self.caches.access(chunk.addresses, chunk.is_write)
            memory = self.caches.memory
            assert memory.origin is not None
            chunk = MemRequests(chunk.cycles[memory.origin], memory.addresses, memory.is_write)
            if not len(chunk):
                return
        done, latency = self.device.service_in_cycles(chunk.cycles, chunk.addresses,
                                                      chunk.is_write)
        reads = latency[~chunk.is_write]
        self.requests += len(chunk)
        self.reads += int(reads.size)
        self.read_latency_sum += float(reads.sum())
        self.histogram.add(np.ceil(reads - 1e-9).astype(np.int64))
        self.end_cycle = max(self.end_cycle, float(np.max(done)))

    def summary(self) -> dict[str, Any]:
        """Requests, reads and writes; mean and p99 read latency in cycles and ns; bandwidth;
        the device's row-buffer counters and energy (with its parts); cycles simulated; and,
        with caches, each level's statistics."""
        cycle_s = self.device.cycle_s
        sim_s = self.end_cycle * cycle_s
        stats = self.device.stats(elapsed_s=sim_s)
        mean = self.read_latency_sum / self.reads if self.reads else None
        p99 = self.histogram.quantile(0.99)
        moved = stats["bytes_read"] + stats["bytes_written"]
        result: dict[str, Any] = {
            "requests": self.requests,
            "reads": self.reads,
            "writes": self.requests - self.reads,
            "read_latency_mean_cycles": mean,
            "read_latency_p99_cycles": p99,
            "read_latency_mean_ns": None if mean is None else mean * cycle_s * 1e9,
            "read_latency_p99_ns": None if p99 is None else p99 * cycle_s * 1e9,
            "bandwidth_gbps": moved / sim_s / 1e9 if sim_s > 0 else 0.0,
        }
        result.update({k: int(stats[k]) for k in ROW_KEYS if k in stats})
        result["energy_j"] = float(stats["energy_j"])
        result.update({k: float(v) for k, v in stats.items()
                       if k.startswith("energy_") and k.endswith("_j") and k != "energy_j"})
        result["sim_cycles"] = int(np.ceil(self.end_cycle))
        if self.caches is not None:
            result["levels"] = self.caches.stats()
        return result
