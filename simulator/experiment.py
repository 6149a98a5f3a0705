"""Experiments: load the YAML, expand the sweep into points, run each point, write results.

``DIR/results.parquet`` gets one row per point: ``point``, the swept parameters (dotted paths as
column names), ``config_hash`` and the metric columns of ``simulator.metrics``.
``DIR/config.resolved.yaml`` records the experiment after ``--set`` overrides, the points and
every device parameter with its source.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from embsim.errors import InputError
from simulator.config import Experiment, parse_experiment, read_yaml, set_dotted
from simulator.engine import Engine
from simulator.functional import FunctionalReference
from simulator.metrics import check_invariants, summarise
from simulator.query import Query
from simulator.results import write_parquet, write_text
from simulator.system import System, build_system
from simulator.workload import open_workload


@dataclass
class Point:
    """One sweep point: its overrides of the base experiment and the validated config."""

    index: int
    overrides: dict[str, Any]
    config: Experiment
    config_hash: str


@dataclass
class PointResult:
    row: dict[str, Any]
    per_query: pd.DataFrame | None


def parse_set(assignments: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``, values read as YAML scalars."""
    out = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected dotted.path=value, got {item!r}", field="--set")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def config_hash(config: Experiment) -> str:
    """Stable hash of everything that determines a point's metrics."""
    data = config.model_dump(mode="json", exclude={"name", "description", "sweep"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def load_points(path: Path, sets: dict[str, Any]) -> tuple[dict[str, Any], list[Point]]:
    """The experiment (with ``sets`` applied) and its validated sweep points."""
    source = str(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise InputError("expected a mapping with 'system', 'workload' and 'run'", source=source)
    for key, value in sets.items():
        set_dotted(raw, key, value, source=source)
    base = parse_experiment(raw, source)
    grid = base.sweep.grid if base.sweep else {}
    points = []
    for index, values in enumerate(itertools.product(*grid.values())):
        overrides = dict(zip(grid.keys(), values, strict=True))
        data = copy.deepcopy(raw)
        data.pop("sweep", None)
        for key, value in overrides.items():
            set_dotted(data, key, value, source=source)
        where = f"{source} (sweep point {overrides})" if overrides else source
        config = parse_experiment(data, where)
        points.append(Point(index, overrides, config, config_hash(config)))
    return raw, points


def prepare(point: Point, source: str) -> tuple[System, Any, Any]:
    """System, trace metadata and batch source of a point (validates capacities and names)."""
    meta, batches = open_workload(point.config.workload, source)
    return build_system(point.config, meta, source), meta, batches


def run_point(point: Point, source: str, per_query: bool = False,
              on_query_done: Callable[[Query], None] | None = None) -> PointResult:
    """Simulate one point and return its results row (and per-query latencies if asked)."""
    started = time.perf_counter()
    system, meta, batches = prepare(point, source)
    run = point.config.run
    functional = None
    if run.functional:
        slots = system.cache.slots if system.cache is not None else None
        functional = FunctionalReference(meta, run.seed, system.compute.pooling, slots)
    engine = Engine(system, meta, batches(), run, functional, on_query_done)
    log = engine.run()
    check_invariants(log, system, engine._next_id)
    row: dict[str, Any] = {"point": point.index, **point.overrides,
                           "config_hash": point.config_hash}
    row.update(summarise(log, system))
    row["functional_checked_bags"] = functional.checked_bags if functional else 0
    row["wall_s"] = time.perf_counter() - started
    frame = None
    if per_query:
        latency = log.latency_s()
        frame = pd.DataFrame({
            "point": point.index, "config_hash": point.config_hash, "query": log.ids,
            "arrival_us": [a * 1e6 for a in log.arrival_s],
            "finish_us": [f * 1e6 for f in log.finish_s],
            "latency_us": latency * 1e6, "lookups": log.lookups, "hits": log.hits})
    return PointResult(row, frame)


def device_sources(system: System) -> dict[str, Any]:
    """Each device's resolved parameters (SI units) with their sources, for the record."""
    out = {}
    for name, tier in system.tiers.items():
        out[name] = {"kind": "memory", "fidelity": tier.fidelity,
                     "params": tier.spec.model_dump(), "sources": system.sources[name]}
    for name, link in system.links.items():
        out[name] = {"kind": "link", "params": link.spec.model_dump(),
                     "sources": system.sources[name]}
    return out


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows to a frame; a swept column of mixed types is stored as text."""
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column]}
            if len(kinds) > 1:
                frame[column] = frame[column].astype(str)
    return frame


def expected_queries(point: Point, meta: Any) -> int | None:
    limit = point.config.workload.max_batches
    known = meta.num_batches
    if known is None:
        return limit
    return min(known, limit) if limit else known


def run_experiment(path: Path, out_dir: Path, sets: dict[str, Any], per_query: bool = False,
                   progress: bool = True) -> pd.DataFrame:
    """Run every point of the experiment at ``path``; write results into ``out_dir``.

    All points are validated (names, capacities, trace files) before the first one runs, and
    files are written only when every point has finished, atomically.
    """
    from tqdm import tqdm

    source = str(path)
    raw, points = load_points(path, sets)
    totals = []
    first_system = None
    for point in points:
        system, meta, _ = prepare(point, source)
        first_system = first_system or system
        totals.append(expected_queries(point, meta))
    total = None if None in totals else sum(totals)
    rows, frames = [], []
    with tqdm(total=total, unit="query", delay=2.0, disable=not progress or None,
              desc=Path(source).stem, leave=False) as bar:
        for point in points:
            bar.set_postfix_str(f"point {point.index + 1}/{len(points)}")
            result = run_point(point, source, per_query, lambda q: bar.update(1))
            rows.append(result.row)
            if result.per_query is not None:
                frames.append(result.per_query)
    frame = results_frame(rows)
    resolved = {
        "experiment": parse_experiment(raw, source).model_dump(mode="json"),
        "points": [{"point": p.index, "config_hash": p.config_hash, "overrides": p.overrides}
                   for p in points],
        "devices": device_sources(first_system),
    }
    write_parquet(frame, out_dir / "results.parquet")
    write_text(yaml.safe_dump(resolved, sort_keys=False), out_dir / "config.resolved.yaml")
    if per_query:
        write_parquet(pd.concat(frames, ignore_index=True), out_dir / "per_query.parquet")
    return frame
