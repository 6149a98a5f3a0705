"""Where a run's batches come from: a trace file or a generator named in the experiment.

Generated workloads are kept in memory between the points of a sweep (keyed by the generator's
settings) when they are small, so sweeping the hardware does not regenerate the same lookups.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from embsim.errors import InputError
from simulator.core.config import GeneratorConfig, WorkloadConfig
from traces.batch import Batch
from traces.formats import detect_format
from traces.generators import synthesize
from traces.models import model_preset
from traces.parquet_io import open_trace
from traces.schema import TableSpec, TraceMeta

BatchSource = Callable[[], Iterator[Batch]]

KEEP_LOOKUPS = 50_000_000
"""Lookups of generated workloads kept in memory between the points of a sweep, at most."""
_generated: OrderedDict[str, tuple[TraceMeta, list[Batch]]] = OrderedDict()


def _generator_tables(gen: GeneratorConfig, source: str) -> tuple[list[TableSpec], list[float]]:
    if gen.model is not None:
        try:
            preset = model_preset(gen.model)
        except InputError as err:
            raise InputError(err.detail, source=source, field="workload.generator.model") from None
        if gen.num_tables is not None and gen.num_tables > len(preset.tables):
            raise InputError(f"model {gen.model!r} has {len(preset.tables)} tables; expected "
                             f"at most {len(preset.tables)}, got {gen.num_tables}",
                             source=source, field="workload.generator.num_tables")
        tables = [TableSpec(rows=gen.rows or t.rows, dim=gen.dim or t.dim,
                            dtype=gen.dtype or t.dtype)
                  for t in preset.tables[: gen.num_tables or len(preset.tables)]]
        pooling = [gen.pooling or p for p in preset.pooling[: len(tables)]]
        return tables, pooling
    assert gen.tables is not None
    tables = [TableSpec(rows=t.rows, dim=t.dim, dtype=gen.dtype or t.dtype) for t in gen.tables]
    pooling = [t.pooling if t.pooling is not None else gen.pooling for t in gen.tables]
    return tables, pooling


def _synthesize(gen: GeneratorConfig, source: str) -> tuple[TraceMeta, Iterator[Batch]]:
    """Metadata and a lazy batch iterator (nothing is generated until it is iterated)."""
    tables, pooling = _generator_tables(gen, source)
    try:
        return synthesize(tables, pooling, batches=gen.batches, batch_size=gen.batch_size,
                          alpha=gen.alpha, reuse=gen.reuse, pooling_dist=gen.pooling_dist,
                          pooling_sigma=gen.pooling_sigma, zipf_oversample=gen.zipf_oversample,
                          seed=gen.seed, weighted=gen.weighted, sampler=gen.sampler)
    except InputError as err:
        field = "workload.generator" + (f".{err.field}" if err.field else "")
        raise InputError(err.detail, source=source, field=field) from None


def _generate(gen: GeneratorConfig, source: str) -> tuple[TraceMeta, BatchSource]:
    key = gen.model_dump_json()
    if key in _generated:
        _generated.move_to_end(key)
        meta, kept = _generated[key]
        return meta, lambda: iter(kept)
    meta, batches = _synthesize(gen, source)
    mean_pooling = meta.provenance["pooling"]          # one mean per table, as synthesized
    if gen.batches * gen.batch_size * sum(mean_pooling) > KEEP_LOOKUPS:
        return meta, lambda: _synthesize(gen, source)[1]
    kept = list(batches)
    _generated[key] = (meta, kept)
    while sum(sum(b.num_lookups for b in v[1]) for v in _generated.values()) > KEEP_LOOKUPS:
        _generated.popitem(last=False)
    return meta, lambda: iter(kept)


def trace_path(workload: WorkloadConfig, source: str) -> Path:
    """The trace file's path (relative to the experiment's folder); a file of another format
    that ``embsim trace convert`` reads is refused with the command that converts it."""
    assert workload.trace is not None
    path = Path(workload.trace)
    path = path if path.is_absolute() else Path(source).parent / path
    if path.is_file():
        fmt = detect_format(path)
        if fmt != "parquet":
            needs = " --batch-size N" if fmt == "csv" else ""
            raise InputError(f"{str(path)!r} is a {fmt} file, not an embsim trace; convert it "
                             f"first: embsim trace convert {path} {path.with_suffix('.parquet')}"
                             f"{needs}", source=source, field="workload.trace")
    return path


_checked_traces: set[tuple[str, float, int]] = set()


def checked_trace(path: Path) -> TraceMeta:
    """Metadata of a trace file whose every row has been checked against its table.

    One streaming pass per file (and per process, while the file is unchanged), so that a
    row outside its table is bad input found before a sweep starts, not a failed point.
    """
    reader = open_trace(path)
    if reader.num_lookups == 0:
        raise InputError("the trace holds no lookups; expected at least one",
                         source=str(path))
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime, stat.st_size)
    if key not in _checked_traces:
        for _ in reader:       # the reader raises InputError on the first bad row
            pass
        _checked_traces.add(key)
    return reader.meta


def workload_meta(workload: WorkloadConfig, source: str) -> TraceMeta:
    """The workload's metadata without generating its batches (for validation); trace files
    are read through once to check their rows."""
    if workload.trace is not None:
        return checked_trace(trace_path(workload, source))
    assert workload.generator is not None
    cached = _generated.get(workload.generator.model_dump_json())
    return cached[0] if cached else _synthesize(workload.generator, source)[0]


def open_workload(workload: WorkloadConfig, source: str) -> tuple[TraceMeta, BatchSource]:
    """Trace metadata and a function returning a fresh iterator over the run's batches."""
    if workload.trace is not None:
        path = trace_path(workload, source)
        meta = open_trace(path).meta
        make = lambda: iter(open_trace(path))  # noqa: E731
    else:
        assert workload.generator is not None
        meta, make = _generate(workload.generator, source)
    if workload.max_batches is None:
        return meta, make
    limit = workload.max_batches
    return meta, lambda: islice(make(), limit)


def profile_rows(batches: Iterator[Batch], meta: TraceMeta, limit: int | None) -> np.ndarray:
    """Reads of each global row over the first ``limit`` batches (all when None)."""
    counts = np.zeros(meta.total_rows, dtype=np.int64)
    for batch in islice(batches, limit):
        counts += np.bincount(batch.global_rows(meta.row_base), minlength=meta.total_rows)
    return counts
