"""One query (a batch of bags over the tables): what it asks of the system, and what its stages
found and did, per lookup as numpy arrays and per stage as scalars."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from traces.batch import Batch

if TYPE_CHECKING:
    from simulator.core.system import System


def _none() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass
class Query:
    """A query's lookups (global row, size, home tier and address), what the stages decided
    about each (cache hit and slot, the unit that pools it) and its timeline."""

    id: int
    batch: Batch
    arrival_s: float
    global_rows: np.ndarray
    row_bytes: np.ndarray
    state_bytes: np.ndarray         # optimizer state read and written per lookup in training
    tier: np.ndarray                # index into ``System.table_tiers`` of each lookup's row
    home_addresses: np.ndarray      # byte address of each lookup's row in its tier
    local: np.ndarray = field(default_factory=_none)   # in the host's own tier
    hit: np.ndarray = field(default_factory=_none)     # served by the row cache
    slot: np.ndarray = field(default_factory=_none)    # its cache slot (-1: none)
    unit: np.ndarray = field(default_factory=_none)    # index of the unit that pools it
    writeback_rows: np.ndarray = field(default_factory=_none)
    tier_lookups: np.ndarray = field(default_factory=_none)
    fetches: list[Any] = field(default_factory=list)    # the host's transfers of its rows
    fetch_unloaded_s: float = 0.0
    partials: int = 0               # partial vectors other units sent to the host
    partial_bags: dict[int, np.ndarray] = field(default_factory=dict)  # per sender: its bags
    dense_bottom: Any = None        # the bottom MLP's process (system.dense)
    embedding_s: float = float("nan")   # arrival to the end of the embedding stages
    bottom_s: float = float("nan")      # arrival to the bottom MLP's end (it waits for none)
    top_s: float = float("nan")         # the interaction and top MLP
    finish_s: float = float("nan")
    hits: int = 0
    cache_lookups: int = 0
    unloaded_s: float = 0.0

    @property
    def latency_s(self) -> float:
        return self.finish_s - self.arrival_s

    def share(self, unit: int) -> np.ndarray | slice:
        """The lookups ``unit`` pools: an index array, or ``slice(None)`` when it pools all."""
        mine = self.unit == unit
        return slice(None) if mine.all() else np.flatnonzero(mine)

    def bags(self) -> np.ndarray:
        """The bag (table * batch_size + sample) of each lookup."""
        return np.repeat(np.arange(self.batch.offsets.size - 1), np.diff(self.batch.offsets))


def make_query(query_id: int, batch: Batch, arrival_s: float, system: System,
               row_base: np.ndarray) -> Query:
    """Global row ids, per-lookup row sizes, tiers and addresses of a batch's lookups."""
    per_table = np.diff(batch.table_bounds())
    layout = system.layout
    row_bytes = np.repeat(layout.row_bytes, per_table)
    global_rows = batch.global_rows(row_base)
    tier, addresses = system.placement.locate(global_rows, per_table)
    return Query(id=query_id, batch=batch, arrival_s=arrival_s, global_rows=global_rows,
                 row_bytes=row_bytes,
                 state_bytes=np.repeat(layout.stride - layout.row_bytes, per_table),
                 tier=tier.astype(np.int64, copy=False), home_addresses=addresses)
