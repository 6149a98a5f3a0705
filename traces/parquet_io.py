"""The canonical on-disk trace: Parquet, one row per lookup, read and written as a stream.

Schema
------
One row per embedding lookup, columns in this order:

=========  =======  ==================================================================
column     type     meaning
=========  =======  ==================================================================
``batch``  int32    batch number, 0-based; batches are the unit a query/model step sees
``table``  int32    embedding table, 0-based index into the ``tables`` of the metadata
``bag``    int32    sample within the batch, in ``[0, batch_size)``; one bag per table
``row``    int64    row looked up, local to its table, in ``[0, tables[table].rows)``
``ts_ns``  int64    optional: timestamp of the lookup in nanoseconds
``weight`` float32  optional: per-sample weight of the lookup (weighted-sum pooling)
=========  =======  ==================================================================

Rows are ordered by ``batch``, then ``table``, then ``bag``; within a bag, in lookup order.
Readers accept any order of rows *within* a batch (they sort stably by table, then bag) and any
integer column type, but batches must not interleave. A bag with no lookups has no rows; a
batch with no lookups at all has no rows either, and is restored from the batch ids around it
and ``num_batches``.

The file's key-value metadata holds one key, ``embsim``, whose value is the JSON of
``TraceMeta.to_json()``::

    {"version": 1,
     "tables": [{"rows": 500000, "dim": 64, "dtype": "float32"}, ...],
     "batch_size": 64,            # B: bags per table in every batch
     "num_batches": 20,           # set by the writer when it closes
     "provenance": {"generator": "fbgemm_generate_requests", "seed": 0, ...}}

Row groups hold about ``row_group_lookups`` (2 Mi) lookups each; compression is zstd, with
dictionary encoding only for the batch, table and bag columns (row ids, timestamps and weights
hardly repeat within a row group: trying a dictionary on them cost a third of the write time
and saved nothing). Row ids and weights are written byte-stream-split (zstd then finds the
zero high bytes of ids without a dictionary's work: 1.8x the write speed of plain encoding at
a smaller file, measured with pyarrow 26), timestamps delta-encoded, and min/max statistics
are kept for the batch, table and bag columns only. The writer encodes each row group on a
thread of its own while the caller produces the next batches (pyarrow releases the GIL), one
row group at a time, so memory stays bounded. Files are written to a temporary file beside the
target and renamed on success, so a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embsim.atomic import temp_path_beside
from embsim.errors import InputError
from traces.assemble import LookupColumns, assemble_batches
from traces.batch import Batch
from traces.schema import TraceMeta

METADATA_KEY = "embsim"
COLUMNS = {"batch": pa.int32(), "table": pa.int32(), "bag": pa.int32(), "row": pa.int64()}
TIMESTAMP_COLUMN = "ts_ns"
OPTIONAL = {TIMESTAMP_COLUMN: pa.int64(), "weight": pa.float32()}
"""Optional columns and their types; a trace has each in every batch or in none."""
DICTIONARY = ["batch", "table", "bag"]
"""Columns written with dictionary encoding (long runs of few values); the only columns with
min/max statistics."""
ENCODINGS = {"row": "BYTE_STREAM_SPLIT", TIMESTAMP_COLUMN: "DELTA_BINARY_PACKED",
             "weight": "BYTE_STREAM_SPLIT"}
"""Encodings of the columns without a dictionary (see the module docstring)."""
ROW_GROUP_LOOKUPS = 1 << 21
READ_CHUNK_LOOKUPS = 1 << 20


def _schema(optional: tuple[str, ...]) -> pa.Schema:
    fields = [pa.field(name, kind, nullable=False) for name, kind in COLUMNS.items()]
    fields += [pa.field(name, OPTIONAL[name], nullable=False) for name in optional]
    return pa.schema(fields)


def _optional_of(batch: Batch) -> tuple[str, ...]:
    """The optional columns a batch carries."""
    return tuple(name for name, there in ((TIMESTAMP_COLUMN, batch.ts_ns is not None),
                                          ("weight", batch.weights is not None)) if there)


class TraceWriter:
    """Writes batches to a canonical Parquet trace; the file appears only on a clean close.

    Batches are numbered in the order written. Which optional columns (``ts_ns``, ``weight``)
    the file has is decided by the first batch. ``meta.num_batches`` is set to the count
    written at close.
    Row ids are not checked against the table sizes here (importers and readers do that), so
    tests can write deliberately bad traces.
    """

    def __init__(self, path: str | os.PathLike[str], meta: TraceMeta, *,
                 row_group_lookups: int = ROW_GROUP_LOOKUPS):
        self.path = Path(path)
        self.meta = replace(meta, num_batches=None)
        self.num_batches = 0
        self.num_lookups = 0
        self._row_group = row_group_lookups
        self._temp = temp_path_beside(self.path)
        self._writer: pq.ParquetWriter | None = None
        self._optional: tuple[str, ...] | None = None
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._encoder: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, batch: Batch) -> None:
        """Append ``batch`` as the next batch of the trace."""
        self._check_shape(batch)
        if self._optional is None:
            self._optional = _optional_of(batch)
        elif self._optional != _optional_of(batch):
            raise ValueError("every batch must carry the same optional columns (ts_ns, weight)")
        self.num_batches += 1
        if batch.num_lookups == 0:      # no rows: the reader restores it from its neighbours
            return                      # (buffering empty tables would grow without bound)
        num_bags = batch.num_tables * batch.batch_size
        bag_id = np.repeat(np.arange(num_bags, dtype=np.int32), np.diff(batch.offsets))
        table = bag_id // np.int32(batch.batch_size)
        columns = [
            np.full(batch.num_lookups, self.num_batches - 1, dtype=np.int32),
            table,
            bag_id - table * np.int32(batch.batch_size),
            batch.indices.astype(np.int64, copy=False),
        ]
        if batch.ts_ns is not None:
            columns.append(batch.ts_ns.astype(np.int64, copy=False))
        if batch.weights is not None:
            columns.append(batch.weights.astype(np.float32, copy=False))
        self._buffer.append(pa.Table.from_arrays(columns, schema=_schema(self._optional)))
        self._buffered += batch.num_lookups
        self.num_lookups += batch.num_lookups
        if self._buffered >= self._row_group:
            self._flush(final=False)

    def close(self) -> TraceMeta:
        """Finish the file and move it into place; returns the metadata as written."""
        try:
            self._flush(final=True)
            self._wait()
            self._stop_encoder()
            self.meta = replace(self.meta, num_batches=self.num_batches)
            assert self._writer is not None
            self._writer.add_key_value_metadata({METADATA_KEY: json.dumps(self.meta.to_json())})
            self._writer.close()
            os.replace(self._temp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.meta

    def abort(self) -> None:
        """Drop everything written so far; the target path is left untouched."""
        with contextlib.suppress(Exception):
            self._wait()
        self._stop_encoder()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        self._temp.unlink(missing_ok=True)

    def _check_shape(self, batch: Batch) -> None:
        meta = self.meta
        if (batch.num_tables, batch.batch_size) != (meta.num_tables, meta.batch_size):
            raise ValueError(f"batch has {batch.num_tables} tables x {batch.batch_size} bags, "
                             f"the trace {meta.num_tables} x {meta.batch_size}")
        if batch.offsets.size != meta.num_tables * meta.batch_size + 1 or (
                batch.offsets[0] != 0 or batch.offsets[-1] != batch.num_lookups):
            raise ValueError("batch offsets must have T*B+1 entries from 0 to len(indices)")

    def _flush(self, *, final: bool) -> None:
        """Hand the buffered whole row groups (every buffered row when ``final``) to the
        encoding thread, once the row groups handed before are written."""
        if self._writer is None:
            schema = _schema(self._optional or ())
            self._writer = pq.ParquetWriter(
                self._temp, schema, compression="zstd", use_dictionary=DICTIONARY,
                write_statistics=DICTIONARY,
                column_encoding={c: e for c, e in ENCODINGS.items() if c in schema.names})
            self._encoder = ThreadPoolExecutor(1, thread_name_prefix="trace-writer")
        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer)
        cut = table.num_rows if final else table.num_rows // self._row_group * self._row_group
        if cut:
            self._wait()
            assert self._encoder is not None
            self._pending = self._encoder.submit(self._writer.write_table, table.slice(0, cut),
                                                 row_group_size=self._row_group)
        rest = table.slice(cut)
        self._buffer = [rest] if rest.num_rows else []
        self._buffered = rest.num_rows

    def _wait(self) -> None:
        """Wait for the row groups being written, raising what writing them raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _stop_encoder(self) -> None:
        """Wait for the encoding thread to finish and end it."""
        if self._encoder is not None:
            self._encoder.shutdown(wait=True)
            self._encoder = None


def write_trace(path: str | os.PathLike[str], meta: TraceMeta,
                batches: Iterable[Batch]) -> TraceMeta:
    """Write every batch to ``path`` atomically; returns the metadata with ``num_batches``."""
    with TraceWriter(path, meta) as writer:
        for batch in batches:
            writer.write(batch)
    return writer.meta


class TraceReader:
    """A canonical Parquet trace opened for streaming; ``iter(reader)`` yields ``Batch``es.

    Memory stays bounded by one read chunk plus the largest batch, whatever the file size.
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 chunk_lookups: int = READ_CHUNK_LOOKUPS):
        self.path = Path(path)
        self._chunk = chunk_lookups
        self._file = _open_parquet(self.path)
        self.meta = _read_meta(self._file, str(self.path))
        self.optional = _check_columns(self._file.schema_arrow, str(self.path))

    @property
    def num_lookups(self) -> int:
        """Lookups in the file, from the Parquet footer (no scan)."""
        return int(self._file.metadata.num_rows)

    def __iter__(self) -> Iterator[Batch]:
        return assemble_batches(self._chunks(), self.meta, str(self.path), self.optional)

    def _chunks(self) -> Iterator[LookupColumns]:
        """Lookups in chunks, one row group at a time: ``iter_batches`` over the whole file
        keeps decoded row groups alive (measured with pyarrow 26: peak memory grew with file
        size), while one call per row group holds at most one row group."""
        names = [*COLUMNS, *self.optional]
        try:
            for group in range(self._file.num_row_groups):
                for record_batch in self._file.iter_batches(
                        batch_size=self._chunk, row_groups=[group], columns=names):
                    yield LookupColumns(**{
                        name: _column(record_batch.column(i), name, str(self.path))
                        for i, name in enumerate(names)})
        except (OSError, pa.ArrowException) as err:
            raise InputError(f"cannot read Parquet data: {err}", source=str(self.path)) from None


def open_trace(path: str | os.PathLike[str], *,
               chunk_lookups: int = READ_CHUNK_LOOKUPS) -> TraceReader:
    """Open a canonical Parquet trace; raises ``InputError`` if it is missing or malformed."""
    return TraceReader(path, chunk_lookups=chunk_lookups)


def _open_parquet(path: Path) -> pq.ParquetFile:
    if not path.is_file():
        raise InputError("no such trace file", source=str(path))
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError, pa.ArrowException) as err:   # a garbled footer: ValueError
        raise InputError(f"not a Parquet file ({err})", source=str(path)) from None


def _read_meta(file: pq.ParquetFile, source: str) -> TraceMeta:
    raw = (file.metadata.metadata or {}).get(METADATA_KEY.encode())
    if raw is None:
        raise InputError(f"not an embsim trace: no {METADATA_KEY!r} key in the Parquet "
                         "key-value metadata", source=source, field=METADATA_KEY)
    try:
        return TraceMeta.from_json(json.loads(raw))
    except InputError as err:
        field = f"{METADATA_KEY}.{err.field}" if err.field else METADATA_KEY
        raise InputError(err.detail, source=source, field=field) from None
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"corrupt trace metadata ({type(err).__name__}: {err})",
                         source=source, field=METADATA_KEY) from None


def _check_columns(schema: pa.Schema, source: str) -> tuple[str, ...]:
    """Every required column present with an integer type; the optional columns present."""
    present = []
    for name in [*COLUMNS, *OPTIONAL]:
        index = schema.get_field_index(name)
        if index < 0:
            if name in OPTIONAL:
                continue
            raise InputError(f"missing column {name!r}; expected columns "
                             f"{', '.join(COLUMNS)} [, {', '.join(OPTIONAL)}]",
                             source=source, field=name)
        if name in OPTIONAL:
            present.append(name)
        if name == "weight":
            if not pa.types.is_floating(schema.field(index).type):
                raise InputError(f"column 'weight' has type {schema.field(index).type}; "
                                 "expected a floating-point type", source=source,
                                 field="weight")
            continue
        if not pa.types.is_integer(schema.field(index).type):
            raise InputError(f"column {name!r} has type {schema.field(index).type}; expected "
                             f"an integer type ({COLUMNS.get(name, pa.int64())})",
                             source=source, field=name)
    return tuple(present)


def _column(column: pa.Array, name: str, source: str) -> np.ndarray:
    """A column as int64 (float32 for ``weight``); nulls are bad input."""
    if column.null_count:
        raise InputError(f"column {name!r} has {column.null_count} null values",
                         source=source, field=name)
    kind = np.float32 if name == "weight" else np.int64
    return column.to_numpy(zero_copy_only=False).astype(kind, copy=False)
