"""``embsim memtrace``: replay a raw memory-request trace through one memory device.

SYSTEM is a device preset name (kind dram, scm or ssd) or a YAML file describing a device,
optionally with a hierarchy of caches in front of it::

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
report adds each level's statistics.

``--set key=value`` then overrides any field of the device's spec. Requests arrive at their
trace cycle stamps in the device's controller clock (``Device.cycle_s``); DRAM devices replay
in whole cycles (``service_cycles``, latency at the controller, without ``frontend_latency``),
the others in seconds through ``service``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from embsim.errors import InputError
from hwmodels.cache.hierarchy import CacheHierarchy, hierarchy_from_config
from hwmodels.device import DEVICE_MODULES, Device, make_device
from hwmodels.presets import kinds_of, preset_names, resolve
from hwmodels.specs import Spec
from traces.memtrace import MEMTRACE_FORMATS, MemRequests, read_memtrace, sniff_format

DEVICE_KINDS = tuple(DEVICE_MODULES)
"""Kinds that ``make_device`` models (a SYSTEM preset must be one of them)."""
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


def parse_sets(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["ranks=2", "mapping=rochrababgco"]`` -> ``{"ranks": 2, "mapping": "rochrababgco"}``
    (values read as YAML scalars, so numbers and booleans keep their type)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected key=value, got {pair!r}", field="--set")
        try:
            overrides[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            overrides[key.strip()] = text
    return overrides


def load_device_system(arg: str, sets: dict[str, Any]) -> DeviceSystem:
    """The device named by ``arg`` (a preset name or a YAML file) with ``sets`` applied."""
    path = Path(arg)
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        return _from_file(path, sets)
    kinds = [k for k in kinds_of(arg) if k in DEVICE_KINDS]
    if not kinds:
        names = sorted({n for k in DEVICE_KINDS for n in preset_names(k)})
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
        data = yaml.safe_load(path.read_text())
        system = DeviceSystemFile.model_validate(data)
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML: {err}", source=source) from None
    except ValidationError as err:
        first = err.errors()[0]
        raise InputError(f"{first['msg']} (got {first.get('input')!r})", source=source,
                         field=".".join(str(p) for p in first["loc"]) or None) from None
    if system.kind not in DEVICE_KINDS:
        raise InputError(f"unknown device kind {system.kind!r}; expected one of: "
                         f"{', '.join(DEVICE_KINDS)}", source=source, field="kind")
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
        self.in_cycles = hasattr(device, "service_cycles")
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
        if self.in_cycles:
            done = self.device.service_cycles(chunk.cycles, chunk.addresses, chunk.is_write)
            latency = np.asarray(done - chunk.cycles, dtype=np.float64)
        else:
            arrival_s = chunk.cycles * self.device.cycle_s
            done_s = self.device.service(arrival_s, chunk.addresses, chunk.is_write)
            done = done_s / self.device.cycle_s
            latency = (done_s - arrival_s) / self.device.cycle_s
        reads = latency[~chunk.is_write]
        self.requests += len(chunk)
        self.reads += int(reads.size)
        self.read_latency_sum += float(reads.sum())
        self.histogram.add(np.ceil(reads - 1e-9).astype(np.int64))
        self.end_cycle = max(self.end_cycle, float(np.max(done)))

    def summary(self) -> dict[str, Any]:
        """The figures ``--json`` prints (see the command's help)."""
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


@click.command("memtrace")
@click.argument("system")
@click.argument("trace")
@click.option("--format", "fmt", default=None,
              help=f"Trace format: {', '.join(MEMTRACE_FORMATS.names())} [default: judged "
                   "from the first line (LD/ST: ramulator), else dramsim3].")
@click.option("--fidelity", default="detailed", show_default=True,
              help="Device model level: analytic, fast or detailed. Detailed is the default "
                   "here: replaying a raw memory trace is what the command-level model is for.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a field of the device spec (repeatable), e.g. --set ranks=2.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: requests, reads, writes, read_latency_mean_cycles, "
                   "read_latency_p99_cycles, read_latency_mean_ns, read_latency_p99_ns, "
                   "bandwidth_gbps, row_hits, row_misses, row_conflicts, activates, "
                   "precharges, refreshes (where the device counts them), energy_j and its "
                   "parts, sim_cycles; with caches, levels: each level's statistics.")
def memtrace(system: str, trace: str, fmt: str | None, fidelity: str, sets: tuple[str, ...],
             as_json: bool) -> None:
    """Replay the memory-request TRACE through the device SYSTEM (a preset or a YAML file).

    Latencies are in the device's controller cycles (the unit of the trace's cycle stamps) and
    in ns, from arrival at the controller, as DRAMsim3 and Ramulator count them: a DRAM
    preset's frontend_latency (the requester's path) is not included. The p99 is the
    nearest-rank percentile of whole cycles. sim_cycles runs from cycle 0
    to the last completion; bandwidth is the bytes moved over that time.
    """
    device_system = load_device_system(system, parse_sets(sets))
    device = make_device(device_system.kind, device_system.spec, fidelity, source="--fidelity")
    name = sniff_format(trace) if fmt is None and Path(trace).is_file() else fmt
    replay = Replay(device, device_system.caches)
    for chunk in read_memtrace(trace, name):
        replay.feed(chunk)
    result = replay.summary()
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(_render(device_system, fidelity, trace, name or "dramsim3", device, result))


def _render(system: DeviceSystem, fidelity: str, trace: str, fmt: str, device: Device,
            result: dict[str, Any]) -> str:
    def latency(key: str) -> str:
        cycles, ns = result[f"{key}_cycles"], result[f"{key}_ns"]
        return "-" if cycles is None else f"{cycles:.1f} cycles  {ns:.2f} ns"

    rows = [
        ("system", f"{system.name} ({system.kind}, {fidelity}, cycle "
                   f"{device.cycle_s * 1e9:.4g} ns)"),
        ("trace", f"{trace} ({fmt})"),
        ("requests", f"{result['requests']} ({result['reads']} reads, "
                     f"{result['writes']} writes)"),
        ("read latency mean", latency("read_latency_mean")),
        ("read latency p99", latency("read_latency_p99")),
        ("bandwidth", f"{result['bandwidth_gbps']:.3f} GB/s over {result['sim_cycles']} "
                      "cycles"),
    ]
    if "row_hits" in result:
        rows.append(("row hits", f"{result['row_hits']} (misses {result['row_misses']}, "
                                 f"conflicts {result['row_conflicts']})"))
    rows += [(k, str(result[k])) for k in ("activates", "precharges", "refreshes") if k in result]
    parts = [f"{k[len('energy_'):-2]} {v:.4g}" for k, v in result.items()
             if k.startswith("energy_") and k != "energy_j"]
    rows.append(("energy", f"{result['energy_j']:.4g} J" + (f" ({', '.join(parts)})"
                                                            if parts else "")))
    for name, level in result.get("levels", {}).items():
        rows.append((f"cache {name}", f"hit rate {level['hit_rate']:.4f} ({level['hits']} hits, "
                                      f"{level['misses']} misses, {level['evictions']} "
                                      f"evictions, {level['writebacks']} write-backs)"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
