"""The paths data takes during one run: memory tiers and links, with the links' contention.

A link is a SimPy resource per direction: one transfer at a time each way. The memory read
and the link transfer of a move are pipelined: the link is held for the longer of the two,
then its latency follows. Stages and compute units move data only through a ``Fabric``, so
concurrent queries contend for the same links and (through the devices' own timeline state)
the same channels, banks and buses.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

if TYPE_CHECKING:
    from simulator.core.system import System

Process = Generator[simpy.Event, Any, float]
"""A SimPy process body that returns the unloaded time of what it did."""


class Fabric:
    """The SimPy environment of a run, its systems' tiers and links, and the links' turns."""

    def __init__(self, env: simpy.Environment, system: System):
        self.env = env
        self.system = system
        self.turns = {(name, write): simpy.Resource(env, capacity=1)
                      for name in system.links for write in (False, True)}
        dense = system.dense                    # its engines run one layer each at a time
        self.dense_engine = simpy.Resource(env, capacity=dense.spec.engines if dense else 1)

    def move(self, tier_index: int, addresses: np.ndarray, sizes: np.ndarray,
             write: bool) -> Process:
        """Bytes between a table tier and the host, memory and link pipelined (the host's
        link to that tier, if any, is held for the longer of the two, then its latency
        follows). Returns the move's unloaded time."""
        system, env = self.system, self.env
        tier = system.tiers[system.table_tiers[tier_index]]
        memory_done, moved = tier.access(env.now, addresses, sizes,
                                         np.full(addresses.size, write))
        link_name = system.tier_links[tier_index]
        if link_name is None:
            yield env.timeout(memory_done - env.now)
            return tier.unloaded_time(moved)
        return (yield from self.cross(link_name, int(sizes.sum()), write, memory_done,
                                      tier.unloaded_time(moved)))

    def cross(self, link_name: str, payload: int, write: bool, ready_s: float = 0.0,
              ready_unloaded_s: float = 0.0) -> Process:
        """``payload`` bytes over a link, in its turn: the link is held for the longer of its
        serialisation and the time until the data is ready (``ready_s``), then its latency
        follows. Returns the unloaded time (``ready_unloaded_s``: the source's own)."""
        env = self.env
        link = self.system.links[link_name]
        link.record(payload)
        serialise = link.transfer_time(payload)
        with self.turns[(link_name, write)].request() as turn:
            yield turn
            yield env.timeout(max(serialise, ready_s - env.now))
        yield env.timeout(link.spec.latency)
        return max(serialise, ready_unloaded_s) + link.spec.latency
