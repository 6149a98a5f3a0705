"""What a trace is: its tables and provenance (``TraceMeta``), independent of storage.

The on-disk form (Parquet, one row per lookup) is described in ``traces/parquet_io.py``.
"""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from embsim.errors import InputError
from embsim.limits import MAX_BATCH_SIZE, MAX_BATCHES, MAX_DIM, MAX_ROWS, MAX_TABLES
from embsim.validation import shown

VERSION = 1
"""Version of the metadata layout that ``to_json`` writes and ``from_json`` reads."""

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "float64": 8}
ROW_EXTRA_BYTES = {"int8": 8}
"""Bytes a row holds besides its elements: an int8 row is FBGEMM's fused 8-bit row-wise
quantized row (``FloatToFused8BitRowwiseQuantized``): its bytes, then a float32 scale and a
float32 bias."""


@dataclass(frozen=True)
class TableSpec:
    """One embedding table: ``rows`` x ``dim`` elements of ``dtype``."""

    rows: int
    dim: int
    dtype: str = "float32"

    def __post_init__(self) -> None:
        check_count("rows", self.rows, 1, MAX_ROWS)
        check_count("dim", self.dim, 1, MAX_DIM)
        if self.dtype not in DTYPE_BYTES:
            raise InputError(f"unknown dtype {self.dtype!r}; expected one of: "
                             f"{', '.join(sorted(DTYPE_BYTES))}")

    @property
    def row_bytes(self) -> int:
        return self.dim * DTYPE_BYTES[self.dtype] + ROW_EXTRA_BYTES.get(self.dtype, 0)


@dataclass
class TraceMeta:
    """Tables, batch shape and provenance of a trace.

    ``batch_size`` is B, the number of samples (bags per table) in every batch. ``provenance``
    records where the lookups came from: ``{"generator": ..., "seed": ..., ...}`` or
    ``{"source_file": ...}``.
    """

    tables: list[TableSpec]
    batch_size: int
    num_batches: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def num_tables(self) -> int:
        return len(self.tables)

    @property
    def rows(self) -> np.ndarray:
        return np.array([t.rows for t in self.tables], dtype=np.int64)

    @property
    def row_bytes(self) -> np.ndarray:
        return np.array([t.row_bytes for t in self.tables], dtype=np.int64)

    @property
    def row_base(self) -> np.ndarray:
        """First global row id of each table: tables laid end to end (length T + 1)."""
        return np.concatenate([[0], np.cumsum(self.rows)]).astype(np.int64)

    @property
    def total_rows(self) -> int:
        return int(self.rows.sum())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "tables": [asdict(t) for t in self.tables],
            "batch_size": self.batch_size,
            "num_batches": self.num_batches,
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TraceMeta:
        """The metadata ``to_json`` wrote; a version, count or size out of range is an
        ``InputError`` (other malformed data raises ``KeyError``, ``TypeError`` or
        ``ValueError``)."""
        if not isinstance(data, dict):
            raise InputError(f"expected a JSON object of the trace's tables and batch shape, "
                             f"got {shown(data)}")
        if data.get("version") != VERSION:
            raise InputError(f"expected {VERSION} (the metadata layout this embsim reads), got "
                             f"{shown(data.get('version'))}", field="version")
        check_count("batch_size", data["batch_size"], 1, MAX_BATCH_SIZE)
        if not isinstance(data["tables"], list) or not 1 <= len(data["tables"]) <= MAX_TABLES:
            raise InputError(f"expected a list of 1 to {MAX_TABLES} tables", field="tables")
        if data.get("num_batches") is not None:
            check_count("num_batches", data["num_batches"], 0, MAX_BATCHES)
        tables = []
        for index, table in enumerate(data["tables"]):
            try:
                tables.append(TableSpec(**table))
            except InputError as err:
                raise InputError(err.detail, field=f"tables.{index}.{err.field}") from None
        return cls(
            tables=tables,
            batch_size=int(data["batch_size"]),
            num_batches=data.get("num_batches"),
            provenance=dict(data.get("provenance", {})),
        )


def check_count(name: str, value: Any, low: int, high: int) -> None:
    """``InputError`` naming field ``name`` unless ``value`` is an integer (numpy's too) in
    ``[low, high]``."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or not low <= number <= high:
        raise InputError(f"expected an integer in [{low}, {high}], got {shown(value)}",
                         field=name)
