"""Timing models of a memory tier, one per fidelity level, behind one ``access`` interface.

``access(now_s, addresses, sizes, write)`` serves a whole stage's requests in one vectorised
call and returns when the last one completes. Models keep their timeline state between calls,
so requests of later calls queue behind earlier ones (contention between concurrent queries).

Fidelity levels (the kind ``memory`` of ``hwmodels.device``):

- ``analytic``: ``latency + bytes / bandwidth``, no state. Ignores contention between calls,
  channel imbalance, row buffers, refresh and read/write turnaround.
- ``fast``: requests are spread over ``channels`` by address (``interleave``-byte units); each
  channel is a bus of ``bandwidth / channels`` with a busy-until time kept across calls.
  Ignores banks, row buffers, refresh, turnaround and command timing.
- ``detailed``: runs ``fast`` (the kind's fallback rule): a generic tier has no commands to
  time; device tiers (``hwmodels.tier``, kinds ``dram``, ``scm``, ``ssd``) bring command-level
  timing.

Every access moves the whole ``access_granularity`` units it touches at its address (a 176 B
row starting 32 B into a 64 B line touches four lines): ``bytes = requests x granularity``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from numba import njit

from hwmodels.device import DeviceKind, register_kind
from hwmodels.int_division import log2_if_power_of_two, quotient
from hwmodels.specs import MemorySpec


class Tier(ABC):
    """What the simulator asks of every memory tier: timing of a stage's accesses, counts.

    ``spec`` is a ``MemorySpec`` (for device tiers, a summary: capacity, peak bandwidth,
    request size, table alignment). ``access`` serves a stage; ``unloaded_time`` bounds it.
    """

    fidelity: str

    def __init__(self, spec: MemorySpec):
        self.spec = spec
        self.granularity = int(spec.access_granularity)
        self.requests = 0
        self.bytes_requested = 0
        self.bytes_read = 0
        self.bytes_written = 0

    @property
    def bytes_total(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    @abstractmethod
    def energy_j(self) -> float:
        """Energy the tier spent so far."""

    def counters(self) -> dict[str, float]:
        """Device counters for the results (row hits, activates, ...); none by default."""
        return {}

    @abstractmethod
    def access(self, now_s: float, addresses: np.ndarray, sizes: np.ndarray,
               write: np.ndarray | None = None) -> tuple[float, int]:
        """Serve accesses of ``sizes`` bytes at byte ``addresses``: (finish time, bytes moved).
        ``write`` flags the writes (all reads when None)."""

    @abstractmethod
    def unloaded_time(self, nbytes: float) -> float:
        """Time to move ``nbytes`` on an idle tier: the lower bound of every access."""


def units_touched(addresses: np.ndarray, sizes: np.ndarray, unit: int) -> np.ndarray:
    """How many ``unit``-byte blocks each access of ``sizes`` bytes at ``addresses`` touches
    (none for an empty access)."""
    addresses = addresses.astype(np.int64, copy=False)
    sizes = np.asarray(sizes)
    shift = log2_if_power_of_two(unit)
    if shift < 0 or not np.issubdtype(sizes.dtype, np.integer):
        return np.where(sizes > 0, (addresses + sizes - 1) // unit - addresses // unit + 1, 0)
    starts, lengths = np.broadcast_arrays(addresses, sizes)
    count = _units_touched_shifted(np.ascontiguousarray(starts).ravel(),
                                   np.ascontiguousarray(lengths, dtype=np.int64).ravel(), shift)
    return count.reshape(starts.shape)


@njit(cache=True)
def _units_touched_shifted(addresses: np.ndarray, sizes: np.ndarray, shift: int) -> np.ndarray:
    """``units_touched`` for a unit of ``1 << shift`` bytes, in one pass of shifts (numpy's
    version takes several passes of 64-bit divisions)."""
    out = np.empty(addresses.size, dtype=np.int64)
    for i in range(addresses.size):
        size = sizes[i]
        out[i] = ((addresses[i] + size - 1) >> shift) - (addresses[i] >> shift) + 1 if size > 0 \
            else 0
    return out


class MemoryModel(Tier):
    """A generic tier: bandwidth, latency and channels, whole ``access_granularity`` units."""

    fidelity: ClassVar[str]

    @property
    def energy_j(self) -> float:
        return self.bytes_total * 8 * self.spec.energy_per_bit

    def access(self, now_s: float, addresses: np.ndarray, sizes: np.ndarray,
               write: np.ndarray | None = None) -> tuple[float, int]:
        """Each access moves the granularity units it touches."""
        if addresses.size == 0:
            return now_s, 0
        units = units_touched(addresses, np.broadcast_to(sizes, addresses.shape),
                              self.granularity)
        moved = units * self.granularity
        written = int(moved[write].sum()) if write is not None else 0
        total = int(moved.sum())
        self.requests += int(units.sum())
        self.bytes_requested += int(np.sum(np.broadcast_to(sizes, addresses.shape)))
        self.bytes_written += written
        self.bytes_read += total - written
        return self._finish(now_s, addresses, moved, total), total

    def unloaded_time(self, nbytes: float) -> float:
        return self.spec.latency + nbytes / self.spec.bandwidth if nbytes else 0.0

    @abstractmethod
    def _finish(self, now_s: float, addresses: np.ndarray, moved: np.ndarray,
                total: int) -> float:
        """Completion time of accesses moving ``moved`` bytes each (``total`` in all)."""


class AnalyticMemory(MemoryModel):
    """Closed form: latency plus bytes over peak bandwidth; no queueing between calls."""

    fidelity = "analytic"

    def _finish(self, now_s: float, addresses: np.ndarray, moved: np.ndarray,
                total: int) -> float:
        return now_s + self.unloaded_time(total)


@njit(cache=True)
def bytes_per_channel(addresses: np.ndarray, moved: np.ndarray, interleave: int,
                      channels: int) -> np.ndarray:
    """Bytes each channel carries when accesses are split at ``interleave``-byte boundaries.

    An access's first unit takes one division (a shift for a power-of-two interleave, a
    float reciprocal with an exact correction for the channel); its next units go to the
    next channels in turn."""
    out = np.zeros(channels, dtype=np.int64)
    shift = log2_if_power_of_two(interleave)
    reciprocal = 1.0 / channels
    for i in range(addresses.size):
        addr = addresses[i]
        remaining = moved[i]
        if remaining <= 0:
            continue
        unit = addr >> shift if shift >= 0 else addr // interleave
        channel = (unit % channels if unit >= 1 << 50
                   else unit - quotient(unit, channels, reciprocal) * channels)
        end = (unit + 1) * interleave
        while remaining > 0:
            chunk = min(remaining, end - addr)
            out[channel] += chunk
            addr += chunk
            remaining -= chunk
            end += interleave
            channel = channel + 1 if channel + 1 < channels else 0
    return out


class ChannelMemory(MemoryModel):
    """Per-channel buses with busy-until state: bandwidth contention and channel imbalance."""

    fidelity = "fast"

    def __init__(self, spec: MemorySpec):
        super().__init__(spec)
        self.channel_bandwidth = spec.bandwidth / spec.channels
        self.busy_until = np.zeros(spec.channels)

    def _finish(self, now_s: float, addresses: np.ndarray, moved: np.ndarray,
                total: int) -> float:
        if self.spec.channels == 1:             # one channel carries every byte
            per_channel = np.array([total], dtype=np.int64)
        else:
            per_channel = bytes_per_channel(addresses.astype(np.int64, copy=False),
                                            moved.astype(np.int64, copy=False),
                                            int(self.spec.interleave), self.spec.channels)
        used = per_channel > 0
        start = np.maximum(self.busy_until[used], now_s)
        done = start + per_channel[used] / self.channel_bandwidth
        self.busy_until[used] = done
        return float(done.max()) + self.spec.latency


MEMORY = register_kind(DeviceKind(
    name="memory", spec=MemorySpec, levels={"analytic": AnalyticMemory, "fast": ChannelMemory},
    fallback={"detailed": "fast"}, request_level=False))
