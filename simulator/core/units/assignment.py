"""Assignment policies: which compute unit pools each lookup (``system.assignment``).

A policy maps a query's lookups to unit indices (0 is the host), after the row cache has been
consulted. Registered by name in ``ASSIGNMENTS``:

- ``nearest`` (default): a lookup goes to a unit that sits at its row's tier and claims it (a
  kind with several units per tier splits them by address); every other lookup goes to the
  host. Pooling happens where the data lives.
- ``host``: the host pools everything, reading rows in other tiers over their links, as if the
  other units were not there: the baseline against which near-memory pooling is compared.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from embsim.registry import Registry
from simulator.core.query import Query
from simulator.core.units import ComputeUnit

Assignment = Callable[[Query, list[ComputeUnit]], np.ndarray]
ASSIGNMENTS: Registry[Assignment] = Registry("assignment policy")


@ASSIGNMENTS.register("nearest")
def nearest(q: Query, units: list[ComputeUnit]) -> np.ndarray:
    """Each lookup to a unit at its row's tier that claims it; the others to the host."""
    unit = np.zeros(q.global_rows.size, dtype=np.int64)
    for candidate in units[1:]:
        at = np.flatnonzero((q.tier == candidate.tier_index) & (unit == 0))
        if at.size:
            unit[at[candidate.claims(q, at)]] = candidate.index
    return unit


@ASSIGNMENTS.register("host")
def host_only(q: Query, units: list[ComputeUnit]) -> np.ndarray:
    """Every lookup to the host."""
    return np.zeros(q.global_rows.size, dtype=np.int64)
