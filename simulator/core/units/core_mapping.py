"""The host's cores and the policies that map tables (or rows of them) to cores
(``system.compute.cores``).

A processor with several cores (an accelerator's AI cores, a CPU's cores) runs the embedding
operator with each table, or each range of a table's rows, given to one core. Each core pools
the lookups mapped to it at its own throughput (``speed``: the host's per-lookup costs,
``lookup_overhead`` + ``element_overhead`` per element but at least ``lookup_floor``, and
``remainder_overhead`` for a row that is not whole vectors, divided by it, plus
``lookup_chain_latency`` per row of the longest bag it walks per table); the cores share the
compute tier's memory model (its bandwidth and banks) as before. The query's pooling ends with
its slowest core, so an unbalanced mapping shows. The per-query, per-table and per-bag costs
are the operator's, paid once as without cores.

Mapping policies, registered by name in ``MAPPINGS``:

- ``round_robin``: table ``t`` to core ``t mod count`` (what a compiler does that knows
  nothing of the tables; embsim's stand-in for the vendor default Ruggeri et al. compare
  against, whose exact rule was not reachable).
- ``size_balanced``: tables by bytes, largest first, each to the core holding the fewest
  bytes (a capacity planner's greedy).
- ``asymmetric``: driven by a profile of the access distribution (reads per row over the first
  ``profile_batches`` batches): each table's cost is its profiled lookups times its
  per-lookup cost; a table costing more than one core's fair share (total cost over total
  speed, times the fastest core's speed) is split; the other tables go whole first, costliest
  first, to the core that would finish them first (longest processing time first); then each
  split table is cut into row ranges of equal profiled reads that fill the least loaded cores
  up to their share (the last range takes what is left). Cores thus get
  different numbers of tables and of rows: the asymmetric mapping of Ruggeri et al.,
  "Deep Recommender Models Inference: Automatic Asymmetric Data Flow Optimization" (arXiv
  2507.01676), as embsim reads it (the paper's exact cost model was not reachable; this is
  the profile-driven balancing its abstract describes).

Per-core lookup strategies (``strategy``), after the paper's: ``gm`` reads every row from the
compute tier (its global memory); ``l1`` preloads the tables a core owns whole into its
``l1_bytes`` buffer (hottest per byte first, while they fit), so their rows are not read from
the tier. The paper's vectorised GM-UB and L1-UB strategies are not modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from embsim.errors import InputError
from embsim.registry import Registry

if TYPE_CHECKING:
    from simulator.core.config import ComputeConfig
    from simulator.core.query import Query
    from simulator.core.units import UnitSite

FIELD = "system.compute.cores"


@dataclass
class MappingInput:
    """What a mapping policy sees: the cores' relative speeds, each table's rows and bytes,
    its per-lookup cost on a core of speed 1, and its profiled reads per row (None: no
    profile, every row read once)."""

    speed: np.ndarray
    table_rows: np.ndarray
    table_bytes: np.ndarray
    lookup_cost: np.ndarray
    heat: list[np.ndarray] | None

    @property
    def count(self) -> int:
        return self.speed.size

    def reads(self) -> np.ndarray:
        """Profiled reads per table."""
        if self.heat is None:
            return self.table_rows.astype(float)
        return np.array([float(h.sum()) for h in self.heat])

    def row_cuts(self, table: int, reads: np.ndarray) -> np.ndarray:
        """The row after which ``table``'s cumulative profiled reads reach each of ``reads``."""
        if self.heat is None:
            return np.ceil(reads).astype(np.int64)
        return np.searchsorted(np.cumsum(self.heat[table]), reads, side="left") + 1


@dataclass
class CoreMap:
    """Which core pools each table's lookups: ``table_core[t]``, or, for a table split by
    rows (``table_core[t] == -1``), ``splits[t] = (bounds, cores)``: rows in
    ``[bounds[i], bounds[i+1])`` go to ``cores[i]``."""

    table_core: np.ndarray
    splits: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def cores_of(self, tables: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The core of each lookup of ``tables`` at local ``rows``."""
        core = self.table_core[tables]
        for table, (bounds, cores) in self.splits.items():
            at = np.flatnonzero(tables == table)
            core[at] = cores[np.searchsorted(bounds, rows[at], side="right") - 1]
        return core


MAPPINGS: Registry[Callable[[MappingInput], CoreMap]] = Registry("core mapping policy")


@MAPPINGS.register("round_robin")
def round_robin(m: MappingInput) -> CoreMap:
    """Table ``t`` to core ``t mod count``."""
    return CoreMap(np.arange(m.table_rows.size, dtype=np.int64) % m.count)


def _greedy(weights: np.ndarray, speed: np.ndarray, load: np.ndarray,
            tables: np.ndarray) -> np.ndarray:
    """Longest processing time first: each of ``tables`` (by ``weights``, heaviest first) to
    the core that finishes it first given ``load`` (updated in place)."""
    core = np.zeros(weights.size, dtype=np.int64)
    for t in tables[np.argsort(-weights[tables], kind="stable")]:
        c = int(np.argmin((load + weights[t]) / speed))
        core[t] = c
        load[c] += weights[t]
    return core


@MAPPINGS.register("size_balanced")
def size_balanced(m: MappingInput) -> CoreMap:
    """Tables by bytes, largest first, each to the core with the fewest bytes (per speed)."""
    tables = np.arange(m.table_rows.size)
    return CoreMap(_greedy(m.table_bytes.astype(float), m.speed,
                           np.zeros(m.count), tables))


@MAPPINGS.register("asymmetric")
def asymmetric(m: MappingInput) -> CoreMap:
    """The tables within a core's fair share whole, longest first; then those above it split
    by rows of equal profiled reads into the room left (see the module's docstring)."""
    cost = m.reads() * m.lookup_cost
    share = cost.sum() / m.speed.sum()            # a core of speed 1's fair time
    load = np.zeros(m.count)
    table_core = np.full(cost.size, -1, dtype=np.int64)
    splits: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    big = cost > share * m.speed.max() if share > 0 else np.zeros(cost.size, dtype=bool)
    rest = np.flatnonzero(~big)
    table_core[rest] = _greedy(cost, m.speed, load, rest)[rest]
    for t in np.flatnonzero(big)[np.argsort(-cost[big], kind="stable")]:
        cuts, cores, left = [], [], cost[t]
        while left > 0:
            c = int(np.argmin(load / m.speed))
            room = max(share * m.speed[c] - load[c], 0.0)
            piece = left if room >= left or room <= 1e-9 * share else room
            load[c] += piece
            left -= piece
            cores.append(c)
            cuts.append(cost[t] - left)
        # rows in order, cut where the cumulative profiled reads reach each piece's end
        ends = m.row_cuts(t, np.array(cuts[:-1]) / m.lookup_cost[t])
        bounds = np.concatenate([[0], np.minimum(ends, m.table_rows[t]), [m.table_rows[t]]])
        splits[int(t)] = (bounds.astype(np.int64), np.array(cores, dtype=np.int64))
    return CoreMap(table_core, splits)


class Cores:
    """The host's cores: the map of lookups to cores, each query's per-core pooling time,
    the tables each preloads (``l1``), and per-core counters."""

    def __init__(self, compute: ComputeConfig, site: UnitSite, source: str | None):
        cfg = compute.cores
        assert cfg is not None
        speed = np.broadcast_to(np.asarray(cfg.speed, dtype=float), (cfg.count,)) \
            if not isinstance(cfg.speed, list) else np.asarray(cfg.speed, dtype=float)
        if speed.size != cfg.count:
            raise InputError(f"'speed' lists {speed.size} cores, 'count' is {cfg.count}",
                             source=source, field=f"{FIELD}.speed")
        policy = MAPPINGS.get(cfg.mapping, source=source, field=f"{FIELD}.mapping")
        elsewhere = [t for t in site.table_tiers if t != compute.tier]
        if cfg.strategy == "l1" and elsewhere:
            raise InputError(f"strategy 'l1' preloads tables from the compute tier "
                             f"({compute.tier!r}) into the cores' buffers; tables may also live "
                             f"in {', '.join(map(repr, elsewhere))}, whose rows are fetched "
                             "over their link (use 'gm', or keep the tables in the compute "
                             "tier)", source=source, field=f"{FIELD}.strategy")
        self.speed = speed.copy()
        self.chain_s = compute.lookup_chain_latency
        rows = site.table_rows
        self.row_base = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
        self.lookup_cost = (compute.lookup_overhead + site.row_elements * compute.element_overhead
                            + compute.lookup_extra(site.row_elements))
        costed = self.lookup_cost if self.lookup_cost.any() else np.ones(rows.size)
        heat = None                 # no profile (or validation before a run): rows alike
        if site.profile is not None and (cfg.mapping == "asymmetric" or cfg.strategy == "l1"):
            reads = site.profile(cfg.profile_batches)
            heat = [reads[b:b + n] for b, n in zip(self.row_base, rows, strict=True)]
        given = MappingInput(speed=self.speed, table_rows=rows,
                             table_bytes=rows * site.row_bytes, lookup_cost=costed, heat=heat)
        self.map = policy(given)
        self.preloaded = np.zeros(rows.size, dtype=bool)
        if cfg.strategy == "l1":
            self._preload(cfg.l1_bytes, given)
        n = cfg.count
        self.busy_s = np.zeros(n)
        self.lookups = np.zeros(n, dtype=np.int64)
        self.slowest_s = 0.0        # sum over queries of the slowest core's time
        self.mean_s = 0.0           # and of the cores' mean time

    def _preload(self, budget: float, given: MappingInput) -> None:
        """Each core keeps the tables it owns whole in its buffer, hottest per byte first,
        while they fit."""
        table_bytes = given.table_bytes
        density = given.reads() / np.maximum(table_bytes, 1)
        for c in range(self.speed.size):
            room = budget
            owned = np.flatnonzero(self.map.table_core == c)
            for t in owned[np.argsort(-density[owned], kind="stable")]:
                if table_bytes[t] <= room:
                    room -= table_bytes[t]
                    self.preloaded[t] = True

    def _lookups(self, q: Query, share: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """The table and the core of each lookup of ``share``."""
        per_table = np.diff(q.batch.table_bounds())
        tables = np.repeat(np.arange(per_table.size), per_table)[share]
        rows = q.global_rows[share] - self.row_base[tables]
        return tables, self.map.cores_of(tables, rows)

    def unread(self, q: Query, share: np.ndarray | slice) -> np.ndarray:
        """Per lookup of ``share``, whether its row sits in its core's buffer (``l1``)."""
        per_table = np.diff(q.batch.table_bounds())
        return np.repeat(self.preloaded, per_table)[share]

    def time(self, q: Query, share: np.ndarray | slice, extra: np.ndarray | None = None
             ) -> float:
        """The slowest core's pooling time for ``share`` of ``q``; counts each core's.
        ``extra``: per lookup of the share, seconds of work beyond its table's lookup cost
        (``half_remainder_overhead`` where its row came from beyond the private cache)."""
        tables, core = self._lookups(q, share)
        n = self.speed.size
        cost = self.lookup_cost[tables] if extra is None else self.lookup_cost[tables] + extra
        work = np.bincount(core, weights=cost, minlength=n)
        if self.chain_s and core.size:
            batch = q.batch
            bags = q.bags()[share]
            walked = np.bincount(core * (batch.offsets.size - 1) + bags,
                                 minlength=n * (batch.offsets.size - 1))
            longest = walked.reshape(n, batch.num_tables, batch.batch_size).max(axis=2)
            work = work + longest.sum(axis=1) * self.chain_s
        per_core = work / self.speed
        self.busy_s += per_core
        self.lookups += np.bincount(core, minlength=n)
        slowest = float(per_core.max())
        self.slowest_s += slowest
        self.mean_s += float(per_core.mean())
        return slowest

    def counters(self) -> dict[str, float]:
        """``core<i>_lookups``, ``core<i>_busy_us`` and ``core_imbalance`` (the sum over
        queries of the slowest core's time over that of the cores' mean: 1 is balanced)."""
        out: dict[str, float] = {}
        for c in range(self.speed.size):
            out[f"core{c}_lookups"] = int(self.lookups[c])
            out[f"core{c}_busy_us"] = float(self.busy_s[c] * 1e6)
        out["core_imbalance"] = self.slowest_s / self.mean_s if self.mean_s > 0 else 1.0
        return out
