"""Unit kind ``cxl``: a pooling engine in a CXL memory expander's controller (Type-3 device,
e.g. the ``cxl-ddr5-expander`` DRAM preset) that pools the rows of its own DRAM and returns
partial sums over the CXL link.

A query: the host sends the engine one instruction per lookup (``instruction_bits``) over the
link (host to device), the engine reads the rows from the expander's DRAM (the device model,
its channels and banks, not the link), adds them ``lanes`` elements a cycle (``hwmodels.nmp``)
and sends one partial vector per bag back over the link (device to host), which the host adds
into the outputs. The link's two directions are SimPy resources shared with every other
transfer, so a host reading other rows over the same link contends with it.

What it ignores: pipelining of the instruction stream with the reads (the engine starts once
its instructions have arrived, an upper bound of its time), and the expander's own controller
latency beyond its DRAM model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embsim.errors import InputError
from hwmodels.nmp import NmpSpec, NmpTiming
from hwmodels.presets import resolve
from simulator.core.fabric import Fabric, Process
from simulator.core.query import Query
from simulator.core.units import UNITS, UnitSite
from simulator.core.units.balancing import bag_starts
from simulator.core.units.near_memory import NearMemoryOptions, NearMemoryUnit


class CxlOptions(NearMemoryOptions):
    """``tier``: the expander's memory; ``link``: the CXL link (default: the tier's);
    ``preset``/``params``: the engine (an ``nmp`` preset)."""

    preset: str | None = None
    params: dict[str, Any] = {}


@UNITS.register("cxl")
class CxlUnit(NearMemoryUnit):
    """The pooling engine of one CXL memory expander."""

    kind = "cxl"
    options_model = CxlOptions

    def __init__(self, name: str, index: int, options: CxlOptions, site: UnitSite):
        super().__init__(name, index, options, site)
        field = f"system.units.{name}"
        if self.link is None:
            raise InputError("a CXL expander's engine talks to the host over its CXL link; "
                             "name it", source=site.source, field=f"{field}.link")
        spec, self.sources = resolve("nmp", options.preset, options.params, source=site.source,
                                     field=field)
        assert isinstance(spec, NmpSpec)
        self.timing = NmpTiming(spec)
        self.row_elements = site.row_elements
        self.batch_size = site.batch_size

    def serve(self, q: Query, share: np.ndarray | slice, fabric: Fabric) -> Process:
        env = fabric.env
        sizes = q.row_bytes[share]
        instructions = -(-sizes.size * self.timing.spec.instruction_bits // 8)
        floor = yield from fabric.cross(self.link, instructions, write=True)
        done, moved = self.tier.access(env.now, q.home_addresses[share], sizes,
                                       np.zeros(sizes.size, dtype=bool))
        bags = q.bags()[share]
        cycles, elements = self.timing.datapath(self.row_elements[bags // self.batch_size])
        starts = bag_starts(bags)
        bags = bags[starts]
        pooling = self.timing.pooling_s(cycles, bags.size, 0)
        yield env.timeout(max(done - env.now, pooling))
        floor += max(self.tier.unloaded_time(moved), pooling)
        payload = int(sizes[starts].sum())        # a bag's partial is as large as its rows
        floor += yield from fabric.cross(self.link, payload, write=False)
        self.energy_j += self.timing.energy_j(elements,
                                              weighted=q.batch.weights is not None,
                                              cache_accesses=0)
        self.pooled_lookups += sizes.size
        self.report_partials(q, bags, payload)
        return floor
