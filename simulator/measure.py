"""``embsim measure``: execute every point of an experiment for real and time it.

Each point's workload (the same tables, dims, dtypes, pooling, batches and indices that the
simulator replays) runs through ``torch.nn.functional.embedding_bag`` on a backend. Tables get
seeded random values and live where the point's system puts them: in the processor's memory,
or (``host_memory: true`` tier) in pinned host memory read over the link. Per point: warm-up
calls on the first batch, then ``repeats`` passes over all batches in trace order, each pass
starting with flushed caches (as a simulation starts with cold caches); each batch is timed
alone, all tables' calls completed. The batch time of a point is the median over batches of
the per-batch median over passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from embsim.atomic import write_atomic
from embsim.errors import InputError
from simulator.backends import Backend
from simulator.experiment import Point, load_points, stable_hash
from simulator.workload import open_workload
from traces.batch import Batch
from traces.schema import TraceMeta

MEASUREMENT_KEY = b"embsim_measurement"
VALUE_DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class MeasureSettings:
    warmup: int = 3
    repeats: int = 5
    flush: bool = True


def place_tables(backend: Backend, meta: TraceMeta, where: str, seed: int,
                 kept: dict[tuple, list[Any]]) -> list[Any]:
    """Seeded random tables of the trace's shapes on ``backend``; the last set is kept in
    ``kept`` so consecutive points with the same tables do not rebuild them."""
    key = (tuple((t.rows, t.dim, t.dtype) for t in meta.tables), where, seed)
    if key not in kept:
        kept.clear()
        for t, table in enumerate(meta.tables):
            if table.dtype not in VALUE_DTYPES:
                raise InputError(f"table {t} has dtype {table.dtype}; measuring supports "
                                 f"{', '.join(VALUE_DTYPES)}", field="workload")
        try:
            kept[key] = [backend.random_table(t.rows, t.dim, t.dtype, where, seed + i)
                         for i, t in enumerate(meta.tables)]
        except MemoryError as err:
            raise InputError(f"the tables do not fit in {where} memory ({err})",
                             field="workload") from None
    return kept[key]


def table_location(point: Point) -> str:
    """``host`` when the point's tables live in a tier marked ``host_memory``, else ``local``."""
    system = point.config.system
    return "host" if system.memory[system.tables.home].host_memory else "local"


def workload_hash(point: Point) -> str:
    """Identity of what a measurement ran: the workload, the seeds, the pooling mode and where
    the tables were placed, and nothing of the simulated hardware, so that editing a model's
    parameters in the experiment keeps its measurements matched."""
    config = point.config
    data = {"workload": config.workload.model_dump(mode="json", exclude_defaults=True),
            "seed": config.run.seed, "pooling": config.system.compute.pooling,
            "tables": table_location(point)}
    return stable_hash(data)


def batch_bytes(meta: TraceMeta, batch: Batch) -> int:
    """Row bytes a batch reads: its lookups times their table's row size."""
    return int((np.diff(batch.table_bounds()) * meta.row_bytes).sum())


def measure_point(backend: Backend, point: Point, source: str, settings: MeasureSettings,
                  kept: dict[tuple, list[Any]]) -> dict[str, Any]:
    """Time one point's batches on ``backend``; one results row."""
    meta, make_batches = open_workload(point.config.workload, source)
    batches = list(make_batches())
    if not batches:
        raise InputError("the workload has no batches", source=source, field="workload")
    where = table_location(point)
    tables = place_tables(backend, meta, where, point.config.run.seed, kept)
    mode = point.config.system.compute.pooling
    runs = [backend.pooled_batch(tables, batch, mode) for batch in batches]
    for _ in range(settings.warmup):
        backend.time_call(runs[0])
    times = np.array([backend.time_pass(runs, settings.flush)
                      for _ in range(settings.repeats)])
    per_batch = np.median(times, axis=0)
    seconds = float(np.median(per_batch))
    lookups = np.array([b.num_lookups for b in batches])
    nbytes = np.array([batch_bytes(meta, b) for b in batches])
    return {
        "point": point.index, **point.overrides, "config_hash": point.config_hash,
        "workload_hash": workload_hash(point),
        "batches": len(batches), "repeats": settings.repeats, "warmup": settings.warmup,
        "flush": settings.flush, "table_location": where,
        "lookups_per_batch": float(lookups.mean()), "bytes_per_batch": float(nbytes.mean()),
        "time_per_batch_us": seconds * 1e6,
        "time_per_batch_min_us": float(times.min()) * 1e6,
        "time_per_batch_max_us": float(times.max()) * 1e6,
        "effective_bw_gbps": float(np.median(nbytes / per_batch)) / 1e9,
        "lookups_per_s": float(np.median(lookups / per_batch)),
    }


def write_measurements(frame: pd.DataFrame, provenance: dict[str, Any], path: Path) -> None:
    """Parquet with the provenance both as columns and as file metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[MEASUREMENT_KEY] = json.dumps(provenance).encode()
    table = table.replace_schema_metadata(metadata)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def read_provenance(path: Path) -> dict[str, Any]:
    """The provenance a measurements file carries in its metadata ({} if none)."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(MEASUREMENT_KEY)
    return json.loads(raw) if raw else {}


def measure_experiment(path: Path, backend: Backend, out: Path, sets: dict[str, Any],
                       settings: MeasureSettings, progress: bool = True) -> pd.DataFrame:
    """Measure every point of the experiment at ``path`` and write ``out``."""
    from tqdm import tqdm

    _, points = load_points(path, sets)
    provenance = backend.provenance() | {"experiment": str(path), "warmup": settings.warmup,
                                         "repeats": settings.repeats, "flush": settings.flush}
    rows: list[dict[str, Any]] = []
    kept: dict[tuple, list[Any]] = {}
    show = None if progress else False      # tqdm: None = only on a terminal
    for point in tqdm(points, unit="point", disable=show, leave=False,
                      desc=f"measure {backend.name}"):
        row = measure_point(backend, point, str(path), settings, kept)
        rows.append(row | {k: provenance[k] for k in ("backend", "device", "date", "host",
                                                       "torch")})
    frame = pd.DataFrame(rows)
    write_measurements(frame, provenance, out)
    return frame
