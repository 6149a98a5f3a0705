"""Stage ``combine``: the host adds the partial sums other units sent into the bags' outputs.

Only in systems with compute units besides the host. A query whose bags were all pooled at the
host has nothing to combine and spends no time here.
"""

from __future__ import annotations

from simulator.core.fabric import Fabric, Process
from simulator.core.query import Query
from simulator.core.stages import Stage, register_stage


@register_stage
class CombineStage(Stage):
    """The host's reads of the partial vectors and read-modify-writes of their outputs."""

    name = "combine"
    order = 50

    @classmethod
    def wanted(cls, system) -> bool:
        return len(system.units) > 1

    def run(self, q: Query, fabric: Fabric) -> Process:
        if not q.partials:
            return 0.0
        host, units = self.system.host, self.system.units
        sent = {}
        for index, bags in q.partial_bags.items():
            sizes = units[index].partial_sizes(bags, host.layout.row_bytes, q.batch.batch_size)
            sent[index] = sizes, units[index].partial_offsets(bags, sizes)
        return (yield from host.combine(q, sent, fabric))
