"""A memory tier served by a request-level device model (DRAM, SCM or SSD).

``DeviceTier`` gives a ``hwmodels.device.Device`` the tier interface the simulator uses
(``MemoryModel.access``): each access of ``size`` bytes at a byte address becomes one request
per ``request_bytes`` unit it touches (a row read becomes its bursts, its SCM lines or its SSD
pages), all arriving when the stage starts; the stage ends when the last completes. A block
device read through software (an SSD: its kind's ``block_reads``) reads the blocks one stage
needs once each; byte-addressable memories serve every row's requests.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hwmodels.device import Device
from hwmodels.memory import Tier, units_touched
from hwmodels.specs import MemorySpec

TABLE_ALIGNMENT = 4096
"""Tables start on page boundaries in every device tier."""

DEVICE_STATS = ("row_hits", "row_misses", "row_conflicts", "activates", "precharges",
                "refreshes", "media_bytes_read", "media_bytes_written", "read_modify_writes",
                "pages_read")
"""Device counters copied into the results as ``<counter>_<tier>`` where a device has them."""


@njit(cache=True)
def _expand(addresses, count, unit, flags, units, unit_flags):
    """Fill ``units`` with the start address of each access's ``count`` blocks, in order, and
    ``unit_flags`` with its access's flag (one pass: no repeated index arrays)."""
    j = 0
    for i in range(addresses.size):
        first = addresses[i] // unit
        for k in range(count[i]):
            units[j] = (first + k) * unit
            unit_flags[j] = flags[i]
            j += 1


def touched_requests(addresses: np.ndarray, sizes: np.ndarray, unit: int,
                     flags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``touched_units``, and each block's access's flag (``flags``: one bool per access)."""
    addresses = np.asarray(addresses, dtype=np.int64)
    if np.shape(flags) != addresses.shape:
        raise ValueError(f"{np.shape(flags)} flags for {addresses.shape} accesses")
    count = units_touched(addresses, sizes, unit)
    flat = np.ascontiguousarray(count, dtype=np.int64).ravel()
    units = np.empty(int(flat.sum()), dtype=np.int64)
    unit_flags = np.empty(units.size, dtype=np.bool_)
    _expand(np.ascontiguousarray(addresses).ravel(), flat, unit,
            np.ascontiguousarray(flags, dtype=np.bool_).ravel(), units, unit_flags)
    return units, count, unit_flags


def touched_units(addresses: np.ndarray, sizes: np.ndarray,
                  unit: int) -> tuple[np.ndarray, np.ndarray]:
    """Start address of every ``unit``-byte block each access touches, access by access, and
    how many blocks each access touches."""
    units, count, _ = touched_requests(addresses, sizes, unit,
                                       np.zeros(np.shape(addresses), dtype=np.bool_))
    return units, count


class DeviceTier(Tier):
    """The tier interface over a ``Device``: its requests, bytes, energy and counters.

    ``spec`` summarises the device (capacity, peak bandwidth, best-case read latency, request
    size, table alignment) for code that sizes and reports tiers."""

    def __init__(self, device: Device, *, block_reads: bool):
        summary = MemorySpec(capacity=device.capacity, bandwidth=device.peak_bandwidth,
                             latency=device.unloaded_read_latency_s(),
                             access_granularity=device.request_bytes,
                             interleave=TABLE_ALIGNMENT)
        super().__init__(summary)
        self.device = device
        self.fidelity = device.fidelity
        self.block_reads = block_reads

    def access(self, now_s: float, addresses: np.ndarray, sizes: np.ndarray,
               write: np.ndarray | None = None) -> tuple[float, int]:
        if addresses.size == 0:
            return now_s, 0
        sizes = np.broadcast_to(sizes, addresses.shape).astype(np.int64)
        flags = np.zeros(addresses.size, dtype=bool) if write is None else write
        units, _, is_write = touched_requests(addresses, sizes, self.granularity, flags)
        requested = int(sizes.sum())
        if self.block_reads:
            keyed = np.unique(units * 2 + is_write)
            units, is_write = keyed // 2, (keyed % 2).astype(bool)
            _, first = np.unique(addresses, return_index=True)
            requested = int(sizes[first].sum())
        finish = self.device.finish(now_s, units, is_write)
        return finish, self._count(units.size, is_write, requested)

    def count_reads(self, requests: int, requested: int) -> int:
        """Count reads a caller served on the device directly (a near-memory unit's bursts):
        ``requests`` requests for ``requested`` bytes; returns the bytes they moved."""
        return self._count(requests, np.zeros(0, dtype=bool), requested)

    def _count(self, requests: int, is_write: np.ndarray, requested: int) -> int:
        """Add a call's requests to the counters; returns the bytes it moved."""
        moved = requests * self.granularity
        written = int(np.count_nonzero(is_write)) * self.granularity
        self.requests += requests
        self.bytes_requested += requested
        self.bytes_written += written
        self.bytes_read += moved - written
        return moved

    def unloaded_time(self, nbytes: float) -> float:
        """Bytes over the device's peak bandwidth: no device moves data faster."""
        return nbytes / self.spec.bandwidth if nbytes else 0.0

    @property
    def energy_j(self) -> float:
        return float(self.device.stats()["energy_j"])

    def counters(self) -> dict[str, float]:
        stats = self.device.stats()
        return {name: stats[name] for name in DEVICE_STATS if name in stats}
