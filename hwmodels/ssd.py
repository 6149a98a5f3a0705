"""NVMe SSD, kind ``ssd``: 4 KiB page reads through a queue, a controller, dies and channels.

A request for a byte address reads (or writes) its ``page_bytes`` page. Its path:

1. **Queue**: at most ``queue_depth`` requests are outstanding; later ones wait, in arrival
   order, until one completes.
2. **Controller**: it starts at most ``read_iops`` reads (``write_iops`` writes) per second:
   consecutive starts are at least ``1 / iops`` apart.
3. **Die**: page ``p`` lives on die ``p mod (channels x dies_per_channel)``, on channel
   ``die mod channels``; a die reads one page at a time in ``die_read_time`` (tR; the page
   register is taken as double-buffered, so the die is free again after tR).
4. **Channel**: the channel bus moves the page in ``page_bytes / channel_bandwidth``.
5. **Front end**: the rest of the unloaded read latency (controller firmware, ECC, NVMe and
   PCIe, the host's interrupt path), with no contention. With ``read_latency`` only, it is the
   constant ``read_latency - tR - transfer``. With ``read_latency_p99`` too, it is a lognormal
   fitted so that unloaded reads have exactly that mean and 99th percentile, drawn from a
   numpy Generator seeded with ``seed``.

Writes, when ``write_latency``, ``write_iops`` and ``write_bandwidth`` are given, take their
own path: the controller's write IOPS gate, then a device-wide write pipe of
``write_bandwidth`` (the SSD's DRAM buffer absorbs them; programming is not modeled), and
complete ``write_latency`` after they enter it. Without them, writes follow the read path.

Fidelity levels:

- ``fast``: the path above per request: queue slots (a min-heap of completions), the
  controller's next start time, per-die and per-channel busy-until times, all kept across
  calls, in one compiled loop.
- ``detailed``: runs ``fast`` (the kind's fallback rule): the spec has no finer timing (NAND
  command sequences, plane parallelism, garbage collection, read retries) for a lower level to
  obey.
- ``analytic``: one server in arrival order (``hwmodels.fifo``) whose service per read is the
  tightest of the four throughput bounds (``1 / read_iops``, ``page / channel bandwidth of all
  channels``, ``tR / dies``, ``mean latency / queue_depth``), each read completing the mean
  read latency after it starts. Ignores which die or channel a page is on and latency spread.

Energy: bytes read and written times their pJ/bit (from active power over throughput in the
presets); no idle power. Trace cycle stamps are nanoseconds (``cycle_s`` = 1 ns): an SSD has
no memory clock.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Annotated, Any

import numpy as np
from numba import njit
from pydantic import Field, ValidationInfo, field_validator

from hwmodels.counting_device import CountingDevice
from hwmodels.device import DeviceKind, register_kind
from hwmodels.fifo import fifo_starts
from hwmodels.spec_checks import whole_bytes
from hwmodels.specs import (
    NonNegativeEnergy,
    NonNegativeTime,
    PositiveBandwidth,
    PositiveSize,
    Spec,
)

PositiveInt = Annotated[int, Field(gt=0)]
PositiveRate = Annotated[float, Field(gt=0)]
Z99 = NormalDist().inv_cdf(0.99)
WRITE_PATH = ("write_latency", "write_iops", "write_bandwidth")
TRACE_CYCLE_S = 1e-9


class SsdSpec(Spec):
    """An NVMe SSD: sizes in bytes, rates in requests/s, bandwidths in bytes/s."""

    capacity: PositiveSize
    page_bytes: PositiveSize = 4096.0
    queue_depth: PositiveInt
    read_iops: PositiveRate
    channels: PositiveInt
    dies_per_channel: PositiveInt
    channel_bandwidth: PositiveBandwidth
    die_read_time: NonNegativeTime
    read_latency: NonNegativeTime
    read_latency_p99: NonNegativeTime | None = None
    write_latency: NonNegativeTime | None = None
    write_iops: PositiveRate | None = None
    write_bandwidth: PositiveBandwidth | None = Field(default=None, validate_default=True)
    read_energy_per_bit: NonNegativeEnergy = 0.0
    write_energy_per_bit: NonNegativeEnergy = 0.0
    seed: int = 0

    @field_validator("page_bytes")
    @classmethod
    def _whole_page(cls, value: float, info: ValidationInfo) -> float:
        return whole_bytes(value, info)

    @field_validator("read_latency")
    @classmethod
    def _covers_media(cls, value: float, info: ValidationInfo) -> float:
        media = _media_time(info.data)
        if media is not None and value < media:
            raise ValueError(f"read_latency ({value:.4g} s) must be at least die_read_time + "
                             f"page_bytes / channel_bandwidth = {media:.4g} s")
        return value

    @field_validator("read_latency_p99")
    @classmethod
    def _fits_lognormal(cls, value: float | None, info: ValidationInfo) -> float | None:
        mean, media = info.data.get("read_latency"), _media_time(info.data)
        if value is None or mean is None or media is None:
            return value
        if not mean < value:
            raise ValueError(f"read_latency_p99 ({value:.4g} s) must exceed read_latency "
                             f"({mean:.4g} s)")
        ratio = (value - media) / (mean - media)
        if 2 * math.log(ratio) > Z99**2:
            raise ValueError("no lognormal front-end time has this mean and p99: "
                             f"(p99 - media) / (mean - media) = {ratio:.3g} exceeds "
                             f"{math.exp(Z99**2 / 2):.3g}")
        return value

    @field_validator("write_bandwidth")
    @classmethod
    def _write_path_whole(cls, value: float | None, info: ValidationInfo) -> float | None:
        given = [name for name in WRITE_PATH[:2] if info.data.get(name) is not None]
        if value is not None:
            given.append("write_bandwidth")
        if 0 < len(given) < len(WRITE_PATH):
            missing = [name for name in WRITE_PATH if name not in given]
            raise ValueError(f"give all of {', '.join(WRITE_PATH)} or none; "
                             f"missing {', '.join(missing)}")
        return value

    @property
    def dies(self) -> int:
        return self.channels * self.dies_per_channel

    @property
    def transfer_time(self) -> float:
        """Seconds a channel takes to move one page."""
        return self.page_bytes / self.channel_bandwidth

    @property
    def media_time(self) -> float:
        """Seconds a page read spends at the media: the die read, then the channel transfer."""
        return self.die_read_time + self.transfer_time

    @property
    def min_read_latency(self) -> float:
        """The fastest read: media time alone when the front end varies, else the constant
        read latency."""
        return self.media_time if self.read_latency_p99 is not None else self.read_latency

    @property
    def has_write_path(self) -> bool:
        return self.write_latency is not None

    def frontend_lognormal(self) -> tuple[float, float] | None:
        """(mu, sigma) of the lognormal front-end time, or None when it is constant."""
        if self.read_latency_p99 is None:
            return None
        media = self.media_time
        mean, p99 = self.read_latency - media, self.read_latency_p99 - media
        sigma = Z99 - math.sqrt(Z99**2 - 2 * math.log(p99 / mean))
        return math.log(mean) - sigma**2 / 2, sigma

    def read_service_s(self) -> float:
        """Seconds per read at the tightest throughput bound (the analytic model's server)."""
        return max(1 / self.read_iops, self.page_bytes / (self.channels * self.channel_bandwidth),
                   self.die_read_time / self.dies, self.read_latency / self.queue_depth)

    def write_service_s(self) -> float:
        """Seconds per write at its tightest bound (the read one without a write path)."""
        if not self.has_write_path:
            return self.read_service_s()
        return max(1 / self.write_iops, self.page_bytes / self.write_bandwidth,
                   self.write_latency / self.queue_depth)

    def derived(self) -> dict[str, float]:
        """Figures that follow from the parameters (``embsim presets show`` prints them)."""
        page = self.page_bytes
        return {
            "request_bytes": page,
            "dies": self.dies,
            "peak_read_iops": 1 / self.read_service_s(),
            "peak_read_bandwidth": page / self.read_service_s(),
            "iops_bound_bandwidth": self.read_iops * page,
            "channel_bound_bandwidth": self.channels * self.channel_bandwidth,
            "die_bound_bandwidth": self.dies * page / self.die_read_time
            if self.die_read_time else math.inf,
            "queue_bound_bandwidth": self.queue_depth * page / self.read_latency
            if self.read_latency else math.inf,
            "read_latency_mean_s": self.read_latency,
            "read_latency_min_s": self.min_read_latency,
            "page_read_energy_j": page * 8 * self.read_energy_per_bit,
            "page_write_energy_j": page * 8 * self.write_energy_per_bit,
        }


def _media_time(data: dict[str, Any]) -> float | None:
    """tR plus one page's channel transfer, from already validated fields (None if missing)."""
    try:
        return data["die_read_time"] + data["page_bytes"] / data["channel_bandwidth"]
    except KeyError:
        return None




@njit(cache=True, inline="always")
def _heap_push(heap, size, value):
    at = size
    heap[at] = value
    while at > 0:
        parent = (at - 1) // 2
        if heap[parent] <= heap[at]:
            break
        heap[at], heap[parent] = heap[parent], heap[at]
        at = parent
    return size + 1


@njit(cache=True, inline="always")
def _heap_pop(heap, size):
    """Remove the smallest value; returns the new size."""
    size -= 1
    heap[0] = heap[size]
    at = 0
    while True:
        child = 2 * at + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[at] <= heap[child]:
            break
        heap[at], heap[child] = heap[child], heap[at]
        at = child
    return size


# Slots of the scalar state array of the fast kernel.
QUEUED, LAST_ISSUE, CONTROLLER_FREE, WRITE_FREE = range(4)


@njit(cache=True)
def serve_pages(arrival, pages, is_write, frontend, out, heap, state, die_free, channel_free,
                read_gap, write_gap, die_read, transfer, write_transfer, write_latency,
                write_path):
    """The ``fast`` model (module docstring): completion time of each request into ``out``."""
    size = int(state[QUEUED])
    issue = state[LAST_ISSUE]
    controller = state[CONTROLLER_FREE]
    write_free = state[WRITE_FREE]
    dies = die_free.size
    channels = channel_free.size
    for i in range(arrival.size):
        t = max(arrival[i], issue)
        while size > 0 and heap[0] <= t:
            size = _heap_pop(heap, size)
        if size == heap.size:
            t = heap[0]
            size = _heap_pop(heap, size)
        issue = t
        if is_write[i] and write_path:
            start = max(t, controller)
            controller = start + write_gap
            enter = max(start, write_free)
            write_free = enter + write_transfer
            done = enter + write_latency
        else:
            start = max(t, controller)
            controller = start + read_gap
            die = pages[i] % dies
            channel = die % channels
            read = max(start, die_free[die])
            die_free[die] = read + die_read
            move = max(read + die_read, channel_free[channel])
            channel_free[channel] = move + transfer
            done = move + transfer + frontend[i]
        out[i] = done
        size = _heap_push(heap, size, done)
    state[QUEUED] = size
    state[LAST_ISSUE] = issue
    state[CONTROLLER_FREE] = controller
    state[WRITE_FREE] = write_free


class SsdDevice(CountingDevice):
    """Common attributes and counters of the SSD fidelity levels."""

    def __init__(self, spec: SsdSpec):
        super().__init__(spec, request_bytes=int(spec.page_bytes), cycle_s=TRACE_CYCLE_S,
                         capacity=int(spec.capacity),
                         peak_bandwidth=spec.channels * spec.channel_bandwidth)

    def stats(self, elapsed_s: float | None = None) -> dict[str, float]:
        """Counters since construction (``elapsed_s`` is unused: no idle power)."""
        counts = self.host_counts()
        return {
            **counts,
            "pages_read": self.reads,
            "pages_written": self.writes,
            "energy_j": 8 * (counts["bytes_read"] * self.spec.read_energy_per_bit
                             + counts["bytes_written"] * self.spec.write_energy_per_bit),
        }


class QueuedSsd(SsdDevice):
    """Queue slots, IOPS gate, dies and channels with busy-until state across calls."""

    fidelity = "fast"

    def __init__(self, spec: SsdSpec):
        super().__init__(spec)
        self.heap = np.zeros(spec.queue_depth)
        self.state = np.zeros(4)
        self.die_free = np.zeros(spec.dies)
        self.channel_free = np.zeros(spec.channels)
        self.rng = np.random.default_rng(spec.seed)
        self.lognormal = spec.frontend_lognormal()
        self.constant_frontend = spec.read_latency - spec.die_read_time - spec.transfer_time

    def _serve(self, arrival_s: np.ndarray, addresses: np.ndarray,
               is_write: np.ndarray) -> np.ndarray:
        s = self.spec
        if self.lognormal is None:
            frontend = np.full(arrival_s.size, self.constant_frontend)
        else:
            frontend = self.rng.lognormal(*self.lognormal, size=arrival_s.size)
        out = np.empty(arrival_s.size)
        write_path = s.has_write_path
        serve_pages(arrival_s, addresses // self.request_bytes, is_write, frontend, out,
                    self.heap, self.state, self.die_free, self.channel_free, 1 / s.read_iops,
                    1 / s.write_iops if write_path else 0.0, s.die_read_time, s.transfer_time,
                    s.page_bytes / s.write_bandwidth if write_path else 0.0,
                    s.write_latency if write_path else 0.0, write_path)
        return out

    def unloaded_read_latency_s(self) -> float:
        return self.spec.min_read_latency


class AnalyticSsd(SsdDevice):
    """One server at the tightest throughput bound, mean latency after each start."""

    fidelity = "analytic"

    def __init__(self, spec: SsdSpec):
        super().__init__(spec)
        self.busy_until_s = 0.0

    def _serve(self, arrival_s: np.ndarray, addresses: np.ndarray,
               is_write: np.ndarray) -> np.ndarray:
        s = self.spec
        write_latency = s.write_latency if s.has_write_path else s.read_latency
        service = np.where(is_write, s.write_service_s(), s.read_service_s())
        latency = np.where(is_write, write_latency, s.read_latency)
        starts = fifo_starts(arrival_s, service, self.busy_until_s)
        self.busy_until_s = float(starts[-1] + service[-1])
        return starts + latency

    def unloaded_read_latency_s(self) -> float:
        return self.spec.read_latency


SSD = register_kind(DeviceKind(
    name="ssd", spec=SsdSpec, levels={"analytic": AnalyticSsd, "fast": QueuedSsd},
    fallback={"detailed": "fast"}, block_reads=True))
