"""Stage ``pool``: every compute unit pools its share of the query, all at once.

Each unit other than the host runs as its own process (it reads its rows through its own path
and sends its partial sums to the host); the host pools its share in the query's process and
writes every bag's output. The stage ends when the last unit is done; its unloaded time is the
slowest unit's. A main node whose tables live on remote nodes (``simulator.core.nodes``) pools
nothing itself: its own work (the query's overhead, writing the pooled vectors into the
outputs) follows the nodes' answers, so it adds to the slowest node's time.
"""

from __future__ import annotations

from simulator.core.fabric import Fabric, Process
from simulator.core.query import Query
from simulator.core.stages import Stage, register_stage


@register_stage
class PoolStage(Stage):
    """Runs each unit's ``serve`` on the lookups assigned to it."""

    name = "pool"
    order = 40

    def run(self, q: Query, fabric: Fabric) -> Process:
        env = fabric.env
        host, *others = self.system.units
        running = [env.process(unit.serve(q, q.share(unit.index), fabric))
                   for unit in others if (q.unit == unit.index).any()]
        if self.system.cluster is not None and running:
            finished = yield env.all_of(running)
            remote = max(finished.values())
            return remote + (yield from host.serve(q, q.share(host.index), fabric))
        floor = yield from host.serve(q, q.share(host.index), fabric)
        if running:
            finished = yield env.all_of(running)
            floor = max(floor, *finished.values())
        return floor

    def warm(self, q: Query) -> None:
        for unit in self.system.units:
            unit.warm(q, q.share(unit.index))
