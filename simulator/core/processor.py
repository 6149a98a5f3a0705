"""The processor's own structures that every lookup passes: a TLB and a private cache.

Both are optional parts of ``system.compute`` (``tlb``, ``private_cache``) for CPU models;
``embsim calibrate`` fits them on a CPU. Each is a set-associative LRU ``HardwareCache``
served in query order over the lookups' addresses: a row's byte address in its home tier,
with the tier's index in the high bits (a process's address space keeps tiers apart).

- TLB: one access per lookup, at its row's page. A miss adds ``miss_time`` to pooling: the
  page walk, as much of it as the processor does not overlap with other work. The walk reads
  the page's 8-byte entry (entries of one tier's pages side by side, apart from all data)
  through the private cache just before the row's lines; an entry that misses it (or every
  entry, without a private cache) adds ``walk_miss_time``.
- Private cache: one access per line of the row. A row whose lines all hit is *near*: it is
  read there, at ``line_time`` per line, and not from the compute tier. Rows that miss fill
  it (their lines were read through it).

Threads (``compute.threads``): each operator call cuts its bags into that many contiguous,
equal ranges, one per core, as ATen's ``parallel_for`` does; each core has its own TLB and
private cache and sees only its range's lookups, in order. A table that fits one core's cache
is thus read from the LLC once per core, and rows reused across a call's two halves are not
found in the other core's cache.

What it ignores: hardware prefetchers, large pages, the page-walk caches, and the lines the
pooled outputs occupy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodels.cache.hardware import HardwareCache
from hwmodels.tier import touched_units
from simulator.core.config import ComputeConfig

TIER_SHIFT = 48
"""Bit where a lookup's tier index starts in the addresses the processor sees."""
PAGE_TABLE = 1 << 62
"""Where page-table entries start in the addresses the private cache sees (above all data)."""
ENTRY_BYTES = 8
"""Bytes of one page-table entry (x86-64, ARMv8)."""


@dataclass
class ProcessorCost:
    """What the processor's structures did to one query's lookups."""

    near: np.ndarray            # per lookup: read from the private cache
    seconds: float              # pooling time the TLB misses and near lines add
    tlb_misses: int = 0
    near_lines: int = 0
    walk_misses: int = 0        # page walks whose entry missed the private cache


class Processor:
    """The TLB and private cache of ``system.compute`` (either may be absent), one of each per
    thread (``compute.threads``)."""

    def __init__(self, cfg: ComputeConfig, source: str | None = None):
        self.cfg = cfg
        self.tlbs: list[HardwareCache] = []
        self.privates: list[HardwareCache] = []
        for thread in range(cfg.threads):
            if cfg.tlb is not None:
                t = cfg.tlb
                self.tlbs.append(HardwareCache(t.entries * t.page, t.associativity, t.page,
                                               "lru", name=f"tlb {thread}", source=source,
                                               field="system.compute.tlb"))
            if cfg.private_cache is not None:
                c = cfg.private_cache
                self.privates.append(HardwareCache(c.size, c.ways, c.line, "lru",
                                                   name=f"private cache {thread}",
                                                   source=source,
                                                   field="system.compute.private_cache"))
        self.lookups = self.tlb_misses = self.near_rows = self.walk_misses = 0

    def serve(self, tiers: np.ndarray, addresses: np.ndarray, row_bytes: np.ndarray,
              bags: np.ndarray | None = None, batch_size: int = 1) -> ProcessorCost:
        """Pass one query's lookups (tier index, home address, row size) through the TLB and
        the private cache, in order. With several threads, ``bags`` (each lookup's bag: table
        x ``batch_size`` + sample) says whose: each table call's samples are cut into
        ``threads`` equal, contiguous ranges, one per thread (ATen's ``parallel_for``)."""
        virtual = (tiers.astype(np.int64) << TIER_SHIFT) + addresses
        threads = self.cfg.threads
        if threads == 1 or bags is None:
            return self._count(self._serve_thread(0, virtual, row_bytes))
        chunk = -(-batch_size // threads)
        thread = (bags % batch_size) // chunk
        near = np.zeros(virtual.size, dtype=bool)
        total = ProcessorCost(near, 0.0)
        for index in range(threads):
            mine = thread == index
            if not mine.any():
                continue
            cost = self._serve_thread(index, virtual[mine], row_bytes[mine])
            near[mine] = cost.near
            total.seconds += cost.seconds
            total.tlb_misses += cost.tlb_misses
            total.near_lines += cost.near_lines
            total.walk_misses += cost.walk_misses
        return self._count(total)

    def _count(self, cost: ProcessorCost) -> ProcessorCost:
        self.lookups += int(cost.near.size)
        self.tlb_misses += cost.tlb_misses
        self.walk_misses += cost.walk_misses
        self.near_rows += int(np.count_nonzero(cost.near))
        return cost

    def _serve_thread(self, thread: int, virtual: np.ndarray,
                      row_bytes: np.ndarray) -> ProcessorCost:
        """One thread's lookups (virtual addresses, row sizes) through its TLB and private
        cache, in order."""
        tlb = self.tlbs[thread] if self.tlbs else None
        private = self.privates[thread] if self.privates else None
        near = np.zeros(virtual.size, dtype=bool)
        walked = np.zeros(virtual.size, dtype=bool)
        seconds, lines, walk_misses = 0.0, 0, 0
        if tlb is not None and virtual.size:
            walked = ~tlb.access(virtual)
        if private is not None and virtual.size:
            assert self.cfg.private_cache is not None
            line_addresses, count = touched_units(virtual, row_bytes, private.line)
            hit, entry_hit = self._through_private(private, line_addresses, count, virtual,
                                                   walked)
            starts = np.concatenate([[0], np.cumsum(count)[:-1]])
            near = np.add.reduceat(hit.astype(np.int64), starts) == count
            lines = int(count[near].sum())
            seconds += lines * self.cfg.private_cache.line_time
            walk_misses = int(entry_hit.size - np.count_nonzero(entry_hit))
        else:
            walk_misses = int(np.count_nonzero(walked))
        misses = int(np.count_nonzero(walked))
        if self.cfg.tlb is not None:
            seconds += misses * self.cfg.tlb.miss_time + walk_misses * self.cfg.tlb.walk_miss_time
        return ProcessorCost(near, seconds, misses, lines, walk_misses)

    def _through_private(self, private: HardwareCache, line_addresses: np.ndarray,
                         count: np.ndarray, virtual: np.ndarray,
                         walked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each row line and each walked lookup's page-table entry hit the private
        cache, passed through it in order (a lookup's entry just before its row's lines)."""
        if self.cfg.tlb is None or not walked.any():
            return private.access(line_addresses), np.zeros(0, dtype=bool)
        page_shift = int(self.cfg.tlb.page).bit_length() - 1
        entries = PAGE_TABLE + (virtual[walked] >> page_shift) * ENTRY_BYTES
        total = count + walked
        first = np.cumsum(total) - total
        is_entry = np.zeros(int(total.sum()), dtype=bool)
        is_entry[first[walked]] = True
        stream = np.empty(is_entry.size, dtype=np.int64)
        stream[is_entry] = entries // private.line * private.line
        stream[~is_entry] = line_addresses
        hit = private.access(stream)
        return hit[~is_entry], hit[is_entry]

    def counters(self) -> dict[str, float]:
        """Results columns: TLB misses and private-cache (near) rows, over every lookup served
        (a warm-up pass included)."""
        out: dict[str, float] = {}
        lookups = self.lookups or float("nan")
        if self.tlbs:
            out |= {"tlb_misses": self.tlb_misses, "tlb_miss_rate": self.tlb_misses / lookups,
                    "tlb_walk_misses": self.walk_misses}
        if self.privates:
            out |= {"private_cache_rows": self.near_rows,
                    "private_cache_hit_rate": self.near_rows / lookups}
        return out
