"""Readable trace formats, by name, and detection of a file's format from its content.

``FORMATS`` maps a name to a ``TraceFormat``: how to recognise a file (by its first bytes; by
its name only when no format claims those bytes), how to open it, and which options (batch
size, rows, dim, dtype) it takes.
Adding a format is one registration here plus its reader module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embsim.errors import InputError
from embsim.registry import Registry
from traces.batch import Batch
from traces.csv_io import import_csv
from traces.dlrm_datasets import GZIP_MAGIC, ZIP_MAGIC, import_dlrm_dataset
from traces.parquet_io import open_trace
from traces.schema import TraceMeta

PARQUET_MAGIC = b"PAR1"
PICKLE_MAGIC = b"\x80"
SNIFF_BYTES = 8
IMPORT_OPTIONS = ("batch_size", "rows", "dim", "dtype")

Opener = Callable[..., tuple[TraceMeta, Iterator[Batch]]]


@dataclass(frozen=True)
class TraceFormat:
    """A readable trace format, recognised by leading ``magic`` bytes or a name ``suffixes``."""

    description: str
    magic: tuple[bytes, ...]
    suffixes: tuple[str, ...]
    open: Opener
    options: tuple[str, ...] = ()


def _open_parquet(path: str | os.PathLike[str]) -> tuple[TraceMeta, Iterator[Batch]]:
    reader = open_trace(path)
    return reader.meta, iter(reader)


FORMATS: Registry[TraceFormat] = Registry("trace format")

FORMATS.register("parquet")(TraceFormat(
    "embsim canonical Parquet (traces/parquet_io.py)",
    (PARQUET_MAGIC,),
    (".parquet",),
    _open_parquet,
))
FORMATS.register("dlrm_datasets")(TraceFormat(
    "Meta dlrm_datasets torch.save (indices, offsets, lengths), .pt or .pt.gz",
    (GZIP_MAGIC, ZIP_MAGIC, PICKLE_MAGIC),
    (".pt", ".pt.gz"),
    import_dlrm_dataset,
    IMPORT_OPTIONS,
))
FORMATS.register("csv")(TraceFormat(
    "CSV with header batch,table,bag,row[,ts_ns]; needs a batch size",
    (b"batch",),
    (".csv",),
    import_csv,
    IMPORT_OPTIONS,
))


def detect_format(path: Path) -> str:
    """The format whose magic bytes start ``path``, else the one whose suffix ends its name."""
    if not path.is_file():
        raise InputError("no such trace file", source=str(path))
    with open(path, "rb") as file:
        head = file.read(SNIFF_BYTES)
    for name in FORMATS:
        if head.startswith(FORMATS.get(name).magic):
            return name
    for name in FORMATS:
        if path.name.lower().endswith(FORMATS.get(name).suffixes):
            return name
    raise InputError(f"unrecognised trace format; name one of: {', '.join(FORMATS.names())}",
                     source=str(path), field="format")


def open_any(path: str | os.PathLike[str], fmt: str | None = None,
             **options: Any) -> tuple[TraceMeta, Iterator[Batch]]:
    """Open a trace in ``fmt`` (detected from the file when None) with importer ``options``.

    Options set to None are ignored; an option the format does not take is an ``InputError``.
    """
    path = Path(path)
    name = fmt or detect_format(path)
    trace_format = FORMATS.get(name, source=str(path), field="format")
    given = {key: value for key, value in options.items() if value is not None}
    unused = sorted(set(given) - set(trace_format.options))
    if unused:
        raise InputError(f"option(s) {', '.join(unused)} do not apply to format {name!r}",
                         source=str(path), field=unused[0])
    return trace_format.open(path, **given)
