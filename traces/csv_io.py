"""Importer for CSV traces with the canonical columns (see ``traces/parquet_io.py``).

The file has a header naming ``batch,table,bag,row`` and optionally ``ts_ns`` and ``weight``
(in any column order; other columns are ignored), then one line per lookup, ordered by batch.
The batch size must be given; row counts are inferred (largest row id + 1 per table, found in a
first streaming pass) unless given. Both passes stream, so memory does not grow with the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from embsim.errors import InputError
from traces.assemble import LookupColumns, assemble_batches
from traces.batch import Batch
from traces.parquet_io import COLUMNS, OPTIONAL
from traces.row_counts import resolve_rows
from traces.schema import TableSpec, TraceMeta

BLOCK_BYTES = 8 << 20


def import_csv(path: str | os.PathLike[str], *, batch_size: int | None = None,
               rows: list[int] | int | None = None, dim: int = 64,
               dtype: str = "float32") -> tuple[TraceMeta, Iterator[Batch]]:
    """Metadata and batches of a CSV trace (see the module doc)."""
    path = Path(path)
    source = str(path)
    names = _header_columns(path)
    if batch_size is None or batch_size < 1:
        raise InputError("a CSV trace needs a batch size >= 1 (--batch-size)", source=source,
                         field="batch_size")
    observed = _largest_row_plus_one(path, names)
    if isinstance(rows, list) and len(rows) > observed.size:
        observed = np.pad(observed, (0, len(rows) - observed.size))
    try:
        tables = [TableSpec(r, dim, dtype) for r in resolve_rows(rows, observed, source)]
    except InputError as err:
        raise InputError(err.detail, source=source, field=err.field or "tables") from None
    if not tables:
        raise InputError("the file has no lookups and no row counts were given", source=source,
                         field="rows")
    provenance = {"format": "csv", "source_file": source,
                  "rows": "inferred" if rows is None else "given"}
    meta = TraceMeta(tables, int(batch_size), provenance=provenance)
    optional = tuple(name for name in OPTIONAL if name in names)
    return meta, assemble_batches(_chunks(path, names), meta, source, optional)


def _header_columns(path: Path) -> list[str]:
    """The canonical columns present, in canonical order; ``InputError`` if one is missing."""
    if not path.is_file():
        raise InputError("no such file", source=str(path))
    try:
        with open(path, encoding="utf-8") as file:
            header = [name.strip() for name in file.readline().split(",")]
    except UnicodeDecodeError:
        raise InputError("not a text CSV file", source=str(path)) from None
    for name in COLUMNS:
        if name not in header:
            raise InputError(f"missing column {name!r} in the header; expected "
                             f"{','.join(COLUMNS)}[,{','.join(OPTIONAL)}]", source=str(path),
                             field=name)
    return [*COLUMNS, *(name for name in OPTIONAL if name in header)]


def _chunks(path: Path, names: list[str]) -> Iterator[LookupColumns]:
    types = {name: pa.float32() if name == "weight" else pa.int64() for name in names}
    options = pacsv.ConvertOptions(include_columns=names, column_types=types)
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
                                convert_options=options)
        for record_batch in reader:
            columns = [record_batch.column(name) for name in names]
            for name, column in zip(names, columns, strict=True):
                if column.null_count:
                    raise InputError(f"{column.null_count} empty values", source=str(path),
                                     field=name)
            yield LookupColumns(**{name: column.to_numpy()
                                   for name, column in zip(names, columns, strict=True)})
    except pa.ArrowException as err:
        raise InputError(f"cannot parse CSV: {err}", source=str(path)) from None


def _largest_row_plus_one(path: Path, names: list[str]) -> np.ndarray:
    """First pass: per table id seen, the largest row id + 1 (0 where unused)."""
    observed = np.zeros(0, dtype=np.int64)
    for cols in _chunks(path, names):
        if cols.table.size == 0:
            continue
        if cols.table.min() < 0:
            raise InputError(f"table id {int(cols.table.min())} is negative", source=str(path),
                             field="table")
        size = max(observed.size, int(cols.table.max()) + 1)
        observed = np.pad(observed, (0, size - observed.size))
        np.maximum.at(observed, cols.table, cols.row + 1)
    return observed
