"""Batches from one-row-per-lookup columns (the Parquet and CSV layouts).

Row-per-lookup files arrive in chunks that ignore batch boundaries. ``assemble_batches``
carries the unfinished batch over chunk boundaries, so memory stays bounded by the largest
batch plus one chunk, whatever the file size. Every batch is checked: table, bag and row ids
in range of the metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields

import numpy as np

from embsim.errors import InputError
from traces.batch import Batch
from traces.schema import TraceMeta


@dataclass
class LookupColumns:
    """A run of lookups, one array element per lookup (all int64, same length)."""

    batch: np.ndarray
    table: np.ndarray
    bag: np.ndarray
    row: np.ndarray
    ts_ns: np.ndarray | None = None
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.row.size)

    def _map(self, take: Callable[[str], np.ndarray]) -> LookupColumns:
        """A LookupColumns of ``take(name)`` for every column present."""
        return LookupColumns(**{f.name: None if getattr(self, f.name) is None else take(f.name)
                                for f in fields(self)})

    def slice(self, start: int, stop: int) -> LookupColumns:
        return self._map(lambda name: getattr(self, name)[start:stop])

    @staticmethod
    def concat(parts: list[LookupColumns]) -> LookupColumns:
        if len(parts) == 1:
            return parts[0]
        return parts[0]._map(lambda name: np.concatenate([getattr(p, name) for p in parts]))


def _check_rows(batch_index: int, table: np.ndarray, row: np.ndarray, meta: TraceMeta,
               source: str) -> None:
    """Raise ``InputError`` naming the first lookup whose row is outside its table."""
    limit = meta.rows[table]
    bad = np.flatnonzero((row < 0) | (row >= limit))
    if bad.size:
        first = bad[0]
        t = int(table[first])
        raise InputError(
            f"batch {batch_index}, table {t}: row {int(row[first])} is outside [0, "
            f"{int(limit[first])}) (table {t} has {int(limit[first])} rows; "
            f"{bad.size} bad lookups in this batch)",
            source=source, field="row",
        )


def _check_range(values: np.ndarray, bound: int, batch_index: int, name: str,
                 source: str) -> None:
    bad = np.flatnonzero((values < 0) | (values >= bound))
    if bad.size:
        raise InputError(
            f"batch {batch_index}: {name} {int(values[bad[0]])} is outside [0, {bound})",
            source=source, field=name,
        )


def _build_batch(index: int, cols: LookupColumns, meta: TraceMeta, source: str) -> Batch:
    """One ``Batch`` from all lookups of batch ``index``, in any order within the batch."""
    num_tables, batch_size = meta.num_tables, meta.batch_size
    _check_range(cols.table, num_tables, index, "table", source)
    _check_range(cols.bag, batch_size, index, "bag", source)
    _check_rows(index, cols.table, cols.row, meta, source)
    bag_id = cols.table * batch_size + cols.bag
    if np.any(bag_id[1:] < bag_id[:-1]):
        order = np.argsort(bag_id, kind="stable")
        bag_id = bag_id[order]
        cols = cols._map(lambda name: getattr(cols, name)[order])
    counts = np.bincount(bag_id, minlength=num_tables * batch_size)
    offsets = np.zeros(num_tables * batch_size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    # copies: the batch owns writable arrays and does not pin the chunk it was cut from
    return Batch(index, np.array(cols.row, dtype=np.int64), offsets, num_tables, batch_size,
                 None if cols.ts_ns is None else np.array(cols.ts_ns, dtype=np.int64),
                 None if cols.weight is None else np.array(cols.weight, dtype=np.float32))


def _empty_batch(index: int, meta: TraceMeta, optional: tuple[str, ...]) -> Batch:
    """A batch in which every bag is empty (it has no rows in a row-per-lookup file)."""
    none = np.zeros(0, dtype=np.int64)
    offsets = np.zeros(meta.num_tables * meta.batch_size + 1, dtype=np.int64)
    return Batch(index, none, offsets, meta.num_tables, meta.batch_size,
                 none.copy() if "ts_ns" in optional else None,
                 np.zeros(0, dtype=np.float32) if "weight" in optional else None)


def assemble_batches(chunks: Iterable[LookupColumns], meta: TraceMeta, source: str,
                     optional: tuple[str, ...] = ()) -> Iterator[Batch]:
    """Batches 0, 1, ... from chunks of lookups ordered by batch.

    A batch id missing from the file is a batch whose bags are all empty; batches after the
    last id present are filled up to ``meta.num_batches`` when that is known.
    """
    next_index = 0
    pending: list[LookupColumns] = []
    pending_id = -1

    def emit(batch_id: int, parts: list[LookupColumns]) -> Iterator[Batch]:
        nonlocal next_index
        for gap in range(next_index, batch_id):
            yield _empty_batch(gap, meta, optional)
        yield _build_batch(batch_id, LookupColumns.concat(parts), meta, source)
        next_index = batch_id + 1

    for cols in chunks:
        ids = cols.batch
        if ids.size == 0:
            continue
        _check_order(ids, pending_id, meta, source)
        starts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        bounds = [0, *starts.tolist(), ids.size]
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            batch_id = int(ids[start])
            if batch_id != pending_id and pending:
                yield from emit(pending_id, pending)
                pending = []
            pending.append(cols.slice(start, stop))
            pending_id = batch_id
    if pending:
        yield from emit(pending_id, pending)
    for gap in range(next_index, meta.num_batches or 0):
        yield _empty_batch(gap, meta, optional)


def _check_order(ids: np.ndarray, previous: int, meta: TraceMeta, source: str) -> None:
    """Batch ids must be non-negative, non-decreasing and below ``meta.num_batches``."""
    back = np.flatnonzero(ids[1:] < ids[:-1])
    if ids[0] < previous or back.size:
        before, after = (previous, ids[0]) if ids[0] < previous else ids[back[0]: back[0] + 2]
        raise InputError(
            f"lookups must be ordered by batch, but batch {int(after)} follows batch "
            f"{int(before)}", source=source, field="batch",
        )
    if ids[0] < 0:
        raise InputError(f"batch id {int(ids[0])} is negative", source=source, field="batch")
    limit = meta.num_batches
    if limit is not None and ids[-1] >= limit:
        raise InputError(f"batch id {int(ids[-1])} is outside [0, {limit}) (num_batches in "
                         "the metadata)", source=source, field="batch")
