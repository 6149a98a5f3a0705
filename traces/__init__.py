"""Embedding access traces: schema, streaming Parquet I/O, importers, generators, statistics.

Knows nothing of hardware. A trace is a sequence of ``Batch`` objects in FBGEMM's
table-batched-embedding (TBE) layout plus a ``TraceMeta`` describing the tables.

The rest of the public API is importable from here too; those modules load on first use, so
``from traces import Batch`` stays cheap (no numba, scipy or pyarrow).
"""

from importlib import import_module
from typing import Any

from traces.batch import Batch
from traces.schema import TableSpec, TraceMeta

_LAZY = {
    "TraceReader": "traces.parquet_io", "TraceWriter": "traces.parquet_io",
    "open_trace": "traces.parquet_io", "write_trace": "traces.parquet_io",
    "GENERATORS": "traces.generators", "synthesize": "traces.generators",
    "MODELS": "traces.models", "ModelPreset": "traces.models", "model_preset": "traces.models",
    "import_dlrm_dataset": "traces.dlrm_datasets", "import_csv": "traces.csv_io",
    "FORMATS": "traces.formats", "open_any": "traces.formats",
    "TraceStats": "traces.stats", "trace_stats": "traces.stats",
    "StackDistanceMRC": "traces.mrc", "lru_mrc": "traces.mrc",
}

__all__ = ["Batch", "TableSpec", "TraceMeta", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'traces' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
