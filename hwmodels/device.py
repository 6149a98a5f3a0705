"""Memory devices that serve individual requests: the interface of DRAM, SCM and SSD models.

A ``Device`` is built from a validated spec at one fidelity level and serves arrays of
requests in one compiled call. Each request moves ``request_bytes`` (a DRAM burst, an SCM media
line, an SSD page) at a byte address. Arrival times must not decrease, within a call and
across calls; the device keeps its state (open rows, bank and bus ready times, queues, write
buffers) between calls, so later requests queue behind earlier ones.

``DEVICES`` maps a spec kind (``dram``, ``scm``, ``ssd``) to the function that builds its
model: ``make_device(kind, spec, fidelity)``. Each model module registers itself there.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from embsim.registry import Registry

DEVICES: Registry[Callable[[Any, str], Device]] = Registry("device kind")


class Device(ABC):
    """A request-level memory device model (one fidelity level of one device kind)."""

    kind: ClassVar[str]
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

    @abstractmethod
    def stats(self, elapsed_s: float | None = None) -> dict[str, float]:
        """Counters since construction, with at least ``requests``, ``reads``, ``writes``,
        ``bytes_read``, ``bytes_written`` and ``energy_j``. Background energy covers
        ``elapsed_s`` (default: up to the last completion)."""

    @abstractmethod
    def unloaded_read_latency_s(self) -> float:
        """Arrival-to-completion time of one read on an idle device at its best case (a lower
        bound of every read's latency)."""


DEVICE_MODULES = {"dram": "hwmodels.dram", "scm": "hwmodels.scm", "ssd": "hwmodels.ssd"}
"""The module of each device kind, which registers its model here and its spec in
``hwmodels.specs.SPECS`` (imported on first use)."""


def make_device(kind: str, spec: Any, fidelity: str, *, source: str | None = None) -> Device:
    """The model of a ``kind`` device at ``fidelity`` (an InputError lists what is known)."""
    for module in DEVICE_MODULES.values():
        importlib.import_module(module)
    return DEVICES.get(kind, source=source, field="kind")(spec, fidelity)
