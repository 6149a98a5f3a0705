"""Where a run's batches come from: a trace file or a generator named in the experiment.

Generated workloads are kept in memory between the points of a sweep (keyed by the generator's
settings) when they are small, so sweeping the hardware does not regenerate the same lookups.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

from embsim.errors import InputError
from simulator.config import GeneratorConfig, WorkloadConfig
from traces.batch import Batch
from traces.generators import synthesize
from traces.models import model_preset
from traces.parquet_io import open_trace
from traces.schema import TableSpec, TraceMeta

BatchSource = Callable[[], Iterator[Batch]]

_KEEP_LOOKUPS = 50_000_000
_generated: OrderedDict[str, tuple[TraceMeta, list[Batch]]] = OrderedDict()


def _generator_tables(gen: GeneratorConfig, source: str) -> tuple[list[TableSpec], list[float]]:
    if gen.model is not None:
        try:
            preset = model_preset(gen.model)
        except InputError as err:
            raise InputError(err.detail, source=source, field="workload.generator.model") from None
        tables = [TableSpec(rows=gen.rows or t.rows, dim=gen.dim or t.dim, dtype=t.dtype)
                  for t in preset.tables[: gen.num_tables or len(preset.tables)]]
        pooling = [gen.pooling or p for p in preset.pooling[: len(tables)]]
        return tables, pooling
    assert gen.tables is not None
    tables = [TableSpec(rows=t.rows, dim=t.dim, dtype=t.dtype) for t in gen.tables]
    pooling = [t.pooling if t.pooling is not None else gen.pooling for t in gen.tables]
    return tables, pooling


def _generate(gen: GeneratorConfig, source: str) -> tuple[TraceMeta, BatchSource]:
    key = gen.model_dump_json()
    if key in _generated:
        _generated.move_to_end(key)
        meta, kept = _generated[key]
        return meta, lambda: iter(kept)
    tables, pooling = _generator_tables(gen, source)
    settings = dict(batches=gen.batches, batch_size=gen.batch_size, alpha=gen.alpha,
                    reuse=gen.reuse, pooling_dist=gen.pooling_dist,
                    pooling_sigma=gen.pooling_sigma, zipf_oversample=gen.zipf_oversample,
                    seed=gen.seed)
    try:
        meta, batches = synthesize(tables, pooling, **settings)
    except InputError as err:
        raise InputError(err.detail, source=source, field="workload.generator") from None
    expected = gen.batches * gen.batch_size * sum(pooling)
    if expected > _KEEP_LOOKUPS:
        return meta, lambda: synthesize(tables, pooling, **settings)[1]
    kept = list(batches)
    _generated[key] = (meta, kept)
    while sum(sum(b.num_lookups for b in v[1]) for v in _generated.values()) > _KEEP_LOOKUPS:
        _generated.popitem(last=False)
    return meta, lambda: iter(kept)


def open_workload(workload: WorkloadConfig, source: str) -> tuple[TraceMeta, BatchSource]:
    """Trace metadata and a function returning a fresh iterator over the run's batches."""
    if workload.trace is not None:
        path = Path(workload.trace)
        if not path.is_absolute():
            path = Path(source).parent / path
        meta = open_trace(path).meta
        make = lambda: iter(open_trace(path))  # noqa: E731
    else:
        assert workload.generator is not None
        meta, make = _generate(workload.generator, source)
    if workload.max_batches is None:
        return meta, make
    limit = workload.max_batches
    return meta, lambda: islice(make(), limit)
