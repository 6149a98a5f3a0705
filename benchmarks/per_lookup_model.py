"""The straightforward baseline: the same system in SimPy with one process per lookup.

Each lookup walks the stages on its own: a Python LRU cache lookup (one OrderedDict per set,
same set mapping and size as embsim's cache), a miss holds the link for its row and pays the
memory and link latencies, then the row is read from the compute tier. A query completes when
all its lookups have. This is what embsim's per-(query, stage) design is measured against.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
import simpy

from hwmodels.cache.kernels import set_of
from simulator.core.system import System
from traces.batch import Batch
from traces.schema import TraceMeta


class PerLookupModel:
    """SimPy model with a process per lookup; ``run`` returns the simulated time."""

    def __init__(self, system: System, meta: TraceMeta, concurrency: int):
        link_name = system.tier_links[0]
        assert system.cache is not None and link_name is not None
        self.env = simpy.Environment()
        self.link = simpy.Resource(self.env, capacity=1)
        self.link_spec = system.links[link_name].spec
        self.table_spec = system.tiers[system.table_tiers[0]].spec
        self.compute_spec = system.tiers[system.compute_tier].spec
        cache = system.cache.cache          # the SoftwareCache behind kind ``software``
        self.num_sets, self.ways = cache.num_sets, cache.ways
        self.sets = [OrderedDict() for _ in range(self.num_sets)]
        self.row_base = meta.row_base
        self.row_bytes = meta.row_bytes
        self.concurrency = concurrency
        self.hits = 0
        self.lookups = 0

    def _cached(self, key: int) -> bool:
        entries = self.sets[set_of(key, self.num_sets)]
        if key in entries:
            entries.move_to_end(key)
            return True
        entries[key] = None
        if len(entries) > self.ways:
            entries.popitem(last=False)
        return False

    def _lookup(self, key: int, row_bytes: int):
        self.lookups += 1
        read = self.compute_spec.latency + row_bytes / self.compute_spec.bandwidth
        if self._cached(key):
            self.hits += 1
            yield self.env.timeout(read)
            return
        with self.link.request() as turn:
            yield turn
            yield self.env.timeout(row_bytes / self.link_spec.bandwidth)
        yield self.env.timeout(self.table_spec.latency + self.link_spec.latency + read)

    def _query(self, batch: Batch):
        keys = batch.global_rows(self.row_base)
        sizes = np.repeat(self.row_bytes, np.diff(batch.table_bounds()))
        lookups = [self.env.process(self._lookup(int(k), int(s)))
                   for k, s in zip(keys, sizes, strict=True)]
        yield self.env.all_of(lookups)

    def _client(self, batches):
        for batch in batches:
            yield from self._query(batch)

    def run(self, batches: Iterable[Batch]) -> float:
        shared = iter(batches)
        for _ in range(self.concurrency):
            self.env.process(self._client(shared))
        self.env.run()
        return self.env.now
