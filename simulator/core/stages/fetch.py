"""Stage ``fetch``: start moving the rows each unit must receive before it can pool them.

A unit reads some rows directly (the host: its own tier, cache slots; a near-memory unit: the
tier it sits in) and must receive the others over the paths between their home tiers and it
(``ComputeUnit.remote``): for the host, the rows that are neither local nor cache hits, read
from their home tier and moved over that tier's link. One process per (unit, home tier),
started here and joined by the unit in the ``pool`` stage, which decides whether pooling
overlaps them (a hardware cache) or waits for them first. Takes no time itself.
"""

from __future__ import annotations

import numpy as np

from simulator.core.fabric import Fabric, Process
from simulator.core.query import Query
from simulator.core.stages import InstantStage, register_stage


@register_stage
class FetchStage(InstantStage):
    """Starts each unit's transfers of the rows it does not read directly."""

    name = "fetch"
    order = 30

    def apply(self, q: Query, fabric: Fabric | None) -> float:
        if fabric is None:
            return 0.0
        for unit in self.system.units:
            remote = unit.remote(q)
            if remote is None or not remote.any():
                continue
            q.fetch_unloaded_s[unit.index] = 0.0
            q.fetches[unit.index] = [
                fabric.env.process(self._fetch(q, unit.index, int(k), remote & (q.tier == k),
                                               fabric))
                for k in np.unique(q.tier[remote])]
        return 0.0

    @staticmethod
    def _fetch(q: Query, unit: int, tier_index: int, rows: np.ndarray,
               fabric: Fabric) -> Process:
        unloaded = yield from fabric.move(tier_index, q.home_addresses[rows], q.row_bytes[rows],
                                          write=False)
        q.fetch_unloaded_s[unit] = max(q.fetch_unloaded_s[unit], unloaded)
        return unloaded
