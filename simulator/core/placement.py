"""Where each embedding row lives: placement policies over an ordered list of memory tiers.

``system.tables.tier`` lists the tiers the tables may use, fastest first; ``placement`` picks
the policy (``PLACEMENTS``):

- ``whole_tables``: each table lives whole in one tier. Tables are taken smallest first and each
  goes to the first tier with room left, so the fast tiers hold as many tables as fit.
- ``hot_rows``: rows are ranked by how often a profile of the trace (its first
  ``profile_batches`` batches) reads them, ties to the lower row id; the hottest fill the first
  tier, the next the second, and so on, as in Meta's Software Defined Memory study (Ardestani
  et al., ICDCS 2022), which keeps hot rows in DRAM and the rest on SCM or SSD.

A cache-managed placement is the tables in a slow tier with ``system.cache`` in front of it.
Within a tier each (table, tier) region is contiguous, aligned to the tier's alignment, and keeps
its rows in row-id order; a row takes ``stride`` bytes (its row, plus optimizer state in
training). A placement that leaves rows without room is an ``InputError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from embsim.errors import InputError
from embsim.registry import Registry
from embsim.units import format_size


def align(value: int, unit: int) -> int:
    """``value`` rounded up to a multiple of ``unit``."""
    return -(-value // unit) * unit


def align_each(sizes: np.ndarray, unit: int) -> np.ndarray:
    """Each of ``sizes`` rounded up to a multiple of ``unit``."""
    return -(-sizes // unit) * unit


@dataclass
class TierRoom:
    """What the placement may use of one tier."""

    name: str
    budget: int
    alignment: int


@dataclass
class Placement:
    """Tier and byte address of every row.

    Whole-table placements keep one entry per table (``table_tier``, ``table_base``); row-level
    ones keep one per global row (``row_tier``, ``row_address``).
    """

    tiers: list[str]
    stride: np.ndarray                    # bytes per row, per table
    row_base: np.ndarray                  # first global row id of each table (+ total)
    table_tier: np.ndarray | None = None
    table_base: np.ndarray | None = None
    row_tier: np.ndarray | None = None
    row_address: np.ndarray | None = None
    bytes_used: np.ndarray | None = None  # per tier

    def locate(self, global_rows: np.ndarray, per_table: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(tier index, byte address) of each global row; ``per_table`` (lookups of each
        table, when the rows come table by table as in a batch) saves a search."""
        if self.row_tier is not None:
            assert self.row_address is not None
            return self.row_tier[global_rows], self.row_address[global_rows]
        assert self.table_tier is not None and self.table_base is not None
        table = (np.repeat(np.arange(self.stride.size), per_table) if per_table is not None
                 else np.searchsorted(self.row_base, global_rows, side="right") - 1)
        local = global_rows - self.row_base[table]
        return self.table_tier[table], self.table_base[table] + local * self.stride[table]


    def row_bytes_of(self, global_rows: np.ndarray, row_bytes: np.ndarray) -> np.ndarray:
        """Bytes of each global row, from the per-table ``row_bytes``."""
        return row_bytes[np.searchsorted(self.row_base, global_rows, side="right") - 1]


PlacementPolicy = Callable[[list[TierRoom], np.ndarray, np.ndarray,
                            "np.ndarray | None"], Placement]
PLACEMENTS: Registry[PlacementPolicy] = Registry("placement policy")
RANKED = {"hot_rows"}
"""Policies that rank rows by a profile of the trace."""


def _no_room(rooms: list[TierRoom], needed: int) -> InputError:
    held = sum(room.budget for room in rooms)
    names = ", ".join(repr(room.name) for room in rooms)
    holds = f"tier {names} holds" if len(rooms) == 1 else f"tiers {names} hold"
    return InputError(f"the tables need {format_size(needed)} but {holds} "
                      f"{format_size(held)} for them", field="system.tables.tier")


def table_bytes(rows: np.ndarray, stride: np.ndarray, alignment: int) -> np.ndarray:
    """Bytes each whole table takes in a tier of the given alignment."""
    return np.array([align(int(r * s), alignment) for r, s in zip(rows, stride, strict=True)],
                    dtype=np.int64)


@PLACEMENTS.register("whole_tables")
def whole_tables(rooms: list[TierRoom], rows: np.ndarray, stride: np.ndarray,
                 frequency: np.ndarray | None = None) -> Placement:
    """Smallest tables first, each into the first tier with room left."""
    tier_of = np.full(rows.size, -1, dtype=np.int64)
    base = np.zeros(rows.size, dtype=np.int64)
    used = np.zeros(len(rooms), dtype=np.int64)
    order = np.argsort(rows * stride, kind="stable")
    for t in order:
        for k, room in enumerate(rooms):
            size = int(table_bytes(rows[t:t + 1], stride[t:t + 1], room.alignment)[0])
            if used[k] + size <= room.budget:
                tier_of[t], base[t] = k, used[k]
                used[k] += size
                break
        else:
            raise _no_room(rooms, int(sum(table_bytes(rows, stride, rooms[-1].alignment))))
    row_base = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
    return Placement([r.name for r in rooms], stride, row_base, table_tier=tier_of,
                     table_base=base, bytes_used=used)


@PLACEMENTS.register("hot_rows")
def hot_rows(rooms: list[TierRoom], rows: np.ndarray, stride: np.ndarray,
             frequency: np.ndarray | None = None) -> Placement:
    """Hottest rows (by profiled reads) into the first tier, the next into the second, ..."""
    row_base = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
    total = int(row_base[-1])
    counts = np.zeros(total, dtype=np.int64) if frequency is None else frequency
    table = np.repeat(np.arange(rows.size), rows)
    row_stride = stride[table]
    rank = np.lexsort((np.arange(total), -counts))          # hottest first, ties by row id
    # Fill tiers by cumulative bytes along the ranking; per-region alignment is charged up front
    # (one alignment unit per table and tier at most).
    row_tier = np.full(total, -1, dtype=np.int8)
    start = 0
    for k, room in enumerate(rooms):
        slack = rows.size * room.alignment
        room_left = max(room.budget - slack, 0)
        cumulative = np.cumsum(row_stride[rank[start:]])
        take = int(np.searchsorted(cumulative, room_left, side="right"))
        row_tier[rank[start:start + take]] = k
        start += take
    if start < total:
        raise _no_room(rooms, int(row_stride.sum()))
    row_address = np.zeros(total, dtype=np.int64)
    used = np.zeros(len(rooms), dtype=np.int64)
    for k, room in enumerate(rooms):
        for t in range(rows.size):
            lo, hi = row_base[t], row_base[t + 1]
            members = np.flatnonzero(row_tier[lo:hi] == k)
            if members.size == 0:
                continue
            row_address[lo + members] = used[k] + np.arange(members.size) * stride[t]
            used[k] += align(int(members.size * stride[t]), room.alignment)
    return Placement([r.name for r in rooms], stride, row_base, row_tier=row_tier,
                     row_address=row_address, bytes_used=used)


def place(policy: str, rooms: list[TierRoom], rows: np.ndarray, stride: np.ndarray,
          frequency: np.ndarray | None, *, source: str) -> Placement:
    """Run the placement policy called ``policy``; errors name the experiment file."""
    chosen = PLACEMENTS.get(policy, source=source, field="system.tables.placement")
    try:
        return chosen(rooms, rows, stride, frequency)
    except InputError as err:
        raise InputError(err.detail, source=source, field=err.field) from None
