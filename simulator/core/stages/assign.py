"""Stage ``assign``: each lookup goes to the compute unit that pools it.

The system's assignment policy (``system.assignment``, ``simulator.core.units.assignment``)
decides from where each row lives, which units reach it and the cache's findings. Takes no
simulated time.
"""

from __future__ import annotations

from simulator.core.fabric import Fabric
from simulator.core.query import Query
from simulator.core.stages import InstantStage, register_stage


@register_stage
class AssignStage(InstantStage):
    """Sets ``Query.unit``: the index of the unit that pools each lookup."""

    name = "assign"
    order = 20

    def apply(self, q: Query, fabric: Fabric | None) -> float:
        q.unit = self.system.assignment.assign(q, self.system.units)
        return 0.0
