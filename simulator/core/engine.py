"""The discrete-event engine: arrivals, one SimPy process per query, and the log.

Each query walks the stages its system assembled (``System.stages``, see
``simulator.core.stages``), one after another; a stage is one SimPy process step per query,
never one per lookup, and returns its share of the query's unloaded latency. The engine knows
nothing of what the stages do: devices keep timeline state between calls, so concurrent
queries contend for channels, banks and buses, and links contend through the run's ``Fabric``.
Arrivals are a closed loop (``concurrency`` queries in flight) or an open loop (Poisson at
``qps``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import simpy

from simulator.core.config import RunConfig
from simulator.core.fabric import Fabric
from simulator.core.functional import FunctionalReference
from simulator.core.query import Query, make_query
from simulator.core.system import System
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
    embedding_s: list[float] = field(default_factory=list)     # with system.dense: see
    bottom_s: list[float] = field(default_factory=list)        # Query and docs/dense.md
    top_s: list[float] = field(default_factory=list)

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
        self.embedding_s.append(q.embedding_s)
        self.bottom_s.append(q.bottom_s)
        self.top_s.append(q.top_s)

    def latency_s(self) -> np.ndarray:
        return np.asarray(self.finish_s) - np.asarray(self.arrival_s)


class Engine:
    """Replays batches as queries through a ``System``; ``run`` returns the ``QueryLog``."""

    def __init__(self, system: System, meta: TraceMeta, batches: Iterator[Batch],
                 run: RunConfig, functional: FunctionalReference | None = None,
                 on_query_done: Callable[[Query], None] | None = None):
        self.system = system
        self.row_base = meta.row_base
        self.batches = batches
        self.run_cfg = run
        self.functional = functional
        self.on_query_done = on_query_done
        self.env = simpy.Environment()
        self.fabric = Fabric(self.env, system)
        self.rng = np.random.default_rng(run.seed)
        self.log = QueryLog()
        self.started = 0
        self.warm_cache_lookups = 0         # the row cache's lookups in a warm-up pass

    def warm(self, batches: Iterator[Batch]) -> None:
        """Pass every batch through the stages' state (row cache, TLB, private cache),
        untimed, so the timed replay finds them as a measurement's later passes do."""
        for batch in batches:
            q = make_query(-1, batch, 0.0, self.system, self.row_base)
            for stage in self.system.stages:
                stage.warm(q)
            self.warm_cache_lookups += q.cache_lookups
            if self.functional is not None:        # its copy of the cache fills too
                self.functional.warm(q)

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
        query = make_query(self.started, batch, self.env.now, self.system, self.row_base)
        self.started += 1
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
        for stage in self.system.stages:
            q.unloaded_s += yield from stage.run(q, self.fabric)
        if self.functional is not None:
            self.functional.check(q)
        q.finish_s = self.env.now
        self.log.add(q)
        if self.on_query_done is not None:
            self.on_query_done(q)
