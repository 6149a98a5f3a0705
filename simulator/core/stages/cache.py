"""Stage ``cache``: which lookups the host finds in its own tier or in the row cache.

Rows of the tiers the cache holds (``system.cache.caches``) are looked up in one compiled call
per query; the cache's kind decides hits, slots and fills. In training, the fills' dirty
victims are noted for the update stage to write back (``hwmodels.cache.write_back``). Rows
kept in the host's own tier are read where they are. The stage takes no simulated time.
"""

from __future__ import annotations

import numpy as np

from simulator.core.fabric import Fabric
from simulator.core.query import Query
from simulator.core.stages import InstantStage, register_stage


@register_stage
class CacheStage(InstantStage):
    """The row cache's lookups of a query (and which lookups are local to the host)."""

    name = "cache"
    order = 10

    def apply(self, q: Query, fabric: Fabric | None) -> float:
        system = self.system
        local = q.tier == system.compute_index
        hit = np.zeros(q.global_rows.size, dtype=bool)
        slot = np.full(q.global_rows.size, -1, dtype=np.int64)
        if system.cache is not None:
            through = np.flatnonzero(system.cached[q.tier] & ~local)
            if through.size:
                hit[through], slot[through] = system.cache.lookup(q.global_rows[through])
                q.cache_lookups = through.size
                if system.write_back is not None:
                    q.writeback_rows = system.write_back.fill(
                        q.global_rows[through], hit[through], slot[through])
        q.local, q.hit, q.slot = local, hit, slot
        q.hits = int(np.count_nonzero(local) + np.count_nonzero(hit))
        q.tier_lookups = np.bincount(q.tier, minlength=len(system.table_tiers))
        return 0.0
