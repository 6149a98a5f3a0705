"""Stage ``fetch``: start moving the rows the host pools but does not hold to the host.

The host reads its own tier directly (its cache slots, the rows kept there); every other row
it pools that is not a cache hit (``HostUnit.remote``) is read from its home tier and moved
over that tier's link. One process per home tier, started here and joined by the host in the
``pool`` stage, which decides whether pooling overlaps them (a hardware cache) or waits for
them first. Units in memory read their own tier and fetch nothing. Takes no time itself.
"""

from __future__ import annotations

import numpy as np

from simulator.core.fabric import Fabric, Process
from simulator.core.query import Query
from simulator.core.stages import InstantStage, register_stage


@register_stage
class FetchStage(InstantStage):
    """Starts the host's transfers of the rows it does not read directly."""

    name = "fetch"
    order = 30

    def apply(self, q: Query, fabric: Fabric | None) -> float:
        if fabric is None:
            return 0.0
        remote = self.system.host.remote(q)
        q.fetches = [fabric.env.process(self._fetch(q, int(k), remote & (q.tier == k), fabric))
                     for k in np.flatnonzero(np.bincount(q.tier[remote]))]
        return 0.0

    @staticmethod
    def _fetch(q: Query, tier_index: int, rows: np.ndarray, fabric: Fabric) -> Process:
        unloaded = yield from fabric.move(tier_index, q.home_addresses[rows], q.row_bytes[rows],
                                          write=False)
        q.fetch_unloaded_s = max(q.fetch_unloaded_s, unloaded)
        return unloaded
