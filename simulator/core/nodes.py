"""Remote nodes that hold table shards: scale-out inference (Lui et al., ISPASS 2021).

``system.nodes`` lists nodes, each with its own memory tiers, links, tables' tiers, host
processor and row cache (a whole system of its own), and the network link to the main node
(``link``, one of ``system.links``: the network presets in ``hwmodels/presets/network/``).
``system.sharding`` picks the strategy that spreads the tables over the first ``shards`` nodes
(``simulator.core.sharding``).

The main node is the top-level system. Its tables live on the nodes: it is built with a
stand-in tier ``shards`` that holds every table's address range and is never read, no row
cache, and no embedding operator costs of its own (its ``compute.query_overhead`` stays: the
main node's per-query work). Each node is a compute unit (``RemoteNode``) that pools the
lookups of its tables (the main node's assignment, ``ByTable``, gives each lookup to its
table's node), so the main node's pool stage runs every node at once; for one query a node:

1. receives one request over its link: the sub-query's TBE indices and offsets (8 B each)
   plus the link's ``message_overhead``, in the link's turn (``Fabric.cross``);
2. queues for one of its ``rpc_workers`` (a SimPy resource: concurrent queries contend);
3. pays ``rpc_overhead`` and runs the sub-query of its tables through its own system's stages
   (cache, fetch, pool, on its own tiers, links and fabric, sharing the run's clock);
4. sends the pooled vectors back (batch size x row bytes per table, plus the message
   overhead) over the link's other direction.

The query's embedding stage ends when its last node has answered (the pooled vectors land in
the main node's outputs, which the main host writes in its pool stage); with ``system.dense``
the main node runs the dense layers (the bottom MLP beside the requests, interaction and top
MLP once every shard has answered), and the query ends with them. A system without nodes (or with
``sharding.shards: 0``) is built as before, bit for bit.

Results: per node ``pooled_lookups_<node>``, ``requests_<node>``, ``request_bytes_<node>``,
``response_bytes_<node>``, ``cache_hits_<node>``, ``cache_misses_<node>``, ``tables_<node>``,
``compute_s_<node>`` (its RPC overheads plus its sub-queries'
unloaded time) and ``queue_s_<node>`` (time requests waited for a worker); for the run
``compute_s_total`` (every node's compute time plus the main node's query overheads and
dense layers: Lui's "compute overhead"), ``network_bytes`` and ``requests_per_query``.

What it ignores: the main node's receive-side copy of pooled vectors beyond its output writes,
retransmission, TCP windows, and contention for a node's cores beyond its RPC workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from embsim.errors import InputError, InvariantError
from simulator.core.config import DIRECT, Experiment, MemoryTierConfig, NodeConfig, SystemConfig
from simulator.core.engine import QueryLog
from simulator.core.fabric import Fabric, Process
from simulator.core.query import Query, make_query
from simulator.core.sharding import SHARDINGS, ShardingError, ShardingInput, check_nets
from simulator.core.tiers import build_tier
from simulator.core.units import ComputeUnit
from simulator.core.units.assignment import Assignment
from traces.batch import Batch
from traces.schema import TraceMeta

if TYPE_CHECKING:
    from simulator.core.system import Profile, System

STAND_IN = "shards"
"""The main node's stand-in tier for the tables that live on the nodes (never read)."""

INDEX_BYTES = 8
"""Bytes of one index or offset in a request (FBGEMM's TBE takes int64 indices and offsets)."""


def active_nodes(exp: Experiment) -> list[str]:
    """The nodes that take shards (empty: the main node holds every table)."""
    sys_cfg = exp.system
    shards = sys_cfg.sharding.shards if sys_cfg.sharding is not None else None
    names = list(sys_cfg.nodes)
    return names if shards is None else names[:shards]


def sub_batch(batch: Batch, tables: np.ndarray) -> Batch:
    """The bags of ``tables`` (sorted table indices) of ``batch``, as a batch of its own."""
    bounds = batch.table_bounds()
    parts = [slice(int(bounds[t]), int(bounds[t + 1])) for t in tables]
    lengths = batch.lengths()[tables].ravel()
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    weights = (None if batch.weights is None
               else np.concatenate([batch.weights[p] for p in parts]))
    return Batch(index=batch.index, indices=np.concatenate([batch.indices[p] for p in parts]),
                 offsets=offsets, num_tables=int(tables.size), batch_size=batch.batch_size,
                 weights=weights)


def _prefixed(err: InputError, name: str, source: str) -> InputError:
    """An error of a node's own system, its field moved under ``system.nodes.<name>``."""
    field = err.field or "system"
    field = f"system.nodes.{name}." + field.removeprefix("system.").removeprefix("system")
    return InputError(err.detail, source=source, field=field.rstrip("."))


def _node_experiment(exp: Experiment, node: NodeConfig) -> Experiment:
    """A node's own experiment: its hardware, the run's workload and run settings."""
    system = SystemConfig(memory=node.memory, links=node.links, tables=node.tables,
                          compute=node.compute, cache=node.cache)
    return exp.model_copy(update={"system": system, "sweep": None, "plots": []})


def _room(exp: Experiment, node: NodeConfig, name: str, source: str) -> int:
    """Bytes a node has for tables: its tables' tiers, each capped by its budget."""
    room = 0
    for tier in node.tables.tiers:
        if tier not in node.memory:
            raise InputError(f"unknown memory tier {tier!r}; expected one of: "
                             f"{', '.join(node.memory)}", source=source,
                             field=f"system.nodes.{name}.tables.tier")
        try:
            built = build_tier(tier, node.memory[tier], exp.run.fidelity, source)
        except InputError as err:
            raise _prefixed(err, name, source) from None
        capacity = int(built.model.spec.capacity)
        room += min(capacity, int(node.tables.budget.get(tier, capacity)))
    return room


def _main_experiment(exp: Experiment, meta: TraceMeta) -> Experiment:
    """The main node's experiment: its tables in a stand-in tier, no row cache, no embedding
    operator costs, no nodes."""
    sys_cfg = exp.system
    footprint = int(np.sum(meta.row_bytes * meta.rows)) + 4096 * (meta.num_tables + 1)
    stand_in = MemoryTierConfig(capacity=footprint, bandwidth=1e12, latency=0.0,
                                access_granularity=64, link=DIRECT)
    compute = sys_cfg.compute.model_copy(update={
        "call_overhead": 0.0, "bag_overhead": 0.0, "lookup_overhead": 0.0,
        "element_overhead": 0.0, "lookup_chain_latency": 0.0, "lookup_floor": 0.0,
        "remainder_overhead": 0.0, "half_remainder_overhead": 0.0, "cores": None})
    tables = sys_cfg.tables.model_copy(update={"tier": STAND_IN, "placement": "whole_tables",
                                               "budget": {}, "link": None})
    system = sys_cfg.model_copy(update={
        "memory": {**sys_cfg.memory, STAND_IN: stand_in}, "tables": tables, "cache": None,
        "compute": compute, "nodes": {}, "sharding": None})
    return exp.model_copy(update={"system": system})


def _check_shards(exp: Experiment, meta: TraceMeta, source: str) -> None:
    """The sharding section, checked whether or not any node takes tables (a sweep over
    ``shards`` from 0 must not hide a bad strategy in its first points)."""
    sharding = exp.system.sharding
    if sharding is None:
        return
    if (sharding.shards or 0) > len(exp.system.nodes):
        raise InputError(f"{sharding.shards} shards asked but {len(exp.system.nodes)} "
                         "nodes listed", source=source, field="system.sharding.shards")
    SHARDINGS.get(sharding.strategy, source=source, field="system.sharding.strategy")
    if sharding.nets is not None:
        try:
            check_nets(sharding.nets, meta.num_tables)
        except ShardingError as err:
            raise InputError(str(err), source=source, field=err.field) from None


def _check(exp: Experiment, names: list[str], source: str) -> None:
    sys_cfg = exp.system
    if sys_cfg.units:
        raise InputError("compute units in memory and remote nodes together are not "
                         "supported: give the nodes no 'units'", source=source,
                         field="system.units")
    if exp.run.mode == "training" or exp.run.functional:
        raise InputError("remote nodes simulate inference without the functional check",
                         source=source, field="run.mode" if exp.run.mode == "training"
                         else "run.functional")
    dense = sys_cfg.dense
    if dense is not None and dense.tier is not None and dense.tier not in sys_cfg.memory:
        raise InputError(f"unknown memory tier {dense.tier!r}; expected one of: "
                         f"{', '.join(sys_cfg.memory)}", source=source, field="system.dense.tier")
    taken = {*sys_cfg.memory, *sys_cfg.links, STAND_IN, "compute"}
    for name in names:
        node = sys_cfg.nodes[name]
        if name in taken:
            raise InputError(f"a node may not share its name with a memory tier, a link, "
                             f"'{STAND_IN}' or the host ({name!r}): their result columns would "
                             "collide", source=source, field=f"system.nodes.{name}")
        if node.link not in sys_cfg.links:
            known = ", ".join(sorted(sys_cfg.links)) or "(none: add one under system.links)"
            raise InputError(f"unknown network link {node.link!r}; expected one of: {known}",
                             source=source, field=f"system.nodes.{name}.link")


def _shard(exp: Experiment, meta: TraceMeta, names: list[str], source: str,
           profile: Profile | None) -> np.ndarray:
    """The node (index into ``names``) of each table."""
    sharding = exp.system.sharding
    strategy_name = sharding.strategy if sharding is not None else "capacity_balanced"
    strategy = SHARDINGS.get(strategy_name, source=source, field="system.sharding.strategy")
    table_bytes = (meta.row_bytes * meta.rows).astype(np.int64)
    loads = np.zeros(meta.num_tables)
    if profile is not None and strategy_name == "load_balanced":
        reads = profile(sharding.profile_batches if sharding is not None else None)
        per_table = np.add.reduceat(reads, meta.row_base[:-1]) if reads.size else loads
        loads = per_table * meta.row_bytes
    room = np.array([_room(exp, exp.system.nodes[n], n, source) for n in names],
                    dtype=np.int64)
    nets = sharding.nets if sharding is not None else None
    try:
        return strategy(ShardingInput(table_bytes, loads, room, nets))
    except ShardingError as err:
        raise InputError(str(err), source=source, field=err.field) from None


class RemoteNode(ComputeUnit):
    """A node holding some tables: pools their lookups, serves them as one remote request
    per query through its own system, and sends the pooled vectors back."""

    kind = "node"

    def __init__(self, name: str, index: int, tier_index: int, cfg: NodeConfig,
                 tables: np.ndarray, system: System, meta: TraceMeta):
        super().__init__(name, index, tier_index)
        self.cfg = cfg
        self.link = cfg.link
        self.tables = tables
        self.system = system
        self.meta = meta
        self.pooled_bytes = int(meta.batch_size * np.sum(meta.row_bytes))
        """Bytes of the pooled vectors one request returns (one per bag of its tables)."""
        self.requests = 0
        self.request_bytes = 0
        self.response_bytes = 0
        self.compute_s = 0.0
        self.queue_s = 0.0
        self.warm_cache_lookups = 0     # its row cache's lookups in a warm-up pass
        self._env: simpy.Environment | None = None
        self._fabric: Fabric | None = None
        self._workers: simpy.Resource | None = None
        self.log = QueryLog()
        """Its sub-queries, for its own system's invariants."""

    def serve(self, q: Query, share: np.ndarray | slice, fabric: Fabric) -> Process:
        env = fabric.env
        if self._env is not env:            # the run's clock: this node's fabric and workers
            self._env = env
            self._fabric = Fabric(env, self.system)
            self._workers = simpy.Resource(env, capacity=self.cfg.rpc_workers)
        assert self._fabric is not None and self._workers is not None
        batch = sub_batch(q.batch, self.tables)
        overhead = int(fabric.system.links[self.link].spec.message_overhead)
        request = INDEX_BYTES * (batch.indices.size + batch.offsets.size) + overhead
        floor = yield from fabric.cross(self.link, request, write=True)
        asked = env.now
        with self._workers.request() as worker:
            yield worker
            self.queue_s += env.now - asked
            yield env.timeout(self.cfg.rpc_overhead)
            sub = make_query(q.id, batch, env.now, self.system, self.meta.row_base)
            for stage in self.system.stages:
                sub.unloaded_s += yield from stage.run(sub, self._fabric)
            sub.finish_s = env.now
        self.log.add(sub)
        self.compute_s += self.cfg.rpc_overhead + sub.unloaded_s
        response = self.pooled_bytes + overhead
        floor += self.cfg.rpc_overhead + sub.unloaded_s
        floor += yield from fabric.cross(self.link, response, write=False)
        self.requests += 1
        self.request_bytes += request
        self.response_bytes += response
        self.pooled_lookups += batch.num_lookups
        return floor

    def warm(self, q: Query, share: np.ndarray | slice) -> None:
        sub = make_query(q.id, sub_batch(q.batch, self.tables), 0.0, self.system,
                         self.meta.row_base)
        for stage in self.system.stages:
            stage.warm(sub)
        self.warm_cache_lookups += sub.cache_lookups

    @property
    def energy_j(self) -> float:
        """Its own system's memory and link energy."""
        return (sum(t.energy_j for t in self.system.tiers.values())
                + sum(link.energy_j for link in self.system.links.values()))

    @energy_j.setter
    def energy_j(self, value: float) -> None:
        """Ignored: a node's energy is its system's (``ComputeUnit`` starts every unit at 0)."""

    def counters(self) -> dict[str, float]:
        return {"pooled_lookups": self.pooled_lookups, "requests": self.requests,
                "request_bytes": self.request_bytes, "response_bytes": self.response_bytes,
                "compute_s": self.compute_s, "queue_s": self.queue_s,
                "tables": int(self.tables.size),
                "cache_hits": cache.hits if (cache := self.system.cache) is not None else 0,
                "cache_misses": cache.misses if cache is not None else 0,
                **{k: v for k, v in self.system.host.counters().items()
                   if k != "pooled_lookups"}}         # its cores' (compute.cores), if any


class ByTable(Assignment):
    """Each lookup to the node that holds its table, in one pass over the query's lookups;
    ``owner``: the unit index of each table."""

    def __init__(self, owner: np.ndarray):
        self.owner = owner

    def assign(self, q: Query, units: list[ComputeUnit]) -> np.ndarray:  # type: ignore[override]
        return np.repeat(self.owner, np.diff(q.batch.table_bounds()))


class Cluster:
    """The nodes of a system: their summary columns and invariants."""

    def __init__(self, nodes: list[RemoteNode], main_query_overhead: float):
        self.nodes = nodes
        self.main_query_overhead = main_query_overhead

    def summary(self, log: QueryLog) -> dict[str, Any]:
        queries = len(log.ids)
        requests = sum(n.requests for n in self.nodes)
        return {
            "compute_s_total": (sum(n.compute_s for n in self.nodes)
                                + queries * self.main_query_overhead),
            "network_bytes": sum(n.request_bytes + n.response_bytes for n in self.nodes),
            "requests_per_query": requests / queries if queries else float("nan"),
        }

    def check(self, main: System) -> None:
        """Every node's own invariants; each request answered with its pooled vectors; the
        network links carried the requests and pooled vectors and nothing else."""
        from simulator.core.metrics import check_invariants
        for node in self.nodes:
            try:
                check_invariants(node.log, node.system, len(node.log.ids),
                                 node.warm_cache_lookups)
            except InvariantError as err:
                raise InvariantError(f"node {node.name}: {err}") from None
            overhead = int(main.links[node.link].spec.message_overhead)
            if node.response_bytes != node.requests * (node.pooled_bytes + overhead):
                raise InvariantError(f"node {node.name}: {node.requests} requests but "
                                     f"{node.response_bytes} bytes of pooled vectors sent")
        for name, link in main.links.items():
            carried = sum(n.request_bytes + n.response_bytes for n in self.nodes
                          if n.link == name)
            if carried and carried != link.bytes:
                raise InvariantError(f"link {name}: nodes sent {carried} bytes of requests "
                                     f"and pooled vectors but it carried {link.bytes}")


def build_cluster(exp: Experiment, meta: TraceMeta, source: str, profile: Profile | None,
                  memory_limit: int | None) -> System | None:
    """The main node's system with the nodes as its compute units (None when no node takes
    tables: the main node holds them all and is built as a system without nodes)."""
    from simulator.core.stages import pipeline
    from simulator.core.system import build_system

    _check_shards(exp, meta, source)
    names = active_nodes(exp)
    if not names:
        return None
    _check(exp, names, source)
    owner = _shard(exp, meta, names, source, profile)
    main = build_system(_main_experiment(exp, meta), meta, source, profile, memory_limit)
    nodes = []
    for i, name in enumerate(names):
        tables = np.flatnonzero(owner == i)
        if not tables.size:
            continue
        cfg = exp.system.nodes[name]
        sub_meta = TraceMeta(tables=[meta.tables[t] for t in tables],
                             batch_size=meta.batch_size, num_batches=meta.num_batches,
                             provenance=meta.provenance)
        sub_profile = None
        if profile is not None:
            ranges = [np.arange(meta.row_base[t], meta.row_base[t + 1]) for t in tables]
            rows = np.concatenate(ranges)

            def sub_profile(limit: int | None, rows: np.ndarray = rows) -> np.ndarray:
                return profile(limit)[rows]
        try:
            system = build_system(_node_experiment(exp, cfg), sub_meta, source, sub_profile,
                                  memory_limit)   # each node's estimate alone, not summed
        except InputError as err:
            raise _prefixed(err, name, source) from None
        nodes.append(RemoteNode(name, len(main.units), main.table_tiers.index(STAND_IN), cfg,
                                tables, system, sub_meta))
        main.units.append(nodes[-1])
    main.cluster = Cluster(nodes, exp.system.compute.query_overhead)
    unit_of = {names.index(n.name): n.index for n in nodes}
    main.assignment = ByTable(np.array([unit_of[i] for i in owner], dtype=np.int64))
    main.stages = pipeline(main)
    return main
