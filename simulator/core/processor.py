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

What it ignores: hardware prefetchers, the split of a private cache between cores (one cache
sees every lookup), large pages, the page-walk caches, and the lines the pooled outputs
occupy.
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
    """The TLB and private cache of ``system.compute`` (either may be absent)."""

    def __init__(self, cfg: ComputeConfig, source: str | None = None):
        self.cfg = cfg
        self.tlb = self.private = None
        if cfg.tlb is not None:
            t = cfg.tlb
            self.tlb = HardwareCache(t.entries * t.page, t.associativity, t.page, "lru",
                                     name="tlb",
                                     source=source, field="system.compute.tlb")
        if cfg.private_cache is not None:
            c = cfg.private_cache
            self.private = HardwareCache(c.size, c.ways, c.line, "lru", name="private cache",
                                         source=source, field="system.compute.private_cache")
        self.lookups = self.tlb_misses = self.near_rows = self.walk_misses = 0

    def serve(self, tiers: np.ndarray, addresses: np.ndarray,
              row_bytes: np.ndarray) -> ProcessorCost:
        """Pass one query's lookups (tier index, home address, row size) through the TLB and
        the private cache, in order."""
        virtual = (tiers.astype(np.int64) << TIER_SHIFT) + addresses
        near = np.zeros(virtual.size, dtype=bool)
        walked = np.zeros(virtual.size, dtype=bool)
        seconds, lines, walk_misses = 0.0, 0, 0
        if self.tlb is not None and virtual.size:
            walked = ~self.tlb.access(virtual)
        if self.private is not None and virtual.size:
            assert self.cfg.private_cache is not None
            line_addresses, count = touched_units(virtual, row_bytes, self.private.line)
            hit, entry_hit = self._through_private(line_addresses, count, virtual, walked)
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
        self.lookups += int(virtual.size)
        self.tlb_misses += misses
        self.walk_misses += walk_misses
        self.near_rows += int(np.count_nonzero(near))
        return ProcessorCost(near, seconds, misses, lines, walk_misses)

    def _through_private(self, line_addresses: np.ndarray, count: np.ndarray,
                         virtual: np.ndarray, walked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each row line and each walked lookup's page-table entry hit the private
        cache, passed through it in order (a lookup's entry just before its row's lines)."""
        assert self.private is not None
        if self.cfg.tlb is None or not walked.any():
            return self.private.access(line_addresses), np.zeros(0, dtype=bool)
        page_shift = int(self.cfg.tlb.page).bit_length() - 1
        entries = PAGE_TABLE + (virtual[walked] >> page_shift) * ENTRY_BYTES
        total = count + walked
        first = np.cumsum(total) - total
        is_entry = np.zeros(int(total.sum()), dtype=bool)
        is_entry[first[walked]] = True
        stream = np.empty(is_entry.size, dtype=np.int64)
        stream[is_entry] = entries // self.private.line * self.private.line
        stream[~is_entry] = line_addresses
        hit = self.private.access(stream)
        return hit[~is_entry], hit[is_entry]

    def counters(self) -> dict[str, float]:
        """Results columns: TLB misses and private-cache (near) rows, over every lookup served
        (a warm-up pass included)."""
        out: dict[str, float] = {}
        lookups = self.lookups or float("nan")
        if self.tlb is not None:
            out |= {"tlb_misses": self.tlb_misses, "tlb_miss_rate": self.tlb_misses / lookups,
                    "tlb_walk_misses": self.walk_misses}
        if self.private is not None:
            out |= {"private_cache_rows": self.near_rows,
                    "private_cache_hit_rate": self.near_rows / lookups}
        return out
