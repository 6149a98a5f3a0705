"""The discrete-event engine: each query is one SimPy process walking the system's stages.

Stages of a query (one SimPy event each, never one per lookup):

1. ``cache``: the software cache looks up every row (compiled kernel; takes no simulated time).
2. ``fetch``: rows not in the compute tier (cache misses, or all rows of remote tables without
   a cache) are read from the tables' tier and moved over the link. The link is a SimPy
   resource held for ``max(serialisation, memory time)``: memory reads and link transfer are
   pipelined; the link latency follows. A software cache fetches all misses before pooling
   starts (as FBGEMM's UVM cache prefetches); behind a hardware cache
   (``system.cache.hardware``) fetch and pooling overlap and the query waits for both.
3. ``pool``: the compute tier serves the reads of the bags' rows (cache hits and filled misses,
   or local tables), the cache fills (writes) and the pooled outputs (writes); then the
   processor's fixed costs (``compute.query_overhead`` per query, ``call_overhead`` per
   table, ``bag_overhead`` per bag, ``lookup_overhead`` per lookup, ``lookup_chain_latency``
   per row of each table's longest bag) are added.

Devices keep timeline state between calls, so concurrent queries contend for channels; links
contend through their SimPy resources. Arrivals are a closed loop (``concurrency`` queries in
flight) or an open loop (Poisson at ``qps``).
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
    unloaded_s: list[float] = field(default_factory=list)

    def add(self, q: Query) -> None:
        self.ids.append(q.id)
        self.arrival_s.append(q.arrival_s)
        self.finish_s.append(q.finish_s)
        self.lookups.append(q.global_rows.size)
        self.hits.append(q.hits)
        self.unloaded_s.append(q.unloaded_s)

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
        self.link_busy = {name: simpy.Resource(self.env, capacity=1) for name in system.links}
        self.rng = np.random.default_rng(run.seed)
        self.log = QueryLog()
        self._next_id = 0
        compute = system.tiers[system.compute_tier]
        out_bytes = np.repeat(system.layout.row_bytes, meta.batch_size)
        out_bytes = -(-out_bytes // compute.granularity) * compute.granularity
        self.output_sizes = out_bytes
        self.output_addresses = system.layout.output_base + np.concatenate(
            [[0], np.cumsum(out_bytes)[:-1]])

    def run(self) -> QueryLog:
        arrivals = self.run_cfg.arrivals
        if arrivals.mode == "closed":
            for _ in range(arrivals.concurrency):
                self.env.process(self._closed_loop_client())
        else:
            self.env.process(self._poisson_source(arrivals.qps))
        self.env.run()
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

    def _serve(self, q: Query):
        system, env = self.system, self.env
        hit = slot = None
        if system.cache is not None:
            hit, slot = system.cache.lookup(q.global_rows)
            q.hits = int(np.count_nonzero(hit))
            remote = ~hit
        elif system.tables_local:
            q.hits = q.global_rows.size
            remote = None
        else:
            remote = np.ones(q.global_rows.size, dtype=bool)
        if remote is not None and remote.any():
            fetch = env.process(self._fetch(q, remote))
            if not system.overlap_fetch:
                yield fetch
            yield from self._pool(q, hit, slot)
            yield fetch
        else:
            yield from self._pool(q, hit, slot)
        q.unloaded_s = (max(q.fetch_unloaded_s, q.pool_unloaded_s) if system.overlap_fetch
                        else q.fetch_unloaded_s + q.pool_unloaded_s)
        if self.functional is not None:
            self.functional.check(q.batch, q.global_rows, hit, slot)
        q.finish_s = env.now
        self.log.add(q)
        if self.on_query_done is not None:
            self.on_query_done(q)

    def _fetch(self, q: Query, remote: np.ndarray):
        system, env = self.system, self.env
        tier = system.tiers[system.table_tier]
        assert system.table_link is not None
        link = system.links[system.table_link]
        sizes = q.row_bytes[remote]
        memory_done, moved = tier.access(env.now, q.table_addresses[remote], sizes)
        payload = int(sizes.sum())
        link.record(payload)
        serialise = link.transfer_time(payload)
        with self.link_busy[system.table_link].request() as turn:
            yield turn
            yield env.timeout(max(serialise, memory_done - env.now))
        yield env.timeout(link.spec.latency)
        q.fetch_unloaded_s = max(serialise, tier.unloaded_time(moved)) + link.spec.latency

    def _pool(self, q: Query, hit: np.ndarray | None, slot: np.ndarray | None):
        system, env = self.system, self.env
        compute = system.tiers[system.compute_tier]
        addresses = [self.output_addresses]
        sizes = [self.output_sizes]
        writes = [np.ones(self.output_sizes.size, dtype=bool)]
        if slot is not None:
            slot_addr = slot * system.layout.slot_bytes
            filled = ~hit
            addresses += [slot_addr, slot_addr[filled]]
            sizes += [q.row_bytes, q.row_bytes[filled]]
            writes += [np.zeros(slot.size, dtype=bool), np.ones(int(filled.sum()), dtype=bool)]
        elif system.tables_local:
            addresses.append(q.table_addresses)
            sizes.append(q.row_bytes)
            writes.append(np.zeros(q.table_addresses.size, dtype=bool))
        done, moved = compute.access(env.now, np.concatenate(addresses), np.concatenate(sizes),
                                     np.concatenate(writes))
        overhead = self._processor_time(q)
        yield env.timeout(done - env.now + overhead)
        q.pool_unloaded_s = compute.unloaded_time(moved) + overhead

    def _processor_time(self, q: Query) -> float:
        """Fixed pooling costs of the processor: per query, table call, bag and lookup."""
        costs = self.system.compute
        batch = q.batch
        longest_bags = int(batch.lengths().max(axis=1).sum()) if batch.num_lookups else 0
        return (costs.query_overhead + batch.num_tables * costs.call_overhead
                + batch.num_tables * batch.batch_size * costs.bag_overhead
                + batch.num_lookups * costs.lookup_overhead
                + longest_bags * costs.lookup_chain_latency)
