"""Stage ``update`` (``run.mode: training``): the optimizer's read-modify-write of every row.

Each distinct row looked up is read and written back with its optimizer state, where they are:
a cached row's weights in its slot (which becomes dirty) and its state at home; other rows at
home, over their link. Dirty rows the query's fills evicted are written back to their home
tier. The host does the update (as FBGEMM's TBE backward does), whichever unit pooled the row.
"""

from __future__ import annotations

import numpy as np

from simulator.core.fabric import Fabric, Process
from simulator.core.query import Query
from simulator.core.stages import Stage, register_stage


@register_stage
class UpdateStage(Stage):
    """Training's row and optimizer-state updates, and the cache's dirty write-backs."""

    name = "update"
    order = 70

    @classmethod
    def wanted(cls, system) -> bool:
        return system.training

    def run(self, q: Query, fabric: Fabric) -> Process:
        system, env = self.system, fabric.env
        host = system.units[0]
        slot, local = q.slot, q.local
        _, first = np.unique(q.global_rows, return_index=True)
        kept = slot[first] >= 0
        if system.write_back is not None:
            # a concurrent query may have evicted the row since: update it at home instead
            kept &= system.write_back.holds(slot[first], q.global_rows[first])
        in_slot, at_home = first[kept], first[~kept]
        if system.write_back is not None:
            system.write_back.mark_dirty(slot[in_slot])
        compute_addr = [host.slot_addresses(slot[in_slot])]
        compute_size = [q.row_bytes[in_slot]]
        home_local = at_home[local[at_home]]
        compute_addr.append(q.home_addresses[home_local])
        compute_size.append(q.row_bytes[home_local] + q.state_bytes[home_local])
        # remote homes: the whole row + state for uncached rows, the state for cached ones
        uncached = at_home[~local[at_home]]
        state_only = in_slot[q.state_bytes[in_slot] > 0]
        remote = np.concatenate([uncached, state_only])
        offset = np.concatenate([np.zeros(uncached.size, dtype=np.int64),
                                 q.row_bytes[state_only]])
        size = np.concatenate([q.row_bytes[uncached] + q.state_bytes[uncached],
                               q.state_bytes[state_only]])
        moves = [env.process(self._rmw_host(np.concatenate(compute_addr),
                                            np.concatenate(compute_size), fabric))]
        wb_tier, wb_addr = system.placement.locate(q.writeback_rows)
        wb_size = system.placement.row_bytes_of(q.writeback_rows, system.layout.row_bytes)
        tier_of = q.tier[remote]
        for k in np.union1d(tier_of, wb_tier):
            mine = tier_of == k
            wb = wb_tier == k
            moves.append(env.process(self._rmw_home(
                int(k), q.home_addresses[remote[mine]] + offset[mine], size[mine],
                wb_addr[wb], wb_size[wb], fabric)))
        results = yield env.all_of(moves)
        return max(results.values())

    def _rmw_host(self, addresses: np.ndarray, sizes: np.ndarray, fabric: Fabric) -> Process:
        """Read then write rows in the host's own tier; returns the unloaded time."""
        compute = self.system.host.tier
        unloaded = 0.0
        for write in (False, True):
            done, moved = compute.access(fabric.env.now, addresses, sizes,
                                         np.full(addresses.size, write))
            yield fabric.env.timeout(done - fabric.env.now)
            unloaded += compute.unloaded_time(moved)
        return unloaded

    @staticmethod
    def _rmw_home(tier_index: int, addresses: np.ndarray, sizes: np.ndarray,
                  wb_addresses: np.ndarray, wb_sizes: np.ndarray, fabric: Fabric) -> Process:
        """Read then write rows at their home tier, with the write-backs; returns the
        unloaded time."""
        unloaded = 0.0
        if addresses.size:
            unloaded += yield from fabric.move(tier_index, addresses, sizes, write=False)
        writes = np.concatenate([addresses, wb_addresses])
        if writes.size:
            unloaded += yield from fabric.move(tier_index, writes,
                                               np.concatenate([sizes, wb_sizes]), write=True)
        return unloaded
