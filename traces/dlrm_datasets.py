"""Importer for Meta's open embedding-lookup traces (github.com/facebookresearch/dlrm_datasets).

Each file is a ``torch.save`` of the tuple ``(indices, offsets, lengths)``, optionally gzip'd
(``.pt.gz``; recognised by its magic bytes, not its name):

- ``indices``: int64, every looked-up row, table-major over T tables and B samples;
- ``offsets``: prefix sums of length T*B + 1, starting at 0: bag (t, b) is
  ``indices[offsets[t*B + b] : offsets[t*B + b + 1]]``;
- ``lengths``: shape (T, B), the pooling factor of each bag (``diff(offsets)``).

Table sizes are not stored: by default each table gets its largest row id + 1 rows. The B
samples are cut into batches of ``batch_size``; when B is not a multiple, the last
``B mod batch_size`` samples are dropped and their number recorded in the provenance as
``dropped_samples``. The whole tuple is loaded at once (memory-mapped when the file is in
torch's zip format; a gzip'd file is first decompressed to a temporary file).
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from embsim.errors import InputError
from traces.batch import Batch
from traces.row_counts import resolve_rows
from traces.schema import TableSpec, TraceMeta

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
FIELDS = ("indices", "offsets", "lengths")


def import_dlrm_dataset(path: str | os.PathLike[str], *, batch_size: int | None = None,
                        rows: list[int] | int | None = None, dim: int = 64,
                        dtype: str = "float32") -> tuple[TraceMeta, Iterator[Batch]]:
    """Metadata and batches of a dlrm_datasets file (see the module doc)."""
    path = Path(path)
    source = str(path)
    indices, offsets, lengths = _check_layout(_load_tuple(path), source)
    num_tables, samples = lengths.shape
    batch_size = samples if batch_size is None else int(batch_size)
    if not 1 <= batch_size <= samples:
        raise InputError(f"batch size must be in [1, {samples}] (samples in the file), got "
                         f"{batch_size}", source=source, field="batch_size")
    observed = _largest_row_plus_one(indices, offsets[::samples])
    try:
        tables = [TableSpec(r, dim, dtype) for r in resolve_rows(rows, observed, source)]
    except InputError as err:
        raise InputError(err.detail, source=source, field=err.field or "tables") from None
    provenance = {
        "format": "dlrm_datasets", "source_file": source, "samples": samples,
        "batch_size": batch_size, "dropped_samples": samples % batch_size,
        "rows": "inferred" if rows is None else "given",
    }
    meta = TraceMeta(tables, batch_size, num_batches=samples // batch_size,
                     provenance=provenance)
    return meta, _batches(indices, offsets, lengths, batch_size)


def _batches(indices: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
             batch_size: int) -> Iterator[Batch]:
    num_tables, samples = lengths.shape
    table_start = np.arange(num_tables) * samples
    for index in range(samples // batch_size):
        first, stop = index * batch_size, (index + 1) * batch_size
        starts, ends = offsets[table_start + first], offsets[table_start + stop]
        rows = np.concatenate([indices[a:b] for a, b in zip(starts, ends, strict=True)])
        bag_lengths = lengths[:, first:stop].ravel()
        batch_offsets = np.zeros(bag_lengths.size + 1, dtype=np.int64)
        np.cumsum(bag_lengths, out=batch_offsets[1:])
        yield Batch(index, rows.astype(np.int64, copy=False), batch_offsets, num_tables,
                    batch_size)


def _load_tuple(path: Path) -> Any:
    """The object saved in ``path``, gunzipping first when the file starts with gzip magic."""
    if not path.is_file():
        raise InputError("no such file", source=str(path))
    torch = _import_torch(str(path))
    with open(path, "rb") as file:
        magic = file.read(4)
    if not magic.startswith(GZIP_MAGIC):
        return _torch_load(torch, path, magic, str(path))
    with tempfile.NamedTemporaryFile(suffix=".pt") as plain:
        try:
            with gzip.open(path, "rb") as packed:
                shutil.copyfileobj(packed, plain, 1 << 22)
        except (OSError, EOFError) as err:
            raise InputError(f"corrupt gzip data ({err})", source=str(path)) from None
        plain.flush()
        plain.seek(0)
        return _torch_load(torch, Path(plain.name), plain.read(4), str(path))


def _import_torch(source: str) -> Any:
    try:
        import torch
    except ImportError:
        raise InputError("reading dlrm_datasets files needs PyTorch; install it with "
                         "pip install 'embsim[torch]'", source=source) from None
    return torch


def _torch_load(torch: Any, file: Path, magic: bytes, source: str) -> Any:
    """``torch.load`` with ``weights_only=True``; memory-mapped for zip-format files. Its
    warnings (a garbage file can look like a pickle of another protocol) are silenced: the
    user reads one line, the error, when the file is not a readable one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(file, map_location="cpu", weights_only=True,
                              mmap=magic.startswith(ZIP_MAGIC))
    except Exception as err:  # torch raises many types for a file it cannot read
        raise InputError(f"not a readable torch.save file ({type(err).__name__}: "
                         f"{_gist(str(err))})", source=source) from None


def _gist(text: str) -> str:
    """What a torch error says was wrong, at most 200 characters: the weights-only unpickler's
    verdict when there is one (the rest is advice on loading untrusted files), else the first
    line."""
    head, marker, verdict = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (verdict if marker else head).splitlines() if line.strip()]
    return " ".join(lines[:1])[:200]


def _check_layout(obj: Any, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tuple as int64 numpy arrays, checked to be one consistent TBE input."""
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3
            and all(hasattr(x, "numpy") for x in obj)):
        raise InputError(f"expected a tuple of 3 tensors {FIELDS}, got {type(obj).__name__}",
                         source=source)
    arrays = []
    for name, tensor, ndim in zip(FIELDS, obj, (1, 1, 2), strict=True):
        try:
            array = tensor.detach().numpy()
        except (RuntimeError, TypeError) as err:  # e.g. a sparse or non-CPU tensor
            raise InputError(f"cannot read as an array ({err})", source=source,
                             field=name) from None
        if array.dtype.kind not in "iu" or array.ndim != ndim:
            raise InputError(f"expected a {ndim}-D integer tensor, got {array.ndim}-D "
                             f"{array.dtype}", source=source, field=name)
        arrays.append(array.astype(np.int64, copy=False))
    indices, offsets, lengths = arrays
    num_tables, samples = lengths.shape
    problems = [
        (num_tables == 0 or samples == 0, "lengths",
         f"has shape ({num_tables}, {samples}); expected at least one table and one sample"),
        (offsets.size != num_tables * samples + 1, "offsets",
         f"has {offsets.size} entries; expected T*B + 1 = {num_tables * samples + 1} for "
         f"lengths of shape ({num_tables}, {samples})"),
        (offsets.size and offsets[0] != 0, "offsets", "must start at 0"),
        (offsets.size and offsets[-1] != indices.size, "offsets",
         f"ends at {offsets[-1] if offsets.size else None}; expected len(indices) = "
         f"{indices.size}"),
        (bool(np.any(np.diff(offsets) < 0)), "offsets", "must be non-decreasing"),
        (bool(np.any(lengths < 0)), "lengths", "must be >= 0"),
        (not np.array_equal(np.diff(offsets), lengths.ravel()), "lengths",
         f"sum to {int(lengths.sum())} and must equal diff(offsets), bag by bag"),
        (bool(indices.size and indices.min() < 0), "indices", "must be >= 0"),
    ]
    for bad, name, message in problems:
        if bad:
            raise InputError(message, source=source, field=name)
    return indices, offsets, lengths


def _largest_row_plus_one(indices: np.ndarray, table_bounds: np.ndarray) -> np.ndarray:
    """Per table, the largest row id + 1 (0 for a table without lookups)."""
    observed = np.zeros(table_bounds.size - 1, dtype=np.int64)
    used = np.flatnonzero(np.diff(table_bounds) > 0)
    if used.size:
        observed[used] = np.maximum.reduceat(indices, table_bounds[used]) + 1
    return observed
