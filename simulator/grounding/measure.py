"""``embsim measure``: execute every point of an experiment for real and time it.

Each point's workload (the same tables, dims, dtypes, pooling, batches and indices that the
simulator replays) runs on a backend through its kernel: ``torch.nn.functional.embedding_bag``
per table, or FBGEMM's TBE over all tables (``--kernel tbe``). Tables get seeded random values
and live where the point's system puts them: in the processor's memory, or (``host_memory:
true`` tier) in host memory read over the link (pinned, or FBGEMM's UVM with TBE). Each round
rebuilds a point's tables when the previous point used others. Per point: ``warmup``
untimed passes over all batches (calls on the first batch when flushing), then ``repeats``
passes over all batches in trace order, each pass starting with flushed caches (as a
simulation starts with cold caches) unless ``--no-flush``;
each batch is timed alone, all tables' calls completed. With ``--rounds N`` the whole
experiment runs N times and each point pools the passes of every round. The batch time of a
point is the median over batches of the per-batch median over passes.
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
from simulator.core.workload import open_workload
from simulator.grounding.backends import Backend
from simulator.grounding.backends.base import typical_seconds
from simulator.runs.experiment import Point, load_points, stable_hash
from traces.batch import Batch
from traces.schema import TraceMeta

MEASUREMENT_KEY = b"embsim_measurement"
VALUE_DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class MeasureSettings:
    warmup: int = 3
    repeats: int = 5
    flush: bool = True
    rounds: int = 1
    """Times the whole experiment is run; each point's passes from every round are pooled, so
    a machine whose speed drifts over tens of seconds is sampled at several times."""


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
    parameters in the experiment keeps its measurements matched. An encrypted lookup's scheme
    and CKKS parameters are part of what ran (an ``fhe`` unit's options but its presets)."""
    config = point.config
    data = {"workload": config.workload.model_dump(mode="json", exclude_defaults=True),
            "seed": config.run.seed, "pooling": config.system.compute.pooling,
            "tables": table_location(point)}
    encrypted = {name: {k: v for k, v in unit.options().items()
                        if k not in FHE_HARDWARE_KEYS}
                 for name, unit in config.system.units.items() if unit.kind == "fhe"}
    if encrypted:
        data["fhe"] = encrypted
    dense = config.system.dense
    if dense is not None:              # the layers' shapes, not the engine that runs them
        data["dense"] = dense.model_dump(mode="json", exclude_defaults=True,
                                         exclude={"preset", "params", "tier"})
    return stable_hash(data)


FHE_HARDWARE_KEYS = ("tier", "preset", "params", "client_preset", "link", "keys", "keys_link",
                     "tables_link", "workspace", "table_encoding")
"""Options of an ``fhe`` unit that choose simulated hardware, not what a measurement ran."""


def batch_bytes(meta: TraceMeta, batch: Batch) -> int:
    """Row bytes a batch reads: its lookups times their table's row size."""
    return int((np.diff(batch.table_bounds()) * meta.row_bytes).sum())


@dataclass
class PointTimes:
    """What one point's batches ask for, and the seconds of every timed pass over them."""

    where: str
    lookups: np.ndarray             # per batch
    nbytes: np.ndarray              # row bytes per batch
    passes: list[np.ndarray]


def time_point(backend: Backend, point: Point, source: str, settings: MeasureSettings,
               kept: dict[tuple, list[Any]], times: PointTimes | None = None) -> PointTimes:
    """Warm up, then time ``settings.repeats`` passes over one point's batches on
    ``backend``, added to ``times`` (a previous round's) when given."""
    meta, make_batches = open_workload(point.config.workload, source)
    batches = list(make_batches())
    if not batches:
        raise InputError("the workload has no batches", source=source, field="workload")
    if times is None:
        times = PointTimes(table_location(point), np.array([b.num_lookups for b in batches]),
                           np.array([batch_bytes(meta, b) for b in batches]), [])
    tables = place_tables(backend, meta, times.where, point.config.run.seed, kept)
    mode = point.config.system.compute.pooling
    runs = [backend.pooled_batch(tables, batch, mode, times.where) for batch in batches]
    times.passes += backend.timed_passes(runs, settings.repeats, settings.warmup, settings.flush)
    return times


def point_row(point: Point, settings: MeasureSettings, times: PointTimes) -> dict[str, Any]:
    """One results row from every timed pass of a point (all rounds)."""
    passes = np.array(times.passes)
    seconds, per_batch = typical_seconds(times.passes)
    return {
        "point": point.index, **point.overrides, "config_hash": point.config_hash,
        "workload_hash": workload_hash(point),
        "batches": len(times.lookups), "repeats": settings.repeats, "rounds": settings.rounds,
        "warmup": settings.warmup, "flush": settings.flush, "table_location": times.where,
        "lookups_per_batch": float(times.lookups.mean()),
        "bytes_per_batch": float(times.nbytes.mean()),
        "time_per_batch_us": seconds * 1e6,
        "time_per_batch_min_us": float(passes.min()) * 1e6,
        "time_per_batch_max_us": float(passes.max()) * 1e6,
        "effective_bw_gbps": float(np.median(times.nbytes / per_batch)) / 1e9,
        "lookups_per_s": float(np.median(times.lookups / per_batch)),
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
                                         "repeats": settings.repeats, "flush": settings.flush,
                                         "rounds": settings.rounds}
    kept: dict[tuple, list[Any]] = {}
    times: dict[int, PointTimes] = {}
    hide = None if progress else True       # tqdm: None = show only on a terminal
    for round_ in range(settings.rounds):
        for point in tqdm(points, unit="point", disable=hide, leave=False,
                          desc=f"measure {backend.name} (round {round_ + 1}/{settings.rounds})"):
            times[point.index] = time_point(backend, point, str(path), settings, kept,
                                            times.get(point.index))
    rows = [point_row(point, settings, times[point.index])
            | {k: provenance[k] for k in ("backend", "kernel", "device", "date", "host", "torch")}
            for point in points]
    frame = pd.DataFrame(rows)
    write_measurements(frame, provenance, out)
    return frame


POOLED_COLUMNS = {"time_per_batch_us": np.min, "time_per_batch_min_us": np.min,
                  "time_per_batch_max_us": np.max, "effective_bw_gbps": np.max,
                  "lookups_per_s": np.max}
"""How ``pool_measurements`` combines a point's rounds, column by column: the fastest round."""


def pool_measurements(path: Path, files: list[Path], out: Path, sets: dict[str, Any]
                      ) -> pd.DataFrame:
    """Pool measurements of the experiment at ``path`` taken in separate rounds (``files``,
    each from ``embsim measure`` on the same machine, as an interleaved session takes them)
    into one file: a point's time is that of its fastest round. Other tenants of a VM slow
    it in bursts of seconds, long enough to spoil a point's whole round; they never speed it
    up, so the fastest round is the machine's own speed (``calibrate --refit`` pools the
    microbenchmarks alike). ``round_spread`` keeps the slowest round's time over the fastest.
    Every file must hold every point of the experiment and come from the same backend and
    device."""
    from simulator.grounding.validate import read_measurements

    _, points = load_points(path, sets)
    wanted = [workload_hash(point) for point in points]
    frames, provenances = [], []
    for file in files:
        frame = read_measurements(file, "--pool")
        if "workload_hash" not in frame.columns or frame["workload_hash"].tolist() != wanted:
            raise InputError(f"its points are not those of {path} in order (was it measured "
                             "from this experiment with the same --set?)", source=str(file),
                             field="--pool")
        frames.append(frame)
        provenances.append(read_provenance(file))
    for key in ("backend", "kernel", "device", "flush", "repeats", "warmup"):
        seen = {json.dumps(p.get(key)) for p in provenances}
        if len(seen) > 1:
            raise InputError(f"the files disagree on {key} ({', '.join(sorted(seen))}); pool "
                             "only rounds of one measurement on one machine", field="--pool")
    pooled = frames[0].copy()
    for column, combine in POOLED_COLUMNS.items():
        pooled[column] = combine(np.stack([f[column].to_numpy() for f in frames]), axis=0)
    times = np.stack([f["time_per_batch_us"].to_numpy() for f in frames])
    pooled["round_spread"] = times.max(axis=0) / times.min(axis=0)
    pooled["rounds"] = sum(int(f["rounds"].iloc[0]) for f in frames)
    provenance = provenances[0] | {"rounds": int(pooled["rounds"].iloc[0]),
                                   "pooled": "fastest round",
                                   "pooled_dates": [p.get("date") for p in provenances]}
    write_measurements(pooled, provenance, out)
    return pooled
