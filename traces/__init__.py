"""Embedding access traces: schema, streaming Parquet I/O, importers, generators, statistics.

Knows nothing of hardware. A trace is a sequence of ``Batch`` objects in FBGEMM's
table-batched-embedding (TBE) layout plus a ``TraceMeta`` describing the tables.
"""

from traces.batch import Batch
from traces.schema import TableSpec, TraceMeta

__all__ = ["Batch", "TableSpec", "TraceMeta"]
