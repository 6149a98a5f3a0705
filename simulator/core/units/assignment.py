"""Assignment policies: which compute unit pools each lookup (``system.assignment``).

A policy maps a query's lookups to unit indices (0 is the host), after the row cache has been
consulted. Registered by name in ``ASSIGNMENTS``:

- ``nearest`` (default): a lookup goes to a unit that sits at its row's tier and claims it (a
  kind with several units per tier splits them by address); every other lookup goes to the
  host. Pooling happens where the data lives.
- ``host``: the host pools everything, reading rows in other tiers over their links, and the
  system is built as if the other units were not there (its row cache may hold their tiers'
  rows): the baseline against which pooling in memory is compared.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from embsim.registry import Registry
from simulator.core.query import Query
from simulator.core.units import ComputeUnit


class Assignment:
    """A policy: ``assign`` gives each lookup of a query to a unit."""

    uses_units: ClassVar[bool] = True
    """Whether units other than the host take lookups (else the system is built without
    them in the way: caches and device paths as for the host alone)."""

    @staticmethod
    def assign(q: Query, units: list[ComputeUnit]) -> np.ndarray:
        """The index of the unit that pools each of ``q``'s lookups."""
        raise NotImplementedError


ASSIGNMENTS: Registry[type[Assignment]] = Registry("assignment policy")


@ASSIGNMENTS.register("nearest")
class Nearest(Assignment):
    """Each lookup to a unit at its row's tier that claims it; the others to the host."""

    @staticmethod
    def assign(q: Query, units: list[ComputeUnit]) -> np.ndarray:
        unit = np.zeros(q.global_rows.size, dtype=np.int64)
        for candidate in units[1:]:
            at = np.flatnonzero((q.tier == candidate.tier_index) & (unit == 0))
            if at.size:
                unit[at[candidate.claims(q, at)]] = candidate.index
        return unit


@ASSIGNMENTS.register("host")
class HostOnly(Assignment):
    """Every lookup to the host."""

    uses_units = False

    @staticmethod
    def assign(q: Query, units: list[ComputeUnit]) -> np.ndarray:
        return np.zeros(q.global_rows.size, dtype=np.int64)
