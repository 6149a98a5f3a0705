"""Memory devices, and the one record that declares each kind of them.

A ``Device`` is built from a validated spec at one fidelity level and serves arrays of
requests in one compiled call. Each request moves ``request_bytes`` (a DRAM burst, an SCM media
line, an SSD page) at a byte address. Arrival times must not decrease, within a call and
across calls; the device keeps its state (open rows, bank and bus ready times, queues, write
buffers) between calls, so later requests queue behind earlier ones.

Every kind of memory a tier can be (``memory``: a generic bandwidth/latency tier; ``dram``,
``scm``, ``ssd``: request-level devices) is declared once, by a ``DeviceKind`` record that its
module registers in ``DEVICE_KINDS``: the spec class its presets validate against, the model of
each fidelity level it implements, the level it runs for each level it does not implement (its
fallback rule), and how a memory tier turns accesses into its requests. Everything else (the
experiment format, preset loading, ``embsim memtrace``, the tiers of a system) asks the record.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embsim.errors import InputError
from embsim.registry import Registry

FIDELITIES = ("analytic", "fast", "detailed")
"""The levels a run may ask for (``run.fidelity``); every kind serves each of them."""

KIND_MODULES = ("hwmodels.memory", "hwmodels.dram", "hwmodels.scm", "hwmodels.ssd")
"""Modules that register device kinds, imported on the first lookup (so that commands that
need no device model start without compiling any)."""


class Device(ABC):
    """A request-level memory device model (one fidelity level of one device kind)."""

    fidelity: str
    spec: Any
    request_bytes: int
    """Bytes one request moves: the device's access granularity."""
    cycle_s: float
    """Clock period of the device's controller: the unit of cycle stamps in memory traces."""
    capacity: int
    """Bytes the device holds."""
    peak_bandwidth: float
    """Bytes per second the device's data buses carry at most."""

    def __init__(self, spec: Any, *, request_bytes: int, cycle_s: float, capacity: int,
                 peak_bandwidth: float) -> None:
        self.spec = spec
        self.request_bytes = request_bytes
        self.cycle_s = cycle_s
        self.capacity = capacity
        self.peak_bandwidth = peak_bandwidth

    @abstractmethod
    def service(self, arrival_s: np.ndarray, addresses: np.ndarray,
                is_write: np.ndarray) -> np.ndarray:
        """Completion time in seconds of each request (float64 array, one per request).

        ``arrival_s`` (float64, non-decreasing, not before any earlier call's arrivals),
        ``addresses`` (int64 byte addresses; the offset within ``request_bytes`` is ignored)
        and ``is_write`` (bool) have one entry per request.
        """

    def finish(self, now_s: float, addresses: np.ndarray, is_write: np.ndarray) -> float:
        """Completion time in seconds of the last of requests that all arrive at ``now_s``
        (a tier's stage): ``service``'s latest completion. Devices override it where the
        per-request times need not be built."""
        return float(self.service(np.full(addresses.size, now_s), addresses, is_write).max())

    def service_in_cycles(self, arrival_cycles: np.ndarray, addresses: np.ndarray,
                          is_write: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(completion, latency) of each request in controller cycles, for requests stamped
        in cycles (a memory trace). Devices that schedule in whole cycles override it; this
        default runs ``service`` in seconds."""
        arrival_s = arrival_cycles * self.cycle_s
        done_s = self.service(arrival_s, addresses, is_write)
        return done_s / self.cycle_s, (done_s - arrival_s) / self.cycle_s

    @abstractmethod
    def stats(self, elapsed_s: float | None = None) -> dict[str, float]:
        """Counters since construction, with at least ``requests``, ``reads``, ``writes``,
        ``bytes_read``, ``bytes_written`` and ``energy_j``. Background energy covers
        ``elapsed_s`` (default: up to the last completion)."""

    @abstractmethod
    def unloaded_read_latency_s(self) -> float:
        """Arrival-to-completion time of one read on an idle device at its best case (a lower
        bound of every read's latency)."""


@dataclass(frozen=True)
class DeviceKind:
    """Everything embsim needs to know about one kind of memory, declared once.

    ``levels`` maps each fidelity level the kind implements to the model class built from a
    spec; ``fallback`` names, for each level of ``FIDELITIES`` it does not implement, the level
    that runs instead (recorded in the results' provenance). ``request_level`` kinds build
    ``Device`` models (``embsim memtrace`` replays them; a memory tier wraps them in
    ``hwmodels.tier.DeviceTier``); the generic ``memory`` kind builds a tier model directly.
    ``block_reads``: a stage reads each block it needs once (an SSD, read through software),
    not once per row (byte-addressable memories). ``paths``: the data paths its models offer
    (``channel``, the host's, always; DRAM adds per-rank and per-bank-group paths for
    near-memory units, see ``hwmodels.dram.model``).
    """

    name: str
    spec: type
    levels: Mapping[str, Callable[[Any], Any]]
    fallback: Mapping[str, str] = field(default_factory=dict)
    request_level: bool = True
    block_reads: bool = False
    paths: tuple[str, ...] = ("channel",)

    def __post_init__(self) -> None:
        for level in FIDELITIES:
            served = self.fallback.get(level, level)
            if served not in self.levels:
                raise ValueError(f"device kind {self.name!r} serves no model for fidelity "
                                 f"{level!r}")

    def level(self, asked: str, *, source: str | None = None,
              field: str | None = "run.fidelity") -> str:
        """The level that runs when ``asked`` is requested (its fallback, if any)."""
        if asked in self.levels:
            return asked
        if asked in self.fallback:
            return self.fallback[asked]
        raise InputError(f"unknown fidelity {asked!r}; expected one of: "
                         f"{', '.join(FIDELITIES)}", source=source, field=field)

    def model(self, spec: Any, asked: str, *, path: str = "channel",
              source: str | None = None, field: str | None = "run.fidelity") -> Any:
        """The model of ``spec`` at the level that runs for ``asked``, serving ``path``."""
        model = self.levels[self.level(asked, source=source, field=field)]
        if path == "channel":
            return model(spec)
        if path not in self.paths:
            raise InputError(f"a {self.name} device has no {path} data path; expected a kind "
                             "with one (dram)", source=source, field="kind")
        return model(spec, path=path)


def _import_kind_modules() -> None:
    for module in KIND_MODULES:
        importlib.import_module(module)


DEVICE_KINDS: Registry[DeviceKind] = Registry("device kind", load=_import_kind_modules)


def register_kind(kind: DeviceKind) -> DeviceKind:
    """Add a kind's record to ``DEVICE_KINDS`` (each model module calls this once)."""
    return DEVICE_KINDS.register(kind.name)(kind)


def device_kind(name: str, *, source: str | None = None,
                field: str | None = "kind") -> DeviceKind:
    """The record of kind ``name`` (an InputError lists the kinds known)."""
    return DEVICE_KINDS.get(name, source=source, field=field)


def request_level_kinds() -> list[str]:
    """Kinds whose models are ``Device``s (what ``embsim memtrace`` can replay)."""
    return [name for name in DEVICE_KINDS.names() if DEVICE_KINDS.get(name).request_level]


def make_device(kind: str, spec: Any, fidelity: str, *, source: str | None = None,
                field: str = "fidelity") -> Device:
    """The model of a ``kind`` device at ``fidelity`` (an InputError lists what is known;
    ``field`` names where the fidelity came from)."""
    record = device_kind(kind, source=source)
    if not record.request_level:
        raise InputError(f"kind {kind!r} is a bandwidth/latency tier, not a request-level "
                         f"device; expected one of: {', '.join(request_level_kinds())}",
                         source=source, field="kind")
    return record.model(spec, fidelity, source=source, field=field)
