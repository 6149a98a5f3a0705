"""Storage-class memory (Intel Optane DC PMem-like), kind ``scm``.

The host reads and writes ``line_bytes`` (64 B) lines; the media works in ``media_line_bytes``
(256 B, the XPLine). Several DIMMs are interleaved every ``interleave`` bytes (4 KiB in App
Direct interleaved mode). Each DIMM has a read pipe and a write pipe to its media, each with
a busy-until time: a media line read occupies the read pipe ``media_line / read_bandwidth``, a
media line write the write pipe ``media_line / write_bandwidth`` (bandwidths per DIMM, in
media bytes, so the host sees less bandwidth when its requests are amplified).

Each DIMM has a buffer of ``write_buffer`` bytes: an LRU set of media lines, each with a mask
of the host lines it holds valid and a dirty flag.

- A write to a buffered line merges into it (a buffer hit); otherwise it takes the least
  recently used entry. When a dirty line leaves the buffer it is written to the media, after a
  media read of the whole line (a read-modify-write) if it is not fully valid. A write
  completes ``write_latency`` after it arrives, or after the write-back that made room for it
  starts (back-pressure: sustained writes get the media write bandwidth, no more).
- A read of a host line the buffer holds valid is a buffer hit (no media access). Otherwise
  the whole media line is read (and buffered, fully valid, so a later partial write-back needs
  no media read); the read completes ``read_latency`` after its read-pipe slot starts.
  ASSUMPTION: on the DIMM, lines fetched by reads sit in a read buffer (the XPPrefetcher's)
  and written lines in the XPBuffer; their split is not public, so one LRU buffer holds both.
  A buffer hit is taken to cost the same ``read_latency`` (no separate figure is published).

Fidelity levels:

- ``fast``: the state model above, per request, in one compiled loop.
- ``detailed``: runs ``fast`` (the kind's fallback rule). ``fast`` already keeps every
  buffer's exact occupancy and contents and every DIMM's pipes; below that sit the DDR-T
  request/grant protocol and the memory controller's queues, whose timings Intel has not
  published.
- ``analytic``: no buffer. Within one call, requests to the same media line share one media
  access (distinct lines read, distinct lines written, and a media read for each written line
  that the call does not fill); each DIMM's read and write pipe then serves its requests one
  at a time in arrival order, each taking an equal share of the call's media time
  (``hwmodels.fifo``). Read-modify-write reads occupy the read pipe after the call's reads.
  Ignores merging across calls, buffer capacity and back-pressure.

Energy: media bytes read and written times their pJ/bit; no background power.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from numba import njit
from pydantic import Field, ValidationInfo, field_validator

from embsim.units import Time
from hwmodels.counting_device import CountingDevice
from hwmodels.device import DeviceKind, register_kind
from hwmodels.fifo import fifo_starts
from hwmodels.spec_checks import whole_bytes, whole_multiple
from hwmodels.specs import (
    NonNegativeEnergy,
    NonNegativeTime,
    PositiveBandwidth,
    PositiveSize,
    Spec,
)

PositiveTime = Annotated[Time, Field(gt=0)]
MAX_LINES_PER_MEDIA_LINE = 62
"""Host lines per media line at most: their valid mask is one int64."""


class ScmSpec(Spec):
    """One socket of Optane-PMem-like DIMMs: sizes in bytes, bandwidths per DIMM in bytes/s."""

    dimms: Annotated[int, Field(gt=0)]
    dimm_capacity: PositiveSize
    line_bytes: PositiveSize = 64.0
    media_line_bytes: PositiveSize = 256.0
    interleave: PositiveSize = 4096.0
    write_buffer: PositiveSize
    read_latency: NonNegativeTime
    write_latency: NonNegativeTime
    read_bandwidth: PositiveBandwidth
    write_bandwidth: PositiveBandwidth
    tCK: PositiveTime
    read_energy_per_bit: NonNegativeEnergy = 0.0
    write_energy_per_bit: NonNegativeEnergy = 0.0

    @field_validator("line_bytes")
    @classmethod
    def _whole_line(cls, value: float, info: ValidationInfo) -> float:
        return whole_bytes(value, info)

    @field_validator("media_line_bytes")
    @classmethod
    def _media_line(cls, value: float, info: ValidationInfo) -> float:
        whole_multiple(value, info, "line_bytes")
        line = info.data.get("line_bytes")
        if line is not None and value / line > MAX_LINES_PER_MEDIA_LINE:
            raise ValueError(f"media_line_bytes may hold at most {MAX_LINES_PER_MEDIA_LINE} "
                             f"host lines, got {value / line:g}")
        return value

    @field_validator("interleave", "write_buffer")
    @classmethod
    def _whole_media_lines(cls, value: float, info: ValidationInfo) -> float:
        return whole_multiple(value, info, "media_line_bytes")

    @property
    def lines_per_media_line(self) -> int:
        return int(self.media_line_bytes // self.line_bytes)

    def derived(self) -> dict[str, float]:
        """Figures that follow from the parameters (``embsim presets show`` prints them)."""
        amplification = self.lines_per_media_line
        return {
            "capacity": self.dimms * self.dimm_capacity,
            "request_bytes": self.line_bytes,
            "peak_read_bandwidth": self.dimms * self.read_bandwidth,
            "peak_write_bandwidth": self.dimms * self.write_bandwidth,
            "random_line_read_bandwidth": self.dimms * self.read_bandwidth / amplification,
            "random_line_write_bandwidth": self.dimms * self.write_bandwidth / amplification,
            "read_latency_s": self.read_latency,
            "write_latency_s": self.write_latency,
            "write_buffer_lines_per_dimm": self.write_buffer / self.media_line_bytes,
            "media_line_read_energy_j": self.media_line_bytes * 8 * self.read_energy_per_bit,
            "media_line_write_energy_j": self.media_line_bytes * 8 * self.write_energy_per_bit,
        }



# Indices of the counters the kernels update.
MEDIA_READS, MEDIA_WRITES, READ_MODIFY_WRITES, BUFFER_HITS = range(4)
EMPTY = -1


@njit(cache=True, inline="always")
def _find(tags, stamps, d, line):
    """Slot of ``line`` in DIMM ``d``'s buffer (or -1), and the slot to replace otherwise:
    an empty one (stamp -1) or the least recently used."""
    victim = 0
    for slot in range(tags.shape[1]):
        if tags[d, slot] == line:
            return slot, slot
        if stamps[d, slot] < stamps[d, victim]:
            victim = slot
    return -1, victim


@njit(cache=True, inline="always")
def _write_back(mask, full, now, d, read_free, write_free, read_service, write_service,
                counts):
    """Write a dirty line leaving DIMM ``d``'s buffer to the media (reading it first if it is
    partial); returns when its media write starts."""
    earliest = now
    if mask != full:
        start = max(now, read_free[d])
        read_free[d] = start + read_service
        counts[MEDIA_READS] += 1
        counts[READ_MODIFY_WRITES] += 1
        earliest = start + read_service
    start = max(earliest, write_free[d])
    write_free[d] = start + write_service
    counts[MEDIA_WRITES] += 1
    return start


@njit(cache=True)
def serve_buffered(arrival, addresses, is_write, out, tags, masks, dirty, stamps, read_free,
                   write_free, counts, clock, line_bytes, media_line, interleave,
                   read_service, write_service, read_latency, write_latency):
    """The ``fast`` model: per-DIMM LRU line buffers and read/write pipes (module docstring).

    Writes completion times into ``out``; returns the advanced LRU clock."""
    dimms = tags.shape[0]
    full = (1 << (media_line // line_bytes)) - 1
    for i in range(arrival.size):
        now = arrival[i]
        addr = addresses[i]
        line = addr // media_line
        d = (addr // interleave) % dimms
        bit = 1 << ((addr % media_line) // line_bytes)
        clock += 1
        found, victim = _find(tags, stamps, d, line)
        if is_write[i]:
            ready = now
            slot = found
            if found >= 0:
                counts[BUFFER_HITS] += 1
            else:
                slot = victim
                if dirty[d, slot]:
                    ready = _write_back(masks[d, slot], full, now, d, read_free, write_free,
                                        read_service, write_service, counts)
                tags[d, slot] = line
                masks[d, slot] = 0
            masks[d, slot] |= bit
            dirty[d, slot] = True
            stamps[d, slot] = clock
            out[i] = ready + write_latency
        elif found >= 0 and masks[d, found] & bit:
            counts[BUFFER_HITS] += 1
            stamps[d, found] = clock
            out[i] = now + read_latency
        else:
            start = max(now, read_free[d])
            read_free[d] = start + read_service
            counts[MEDIA_READS] += 1
            out[i] = start + read_latency
            slot = found
            if found < 0:
                slot = victim
                if dirty[d, slot]:
                    _write_back(masks[d, slot], full, now, d, read_free, write_free,
                                read_service, write_service, counts)
                tags[d, slot] = line
                dirty[d, slot] = False
            masks[d, slot] = full
            stamps[d, slot] = clock
    return clock


class ScmDevice(CountingDevice):
    """Common state and counters of the SCM fidelity levels."""

    def __init__(self, spec: ScmSpec):
        super().__init__(spec, request_bytes=int(spec.line_bytes), cycle_s=spec.tCK,
                         capacity=int(spec.dimms * spec.dimm_capacity),
                         peak_bandwidth=spec.dimms * spec.read_bandwidth)
        self.media_line = int(spec.media_line_bytes)
        self.interleave = int(spec.interleave)
        self.read_service = spec.media_line_bytes / spec.read_bandwidth
        self.write_service = spec.media_line_bytes / spec.write_bandwidth
        self.read_free = np.zeros(spec.dimms)
        self.write_free = np.zeros(spec.dimms)
        self.counts = np.zeros(4, dtype=np.int64)

    def stats(self, elapsed_s: float | None = None) -> dict[str, float]:
        """Counters since construction (``elapsed_s`` is unused: no background power)."""
        media_read = int(self.counts[MEDIA_READS]) * self.media_line
        media_written = int(self.counts[MEDIA_WRITES]) * self.media_line
        return {
            **self.host_counts(),
            "media_bytes_read": media_read,
            "media_bytes_written": media_written,
            "read_modify_writes": int(self.counts[READ_MODIFY_WRITES]),
            "write_buffer_hits": int(self.counts[BUFFER_HITS]),
            "energy_j": 8 * (media_read * self.spec.read_energy_per_bit
                             + media_written * self.spec.write_energy_per_bit),
        }

    def unloaded_read_latency_s(self) -> float:
        return self.spec.read_latency


class BufferedScm(ScmDevice):
    """Per-DIMM line buffers with exact LRU contents, and per-DIMM read and write pipes."""

    fidelity = "fast"

    def __init__(self, spec: ScmSpec):
        super().__init__(spec)
        slots = int(spec.write_buffer // spec.media_line_bytes)
        self.tags = np.full((spec.dimms, slots), EMPTY, dtype=np.int64)
        self.masks = np.zeros((spec.dimms, slots), dtype=np.int64)
        self.dirty = np.zeros((spec.dimms, slots), dtype=np.bool_)
        self.stamps = np.full((spec.dimms, slots), EMPTY, dtype=np.int64)
        self.clock = 0

    def _serve(self, arrival_s: np.ndarray, addresses: np.ndarray,
               is_write: np.ndarray) -> np.ndarray:
        out = np.empty(arrival_s.size)
        s = self.spec
        self.clock = serve_buffered(
            arrival_s, addresses, is_write, out, self.tags, self.masks, self.dirty, self.stamps,
            self.read_free, self.write_free, self.counts, self.clock, self.request_bytes,
            self.media_line, self.interleave, self.read_service, self.write_service,
            s.read_latency, s.write_latency)
        return out


class AnalyticScm(ScmDevice):
    """Per-call media traffic in closed form, served by each DIMM's pipes in arrival order."""

    fidelity = "analytic"

    def _serve(self, arrival_s: np.ndarray, addresses: np.ndarray,
               is_write: np.ndarray) -> np.ndarray:
        s = self.spec
        line = addresses // self.media_line
        dimm = (addresses // self.interleave) % s.dimms
        host_line = addresses // self.request_bytes
        done = np.empty(arrival_s.size)
        for d in np.unique(dimm):
            here = dimm == d
            reads = here & ~is_write
            writes = here & is_write
            read_lines = np.unique(line[reads]).size
            written = np.unique(line[writes])
            # host lines of each written media line: fewer than a full set means a media read
            filled = np.unique(host_line[writes]) // s.lines_per_media_line
            per_line = np.bincount(np.searchsorted(written, filled), minlength=written.size)
            partial = int(np.count_nonzero(per_line < s.lines_per_media_line))
            self.counts[MEDIA_READS] += read_lines + partial
            self.counts[MEDIA_WRITES] += written.size
            self.counts[READ_MODIFY_WRITES] += partial
            self.counts[BUFFER_HITS] += (np.count_nonzero(reads) - read_lines
                                         + np.count_nonzero(writes) - written.size)
            self._pipe(arrival_s, reads, read_lines * self.read_service, s.read_latency,
                       self.read_free, d, done)
            self._pipe(arrival_s, writes, written.size * self.write_service, s.write_latency,
                       self.write_free, d, done)
            first = arrival_s[here][0]
            self.read_free[d] = max(self.read_free[d], first) + partial * self.read_service
        return done

    @staticmethod
    def _pipe(arrival_s: np.ndarray, chosen: np.ndarray, busy_s: float, latency_s: float,
              free: np.ndarray, d: int, done: np.ndarray) -> None:
        """Serve the ``chosen`` requests on one pipe, ``busy_s`` of media time shared evenly."""
        count = int(np.count_nonzero(chosen))
        if count == 0:
            return
        service = np.full(count, busy_s / count)
        starts = fifo_starts(arrival_s[chosen], service, free[d])
        free[d] = starts[-1] + service[-1]
        done[chosen] = starts + latency_s


SCM = register_kind(DeviceKind(
    name="scm", spec=ScmSpec, levels={"analytic": AnalyticScm, "fast": BufferedScm},
    fallback={"detailed": "fast"}))
