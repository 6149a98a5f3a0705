"""Per-query arrays: what a batch asks of each tier, computed once with numpy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.system import System
from traces.batch import Batch


@dataclass
class Query:
    """One query (a batch of bags over the tables) and its timeline."""

    id: int
    batch: Batch
    arrival_s: float
    global_rows: np.ndarray
    row_bytes: np.ndarray
    state_bytes: np.ndarray         # optimizer state read and written per lookup in training
    tier: np.ndarray                # index into ``System.table_tiers`` of each lookup's row
    home_addresses: np.ndarray      # byte address of each lookup's row in its tier
    writeback_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tier_lookups: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    finish_s: float = float("nan")
    hits: int = 0
    cache_lookups: int = 0
    fetch_unloaded_s: float = 0.0
    pool_unloaded_s: float = 0.0
    update_unloaded_s: float = 0.0
    unloaded_s: float = 0.0

    @property
    def latency_s(self) -> float:
        return self.finish_s - self.arrival_s


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
