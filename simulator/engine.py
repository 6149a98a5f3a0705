"""The discrete-event engine: each query is one SimPy process walking the system's stages.

Stages of a query (one SimPy event each, never one per lookup):

1. ``cache``: the row cache looks up the rows of the tiers it caches (compiled kernel; takes
   no simulated time). Rows in the compute tier itself are read where they are.
2. ``fetch``: rows not in the compute tier and not cache hits are read from their home tier
   (one process per tier, in parallel) and moved over that tier's link. A link is a SimPy
   resource per direction, held for ``max(serialisation, memory time)``: memory reads and
   link transfer are pipelined; the link latency follows. A software cache fetches all
   misses before pooling starts (as FBGEMM's UVM cache prefetches); behind a hardware cache
   (``system.cache.hardware``) fetch and pooling overlap and the query waits for both.
3. ``pool``: the compute tier serves the reads of the bags' rows (cache slots, rows kept in
   the compute tier), the cache fills (writes) and the pooled outputs (writes); then the
   processor's fixed costs (``compute.query_overhead`` per query, ``call_overhead`` per
   table, ``bag_overhead`` per bag, ``lookup_overhead`` per lookup, ``lookup_chain_latency``
   per row of each table's longest bag) are added. Rows the cache serves without keeping
   (slot -1: FBGEMM's conflict misses, a pinned cache's misses) are pooled as fetched.
4. ``update`` (``run.mode: training``): each distinct row looked up is read and written back
   with its optimizer state: a cached row's weights in its slot (which becomes dirty) and its
   state at home; other rows at home, over their link. Dirty rows the query's fills evicted
   are written back to their home tier.

Devices keep timeline state between calls, so concurrent queries contend for channels, banks
and buses; links contend through their SimPy resources. Arrivals are a closed loop
(``concurrency`` queries in flight) or an open loop (Poisson at ``qps``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import simpy

from simulator.config import RunConfig
from simulator.functional import FunctionalReference
from simulator.query import Query, make_query
from simulator.system import System
from traces.batch import Batch
from traces.schema import TraceMeta


@dataclass
class QueryLog:
    """Scalars recorded per finished query (arrays of the batches are not kept)."""

    ids: list[int] = field(default_factory=list)
    arrival_s: list[float] = field(default_factory=list)
    finish_s: list[float] = field(default_factory=list)
    lookups: list[int] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)
    cache_lookups: list[int] = field(default_factory=list)
    writebacks: list[int] = field(default_factory=list)
    unloaded_s: list[float] = field(default_factory=list)
    tier_lookups: list[np.ndarray] = field(default_factory=list)

    def add(self, q: Query) -> None:
        self.ids.append(q.id)
        self.arrival_s.append(q.arrival_s)
        self.finish_s.append(q.finish_s)
        self.lookups.append(q.global_rows.size)
        self.hits.append(q.hits)
        self.cache_lookups.append(q.cache_lookups)
        self.writebacks.append(q.writeback_rows.size)
        self.unloaded_s.append(q.unloaded_s)
        self.tier_lookups.append(q.tier_lookups)

    def latency_s(self) -> np.ndarray:
        return np.asarray(self.finish_s) - np.asarray(self.arrival_s)


class Engine:
    """Replays batches as queries through a ``System``; ``run`` returns the ``QueryLog``."""

    def __init__(self, system: System, meta: TraceMeta, batches: Iterator[Batch],
                 run: RunConfig, functional: FunctionalReference | None = None,
                 on_query_done: Callable[[Query], None] | None = None):
        self.system = system
        self.meta = meta
        self.row_base = meta.row_base
        self.batches = batches
        self.run_cfg = run
        self.functional = functional
        self.on_query_done = on_query_done
        self.env = simpy.Environment()
        self.link_busy = {(name, write): simpy.Resource(self.env, capacity=1)
                          for name in system.links for write in (False, True)}
        self.rng = np.random.default_rng(run.seed)
        self.log = QueryLog()
        self._next_id = 0
        self.warm_cache_lookups = 0         # the row cache's lookups in a warm-up pass
        training_cache = system.training and system.cache is not None
        self.dirty = np.zeros(system.cache.slots, dtype=bool) if training_cache else None
        self.slot_row = None
        if training_cache:
            self.slot_row = np.full(system.cache.slots, -1, dtype=np.int64)
            slots, rows = system.cache.preloaded()
            self.slot_row[slots] = rows
        compute = system.tiers[system.compute_tier]
        out_bytes = np.repeat(system.layout.row_bytes, meta.batch_size)
        out_bytes = -(-out_bytes // compute.granularity) * compute.granularity
        self.output_sizes = out_bytes
        self.output_addresses = system.layout.output_base + np.concatenate(
            [[0], np.cumsum(out_bytes)[:-1]])

    def warm(self, batches: Iterator[Batch]) -> None:
        """Look every batch up through the caches (row cache, TLB, private cache), untimed,
        so the timed replay finds them as a measurement's later passes do."""
        system = self.system
        for batch in batches:
            q = make_query(-1, batch, 0.0, system, self.row_base)
            _, hit, slot = self._look_up(q)
            self.warm_cache_lookups += q.cache_lookups
            if self.functional is not None:        # its copy of the cache fills too
                self.functional.pooled(batch, q.global_rows, hit, slot)
            if system.processor is not None:
                system.processor.serve(q.tier, q.home_addresses, q.row_bytes)

    def run(self) -> QueryLog:
        arrivals = self.run_cfg.arrivals
        if arrivals.mode == "closed":
            for _ in range(arrivals.concurrency):
                self.env.process(self._closed_loop_client())
        else:
            self.env.process(self._poisson_source(arrivals.qps))
        try:
            self.env.run()
        except Exception as err:
            # SimPy re-raises a process's exception as a copy made from its args; the
            # original (with an InputError's field) is its cause
            raise (err.__cause__ if type(err.__cause__) is type(err) else err) from None
        return self.log

    def _next_query(self) -> Query | None:
        batch = next(self.batches, None)
        if batch is None:
            return None
        query = make_query(self._next_id, batch, self.env.now, self.system, self.row_base)
        self._next_id += 1
        return query

    def _closed_loop_client(self):
        while (query := self._next_query()) is not None:
            yield from self._serve(query)

    def _poisson_source(self, qps: float):
        while True:
            yield self.env.timeout(self.rng.exponential(1.0 / qps))
            query = self._next_query()
            if query is None:
                return
            self.env.process(self._serve(query))

    def _look_up(self, q: Query) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The cache stage: which lookups are in the compute tier, hit the cache, and their
        cache slots."""
        system = self.system
        local = q.tier == system.compute_index
        hit = np.zeros(q.global_rows.size, dtype=bool)
        slot = np.full(q.global_rows.size, -1, dtype=np.int64)
        if system.cache is not None:
            through = np.flatnonzero(system.cached[q.tier] & ~local)
            if through.size:
                hit[through], slot[through] = system.cache.lookup(q.global_rows[through])
                q.cache_lookups = through.size
                if self.dirty is not None:
                    self._evict_dirty(q, through, hit[through], slot[through])
        return local, hit, slot

    def _serve(self, q: Query):
        system, env = self.system, self.env
        local, hit, slot = self._look_up(q)
        q.hits = int(np.count_nonzero(local) + np.count_nonzero(hit))
        q.tier_lookups = np.bincount(q.tier, minlength=len(system.table_tiers))
        remote = ~local & ~hit
        fetches = [env.process(self._fetch(q, int(k), remote & (q.tier == k)))
                   for k in np.unique(q.tier[remote])]
        if fetches and not system.overlap_fetch:
            yield env.all_of(fetches)
        yield from self._pool(q, local, hit, slot)
        if fetches:
            yield env.all_of(fetches)
        q.unloaded_s = (max(q.fetch_unloaded_s, q.pool_unloaded_s) if system.overlap_fetch
                        else q.fetch_unloaded_s + q.pool_unloaded_s)
        if system.training:
            yield from self._update(q, local, slot)
            q.unloaded_s += q.update_unloaded_s
        if self.functional is not None:
            self.functional.check(q.batch, q.global_rows, hit, slot)
        q.finish_s = env.now
        self.log.add(q)
        if self.on_query_done is not None:
            self.on_query_done(q)

    def _move(self, tier_index: int, addresses: np.ndarray, sizes: np.ndarray, write: bool):
        """Process: bytes between a table tier and the compute, memory and link pipelined (the
        link, if any, is held for the longer of the two, then its latency follows). Returns the
        move's unloaded time."""
        system, env = self.system, self.env
        tier = system.tiers[system.table_tiers[tier_index]]
        memory_done, moved = tier.access(env.now, addresses, sizes,
                                         np.full(addresses.size, write))
        link_name = system.tier_links[tier_index]
        if link_name is None:
            yield env.timeout(memory_done - env.now)
            return tier.unloaded_time(moved)
        link = system.links[link_name]
        payload = int(sizes.sum())
        link.record(payload)
        serialise = link.transfer_time(payload)
        with self.link_busy[(link_name, write)].request() as turn:
            yield turn
            yield env.timeout(max(serialise, memory_done - env.now))
        yield env.timeout(link.spec.latency)
        return max(serialise, tier.unloaded_time(moved)) + link.spec.latency

    def _fetch(self, q: Query, tier_index: int, rows: np.ndarray):
        unloaded = yield from self._move(tier_index, q.home_addresses[rows], q.row_bytes[rows],
                                         write=False)
        q.fetch_unloaded_s = max(q.fetch_unloaded_s, unloaded)

    def _pool(self, q: Query, local: np.ndarray, hit: np.ndarray, slot: np.ndarray):
        system, env = self.system, self.env
        compute = system.tiers[system.compute_tier]
        addresses = [self.output_addresses]
        sizes = [self.output_sizes]
        writes = [np.ones(self.output_sizes.size, dtype=bool)]
        overhead = self._processor_time(q)
        read = np.ones(slot.size, dtype=bool)
        if system.processor is not None:
            cost = system.processor.serve(q.tier, q.home_addresses, q.row_bytes)
            read = ~cost.near          # near rows are read from the private cache
            overhead += cost.seconds
        slotted = slot >= 0
        if slotted.any():
            slot_addr = self._slot_addresses(slot[slotted])
            filled = ~hit[slotted]
            read_slot = read[slotted]
            addresses += [slot_addr[read_slot], slot_addr[filled]]
            sizes += [q.row_bytes[slotted][read_slot], q.row_bytes[slotted][filled]]
            writes += [np.zeros(int(read_slot.sum()), dtype=bool),
                       np.ones(int(filled.sum()), dtype=bool)]
        kept = local & read
        if kept.any():
            addresses.append(q.home_addresses[kept])
            sizes.append(q.row_bytes[kept])
            writes.append(np.zeros(int(kept.sum()), dtype=bool))
        done, moved = compute.access(env.now, np.concatenate(addresses), np.concatenate(sizes),
                                     np.concatenate(writes))
        yield env.timeout(done - env.now + overhead)
        q.pool_unloaded_s = compute.unloaded_time(moved) + overhead

    def _slot_addresses(self, slots: np.ndarray) -> np.ndarray:
        layout = self.system.layout
        return layout.slot_base + slots * layout.slot_bytes

    def _evict_dirty(self, q: Query, through: np.ndarray, hit: np.ndarray,
                     slot: np.ndarray) -> None:
        """Note the dirty rows this query's cache fills evict (written back in its update)."""
        filled = slot[~hit & (slot >= 0)]
        keys = q.global_rows[through][~hit & (slot >= 0)]
        assert self.dirty is not None and self.slot_row is not None
        first = np.unique(filled)
        victims = self.slot_row[first]
        dirty = self.dirty[first] & (victims >= 0)
        q.writeback_rows = victims[dirty]
        self.dirty[first] = False
        last = filled.size - 1 - np.unique(filled[::-1], return_index=True)[1]
        self.slot_row[filled[last]] = keys[last]

    def _update(self, q: Query, local: np.ndarray, slot: np.ndarray):
        """Training: read-modify-write of every row looked up and its optimizer state, where
        they are (a cached row's weights in its slot, its state at home), plus write-backs of
        dirty rows the cache evicted."""
        system, env = self.system, self.env
        _, first = np.unique(q.global_rows, return_index=True)
        kept = slot[first] >= 0
        if self.slot_row is not None:
            # a concurrent query may have evicted the row since: update it at home instead
            kept &= self.slot_row[np.maximum(slot[first], 0)] == q.global_rows[first]
        in_slot, at_home = first[kept], first[~kept]
        if self.dirty is not None:
            self.dirty[slot[in_slot]] = True
        compute_addr = [self._slot_addresses(slot[in_slot])]
        compute_size = [q.row_bytes[in_slot]]
        home_local = at_home[local[at_home]]
        compute_addr.append(q.home_addresses[home_local])
        compute_size.append(q.row_bytes[home_local] + q.state_bytes[home_local])
        # remote homes: the whole row + state for uncached rows, the state for cached ones
        uncached = at_home[~local[at_home]]
        state_only = in_slot[q.state_bytes[in_slot] > 0]
        remote = np.concatenate([uncached, state_only])
        offset = np.concatenate([np.zeros(uncached.size, dtype=np.int64),
                                 q.row_bytes[state_only]])
        size = np.concatenate([q.row_bytes[uncached] + q.state_bytes[uncached],
                               q.state_bytes[state_only]])
        moves = [env.process(self._rmw_compute(np.concatenate(compute_addr),
                                               np.concatenate(compute_size)))]
        wb_tier, wb_addr = system.placement.locate(q.writeback_rows)
        wb_size = system.placement.row_bytes_of(q.writeback_rows, system.layout.row_bytes)
        tier_of = q.tier[remote]
        for k in np.union1d(tier_of, wb_tier):
            mine = tier_of == k
            wb = wb_tier == k
            moves.append(env.process(self._rmw_home(
                int(k), q.home_addresses[remote[mine]] + offset[mine], size[mine],
                wb_addr[wb], wb_size[wb])))
        results = yield env.all_of(moves)
        q.update_unloaded_s = max(results.values())

    def _rmw_compute(self, addresses: np.ndarray, sizes: np.ndarray):
        """Process: read then write rows in the compute tier; returns its unloaded time."""
        compute = self.system.tiers[self.system.compute_tier]
        unloaded = 0.0
        for write in (False, True):
            done, moved = compute.access(self.env.now, addresses, sizes,
                                         np.full(addresses.size, write))
            yield self.env.timeout(done - self.env.now)
            unloaded += compute.unloaded_time(moved)
        return unloaded

    def _rmw_home(self, tier_index: int, addresses: np.ndarray, sizes: np.ndarray,
                  wb_addresses: np.ndarray, wb_sizes: np.ndarray):
        """Process: read then write rows at their home tier, with the write-backs; returns
        its unloaded time."""
        unloaded = 0.0
        if addresses.size:
            unloaded += yield from self._move(tier_index, addresses, sizes, write=False)
        writes = np.concatenate([addresses, wb_addresses])
        if writes.size:
            unloaded += yield from self._move(tier_index, writes,
                                              np.concatenate([sizes, wb_sizes]), write=True)
        return unloaded

    def _processor_time(self, q: Query) -> float:
        """Fixed pooling costs of the processor: per query, table call, bag and lookup."""
        costs = self.system.compute
        batch = q.batch
        longest_bags = int(batch.lengths().max(axis=1).sum()) if batch.num_lookups else 0
        return (costs.query_overhead + batch.num_tables * costs.call_overhead
                + batch.num_tables * batch.batch_size * costs.bag_overhead
                + batch.num_lookups * costs.lookup_overhead
                + longest_bags * costs.lookup_chain_latency)
