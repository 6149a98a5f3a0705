"""Sharding strategies: which remote node holds each embedding table (``system.sharding``).

A strategy maps whole tables to shards (nodes), given each table's bytes, its load (bytes its
lookups read in the trace's profile) and each node's room for tables. Registered by name in
``SHARDINGS``; the rules follow the strategies Lui et al. compare ("Understanding
Capacity-Driven Scale-Out Neural Recommendation Inference", ISPASS 2021), as embsim reads them:

- ``one_table_per_shard``: table i on node i (needs a node per table).
- ``capacity_balanced``: tables, largest first, each on the node with the most free room, so
  every shard holds about the same bytes.
- ``load_balanced``: tables, heaviest load first (from the profile), each on the node with the
  least load so far among those with room, so every shard serves about the same bytes.
- ``net_specific_bin_packing``: the tables of each net (``sharding.nets``: the groups of tables
  one sub-network of the model reads together; default one net of all tables) are bin-packed,
  largest first, into as few nodes as hold them (first fit), each net on nodes of its own, so a
  request of that net goes to as few shards as capacity allows.

A table that fits no node is an error (``ShardingError``, turned into an ``InputError`` naming
``system.sharding`` by the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from embsim.registry import Registry
from embsim.units import format_size


class ShardingError(ValueError):
    """A strategy cannot place the tables on the nodes it was given; ``field``: the config
    field to name (under ``system.sharding``)."""

    def __init__(self, message: str, field: str = "system.sharding"):
        super().__init__(message)
        self.field = field


@dataclass
class ShardingInput:
    """What a strategy decides from: per table its bytes and load, per node its room for
    tables, and the nets (lists of table indices; None: one net of every table)."""

    table_bytes: np.ndarray
    loads: np.ndarray
    room: np.ndarray
    nets: list[list[int]] | None = None


Strategy = Callable[[ShardingInput], np.ndarray]
SHARDINGS: Registry[Strategy] = Registry("sharding strategy")


def _unfit(table: int, size: int, room: np.ndarray) -> ShardingError:
    return ShardingError(f"table {table} ({format_size(size)}) fits no node: the most room "
                         f"left on one is {format_size(int(room.max()))}")


def _balance(inp: ShardingInput, order: np.ndarray, most_room: bool) -> np.ndarray:
    """Tables in ``order``, each on the node with the most free room (``most_room``) or the
    least load so far, among the nodes with room for it (ties: the first node)."""
    room = inp.room.astype(np.int64).copy()
    load = np.zeros(room.size, dtype=np.float64)
    node = np.full(inp.table_bytes.size, -1, dtype=np.int64)
    for t in order:
        size = int(inp.table_bytes[t])
        fits = np.flatnonzero(room >= size)
        if not fits.size:
            raise _unfit(int(t), size, room)
        key = -room[fits] if most_room else load[fits]
        chosen = int(fits[np.argmin(key)])
        node[t] = chosen
        room[chosen] -= size
        load[chosen] += inp.loads[t]
    return node


@SHARDINGS.register("one_table_per_shard")
def one_table_per_shard(inp: ShardingInput) -> np.ndarray:
    tables = inp.table_bytes.size
    if inp.room.size < tables:
        raise ShardingError(f"one table per shard needs {tables} nodes; {inp.room.size} given",
                            "system.sharding.shards")
    node = np.arange(tables, dtype=np.int64)
    over = np.flatnonzero(inp.table_bytes > inp.room[:tables])
    if over.size:
        t = int(over[0])
        raise ShardingError(f"table {t} ({format_size(int(inp.table_bytes[t]))}) does not fit "
                            f"its node ({format_size(int(inp.room[t]))})")
    return node


@SHARDINGS.register("capacity_balanced")
def capacity_balanced(inp: ShardingInput) -> np.ndarray:
    return _balance(inp, np.argsort(-inp.table_bytes, kind="stable"), most_room=True)


@SHARDINGS.register("load_balanced")
def load_balanced(inp: ShardingInput) -> np.ndarray:
    order = np.lexsort((-inp.table_bytes, -inp.loads))     # heaviest load, then largest
    return _balance(inp, order, most_room=False)


@SHARDINGS.register("net_specific_bin_packing")
def net_specific_bin_packing(inp: ShardingInput) -> np.ndarray:
    tables = inp.table_bytes.size
    nets = inp.nets if inp.nets is not None else [list(range(tables))]
    room = inp.room.astype(np.int64).copy()
    node = np.full(tables, -1, dtype=np.int64)
    next_free = 0
    for net in nets:
        opened: list[int] = []
        for t in sorted(net, key=lambda t: (-int(inp.table_bytes[t]), t)):
            size = int(inp.table_bytes[t])
            chosen = next((n for n in opened if room[n] >= size), None)
            while chosen is None and next_free < room.size:
                opened.append(next_free)
                next_free += 1
                if room[opened[-1]] >= size:
                    chosen = opened[-1]
            if chosen is None:
                raise ShardingError(f"table {t} ({format_size(size)}) fits none of the nodes "
                                    "left for its net")
            node[t] = chosen
            room[chosen] -= size
    return node


def check_nets(nets: list[list[int]], tables: int) -> None:
    """Every table in exactly one net."""
    flat = [t for net in nets for t in net]
    if sorted(flat) != list(range(tables)):
        raise ShardingError(f"nets must list every table 0..{tables - 1} exactly once; got "
                            f"{nets}", "system.sharding.nets")
