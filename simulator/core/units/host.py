"""Unit kind ``host``: the processor that runs the embedding operator (a GPU's SMs, a CPU's
cores), configured by ``system.compute``.

It reads directly the tier it sits at (``compute.tier``: HBM, or the CPU's LLC-backed DRAM),
where it keeps the row cache's slots and writes the pooled outputs; rows elsewhere are moved to
it over their tier's link first (``stages.fetch``). A software row cache fetches every miss
before pooling starts (as FBGEMM's UVM cache prefetches); behind a hardware cache
(``system.cache.hardware``) fetching and pooling overlap and the unit waits for both, and a
row read from it touches the lines it touches at home (a hardware cache keeps lines, not rows).

Pooling reads the bags' rows in the host's tier (cache slots, rows kept there), writes the
cache fills and every bag's output, then adds the processor's fixed costs
(``compute.query_overhead`` per query, ``call_overhead`` per table, ``bag_overhead`` per bag,
``lookup_overhead`` per lookup it pools and ``element_overhead`` per element of those rows,
together at least ``lookup_floor`` per lookup, ``remainder_overhead`` per lookup into a table
whose ``dim`` is not a whole number of ``vector_elements`` and ``half_remainder_overhead`` more
where such a row is of 16-bit floats and not in the private cache, ``lookup_chain_latency`` per row
of each table's longest bag) and its TLB and private cache's (``simulator.core.processor``).
Rows the cache serves without keeping (slot -1: FBGEMM's conflict misses, a pinned cache's
misses) are pooled as fetched. The host runs the operator over every table and bag, whichever
units pooled their rows, so the per-query, per-table and per-bag costs are paid in full; the
others scale with its share.

What it ignores: contention between concurrent queries for the processor's own cycles (each
query's pooling time is its own; its memory traffic does contend).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.core.config import ComputeConfig
from simulator.core.fabric import Fabric, Process
from simulator.core.placement import align_each
from simulator.core.processor import Processor
from simulator.core.query import Query
from simulator.core.units import HOST, ComputeUnit, UnitSite
from simulator.core.units.core_mapping import Cores
from simulator.core.units.pool_requests import pool_requests

if TYPE_CHECKING:
    from simulator.core.system import Layout


class HostUnit(ComputeUnit):
    """The host processor: fetches, pools, writes outputs and combines partial sums."""

    kind = "host"

    def __init__(self, cfg: ComputeConfig, site: UnitSite, layout: Layout, hardware_cache: bool,
                 source: str | None = None):
        names = site.table_tiers
        super().__init__(HOST, 0, names.index(cfg.tier) if cfg.tier in names else None)
        self.cfg = cfg
        self.tier = site.tiers[cfg.tier]
        self.layout = layout
        self.row_elements = site.row_elements
        self.lookup_extra = cfg.lookup_extra(site.row_elements)  # per table's lookup
        self.half_remainder = cfg.half_remainder_tables(site.row_elements, site.row_dtypes)
        self.hardware_cache = hardware_cache
        self.processor = (Processor(cfg, source) if cfg.tlb is not None
                          or cfg.private_cache is not None else None)
        self.cores = Cores(cfg, site, source) if cfg.cores is not None else None
        self.combined = 0           # partial vectors from other units added into outputs
        self.received_bytes = 0     # their bytes, from the bags' tables and the units' shares
        self.output_sizes = align_each(np.repeat(layout.row_bytes, site.batch_size),
                                       self.tier.granularity)
        self.output_addresses = layout.output_base + np.concatenate(
            [[0], np.cumsum(self.output_sizes)[:-1]])

    def remote(self, q: Query) -> np.ndarray:
        """Per lookup, whether the host pools it but must fetch it first (not in its tier, not
        a cache hit)."""
        return (q.unit == self.index) & ~q.local & ~q.hit

    def serve(self, q: Query, share: np.ndarray | slice, fabric: Fabric) -> Process:
        env = fabric.env
        if q.fetches and not self.hardware_cache:
            yield env.all_of(q.fetches)
        pooled = yield from self._pool(q, share, fabric)
        if q.fetches:
            yield env.all_of(q.fetches)
        fetched = q.fetch_unloaded_s
        return max(fetched, pooled) if self.hardware_cache else fetched + pooled

    def _pool(self, q: Query, share: np.ndarray | slice, fabric: Fabric) -> Process:
        """Read the share's rows in the host's tier, write fills and outputs, add the
        processor's costs; returns the unloaded time."""
        env = fabric.env
        slot, hit, local = q.slot[share], q.hit[share], q.local[share]
        row_bytes, home = q.row_bytes[share], q.home_addresses[share]
        cost = (self.processor.serve(q.tier[share], home, row_bytes, *self._bags(q, share))
                if self.processor is not None else None)
        read = ~cost.near if cost is not None else np.ones(slot.size, dtype=bool)
        if self.cores is not None:
            read &= ~self.cores.unread(q, share)    # in its core's buffer (strategy l1)
        far_half = self._far_half_remainders(q, share, read)
        overhead = self.fixed_costs(q, share, far_half)
        if cost is not None:
            overhead += cost.seconds   # near rows (not read) come from the private cache
        if far_half is not None and self.cores is None:
            overhead += int(np.count_nonzero(far_half)) * self.cfg.half_remainder_overhead
        # a hardware cache keeps lines: a row sits in its slot at its home line offset
        line = self.tier.granularity if self.hardware_cache else 0
        addresses, sizes, writes = pool_requests(
            self.output_addresses, self.output_sizes, slot, hit, local, read, row_bytes, home,
            self.layout.slot_base, self.layout.slot_bytes, line)
        done, moved = self.tier.access(env.now, addresses, sizes, writes)
        self.pooled_lookups += slot.size
        yield env.timeout(done - env.now + overhead)
        return self.tier.unloaded_time(moved) + overhead

    def combine(self, q: Query, sent: dict[int, tuple[np.ndarray, np.ndarray]],
                fabric: Fabric) -> Process:
        """Receive the partial vectors other units sent (``sent``: unit -> the bytes of each of
        its partials and where in its bag's output it goes, bag by bag as in
        ``q.partial_bags``) and add each into its bag's output: the partials land in the host's
        tier and are read back, the parts of the outputs they cover are read and written, and
        each costs ``partial_overhead``. Returns the unloaded time."""
        env = fabric.env
        bags = np.concatenate([q.partial_bags[index] for index in sent])
        received = np.concatenate([part for part, _ in sent.values()])
        offsets = np.concatenate([offset for _, offset in sent.values()])
        self.combined += bags.size
        self.received_bytes += int(received.sum())
        sizes = received            # the tier rounds each access up to whole units itself
        landing = self.layout.partial_base + np.arange(bags.size) * int(self.output_sizes.max())
        outputs = self.output_addresses[bags] + offsets
        addresses = np.concatenate([landing, landing, outputs, outputs])
        every = np.concatenate([sizes, sizes, sizes, sizes])
        writes = np.repeat(np.array([True, False, False, True]), bags.size)
        done, moved = self.tier.access(env.now, addresses, every, writes)
        overhead = bags.size * self.cfg.partial_overhead
        yield env.timeout(done - env.now + overhead)
        return self.tier.unloaded_time(moved) + overhead

    def warm(self, q: Query, share: np.ndarray | slice) -> None:
        if self.processor is not None:
            self.processor.serve(q.tier[share], q.home_addresses[share], q.row_bytes[share],
                                 *self._bags(q, share))

    def _bags(self, q: Query, share: np.ndarray | slice) -> tuple[np.ndarray | None, int]:
        """The share's lookups' bags and the batch size, where the processor splits a call's
        bags over threads (None where it has one)."""
        if self.cfg.threads == 1:
            return None, q.batch.batch_size
        return q.bags()[share], q.batch.batch_size

    def _far_half_remainders(self, q: Query, share: np.ndarray | slice,
                             read: np.ndarray) -> np.ndarray | None:
        """Per lookup of the share, whether it pays ``half_remainder_overhead``: a row of 16-bit
        floats that is not whole vectors, read from beyond the private cache (``read``: per
        lookup, neither the private cache nor its core's buffer held it); None where no table
        pays it."""
        if not self.half_remainder.any():
            return None
        per_table = np.diff(q.batch.table_bounds())
        return np.repeat(self.half_remainder, per_table)[share] & read

    def slot_addresses(self, slots: np.ndarray) -> np.ndarray:
        """Byte addresses of cache slots in the host's tier."""
        return self.layout.slot_base + slots * self.layout.slot_bytes

    def fixed_costs(self, q: Query, share: np.ndarray | slice,
                    far_half: np.ndarray | None = None) -> float:
        """The processor's costs of one query: per query, table and bag in full (it runs the
        operator over all of them), per lookup, per element and along each table's longest bag
        for the lookups it pools itself; with cores, also ``half_remainder_overhead`` for those
        ``far_half`` marks, as each core's work (without, ``_pool`` adds it after the TLB's and
        private cache's time)."""
        costs = self.cfg
        batch = q.batch
        operator = (costs.query_overhead + batch.num_tables * costs.call_overhead
                    + batch.num_tables * batch.batch_size * costs.bag_overhead)
        if self.cores is not None:      # the per-lookup costs: the slowest core's
            extra = None if far_half is None else far_half * costs.half_remainder_overhead
            return operator + self.cores.time(q, share, extra)
        if isinstance(share, slice):
            lookups = batch.num_lookups
            per_table = np.diff(batch.table_bounds())
            longest_bags = int(batch.lengths().max(axis=1).sum()) if lookups else 0
        else:
            lookups = share.size
            bags = q.bags()[share]
            per_table = np.bincount(bags // batch.batch_size, minlength=batch.num_tables)
            per_bag = np.bincount(bags, minlength=batch.offsets.size - 1)
            longest_bags = (int(per_bag.reshape(batch.num_tables, -1).max(axis=1).sum())
                            if lookups else 0)
        return (operator + lookups * costs.lookup_overhead
                + int(per_table @ self.row_elements) * costs.element_overhead
                + float(per_table @ self.lookup_extra)
                + longest_bags * costs.lookup_chain_latency)

    def counters(self) -> dict[str, float]:
        cores = self.cores.counters() if self.cores is not None else {}
        return {"pooled_lookups": self.pooled_lookups} | cores

