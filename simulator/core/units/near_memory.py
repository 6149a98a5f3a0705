"""Unit kind ``near_memory``: a pooling engine inside a memory tier (a CXL memory expander's
controller, a buffer chip, a logic die) that pools the lookups whose rows live in its tier.

It reads its rows through the tier's own device model, not over the link the host would use:
its path to memory is the device itself, so it sees the device's bandwidth and contends with
every other reader of that device. Its pooling adds ``lookup_overhead`` per row it adds,
``bag_overhead`` per bag it touches and ``query_overhead`` per query. It then sends one partial
vector per bag it touched (the table's row size) over ``link`` (default: the tier's own link
to the host); the host adds them into the outputs (``stages.combine``). With ``link: direct``
the partials land in the host's tier without crossing a link.

What it ignores: how the engine reaches its rows inside the device beyond the device model
(every read goes through the whole device, as a host read would), its instruction stream, and
contention for its own arithmetic between concurrent queries.
"""

from __future__ import annotations

import numpy as np

from embsim.errors import InputError
from hwmodels.specs import NonNegativeTime
from simulator.core.config import DIRECT
from simulator.core.fabric import Fabric, Process
from simulator.core.query import Query
from simulator.core.units import UNITS, PlacedUnit, UnitOptions, UnitSite, table_tier_index
from simulator.core.units.balancing import bag_starts


class NearMemoryOptions(UnitOptions):
    """``tier``: the memory tier it sits in; ``link``: the link its partial sums take to the
    host (default: the tier's link; ``direct``: none); its pooling costs."""

    tier: str
    link: str | None = None
    query_overhead: NonNegativeTime = 0.0
    bag_overhead: NonNegativeTime = 0.0
    lookup_overhead: NonNegativeTime = 0.0


@UNITS.register("near_memory")
class NearMemoryUnit(PlacedUnit):
    """Pools the rows of its tier where they are and sends partial sums to the host."""

    kind = "near_memory"
    options_model = NearMemoryOptions

    def __init__(self, name: str, index: int, options: NearMemoryOptions, site: UnitSite):
        self.link = partial_link(name, options, site)
        super().__init__(name, index, site.table_tiers.index(options.tier))
        self.options = options
        self.tier = site.tiers[options.tier]

    def serve(self, q: Query, share: np.ndarray | slice, fabric: Fabric) -> Process:
        env = fabric.env
        sizes = q.row_bytes[share]
        done, moved = self.tier.access(env.now, q.home_addresses[share], sizes,
                                       np.zeros(sizes.size, dtype=bool))
        bags = q.bags()[share]
        starts = bag_starts(bags)
        bags = bags[starts]
        o = self.options
        overhead = (o.query_overhead + bags.size * o.bag_overhead
                    + sizes.size * o.lookup_overhead)
        yield env.timeout(done - env.now + overhead)
        floor = self.tier.unloaded_time(moved) + overhead
        payload = int(sizes[starts].sum())        # a bag's partial is as large as its rows
        if self.link is not None:
            floor += yield from fabric.cross(self.link, payload, write=False)
        self.pooled_lookups += sizes.size
        self.report_partials(q, bags, payload)
        return floor


def partial_link(name: str, options: NearMemoryOptions, site: UnitSite) -> str | None:
    """The link a unit's partial sums take to the host (None: they land there directly);
    its tier is checked to hold tables."""
    field = f"system.units.{name}"
    index = table_tier_index(name, options.tier, site)
    if options.link is None:
        return site.host_links[index]
    if options.link != DIRECT and options.link not in site.links:
        known = ", ".join([*sorted(site.links), DIRECT])
        raise InputError(f"unknown link {options.link!r}; expected one of: {known}",
                         source=site.source, field=f"{field}.link")
    return None if options.link == DIRECT else options.link
