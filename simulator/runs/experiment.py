"""Experiments: load the YAML, expand its sweep into points, simulate one point.

A point's results row has ``point``, its coordinates (``case``, the swept dotted paths,
``repeat``), ``config_hash`` (a stable hash of the resolved config: the point's identity for
resume), ``status``/``error`` and the metric columns of ``simulator.core.metrics``. Running a whole
sweep (executors, shards, resume) is ``simulator.runs.runner``'s job.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embsim.errors import InputError
from hwmodels.cache.row_cache import parse_options
from hwmodels.tier import DeviceTier
from simulator.core.config import Experiment, parse_experiment, read_yaml, set_dotted
from simulator.core.engine import Engine
from simulator.core.functional import FunctionalReference
from simulator.core.metrics import check_invariants, summarise
from simulator.core.system import System, build_system
from simulator.core.workload import open_workload, profile_rows, workload_meta
from simulator.runs.progress import QueryTicker, expected_queries
from simulator.runs.sweep import check_points, repeat_config, repeat_seeds, variants


@dataclass
class Point:
    """One sweep point: its overrides of the base experiment and the validated config."""

    index: int
    overrides: dict[str, Any]
    config: Experiment
    config_hash: str
    case: str | None = None
    repeat: int | None = None

    def columns(self) -> dict[str, Any]:
        """The point's coordinates as results columns: point, case, swept paths, repeat."""
        out: dict[str, Any] = {"point": self.index}
        if self.case is not None:
            out["case"] = self.case
        out.update(self.overrides)
        if self.repeat is not None:
            out["repeat"] = self.repeat
        return out

    def describe(self) -> dict[str, Any]:
        """Index, hash, case, repeat and overrides: how ``--dry-run`` and
        ``config.resolved.yaml`` list the point."""
        return {"point": self.index, "config_hash": self.config_hash,
                **({"case": self.case} if self.case is not None else {}),
                **({"repeat": self.repeat} if self.repeat is not None else {}),
                "overrides": self.overrides}


@dataclass
class PointResult:
    row: dict[str, Any]
    per_query: pd.DataFrame | None


def config_hash(config: Experiment) -> str:
    """Stable hash of everything that determines a point's metrics.

    Fields left at their defaults are not hashed, so a later version of embsim that adds a
    field (with a default) still recognises results and measurements of earlier ones.
    """
    data = config.model_dump(mode="json", exclude={"name", "description", "sweep", "plots"},
                             exclude_defaults=True)
    return stable_hash(data)


def stable_hash(data: Any) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of ``data``: the same on every
    machine and run."""
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
    body = copy.deepcopy(raw)
    body.pop("sweep", None)
    repeats = repeat_config(base.sweep)
    kept = variants(base.sweep, source)
    check_points(len(kept) * repeats.count, source)
    points: list[Point] = []
    for variant in kept:
        config = _resolve(body, variant.case, variant.overrides, source)
        for repeat in range(repeats.count):
            overrides = {**variant.overrides,
                         **repeat_seeds(config, repeats, repeat, source)}
            resolved = _resolve(body, variant.case, overrides, source) if repeat else config
            points.append(Point(len(points), overrides, resolved, config_hash(resolved),
                                variant.case, repeat if repeats.count > 1 else None))
    return raw, points


def _resolve(body: dict[str, Any], case: str | None, overrides: dict[str, Any],
             source: str) -> Experiment:
    """The experiment ``body`` with a point's ``overrides`` applied, validated."""
    data = copy.deepcopy(body)
    for key, value in overrides.items():
        set_dotted(data, key, value, source=source)
    named = overrides if case is None else {"case": case, **overrides}
    where = f"{source} (sweep point {named})" if named else source
    config = parse_experiment(data, where)
    if config.system.cache is not None:
        parse_options(config.system.cache.kind, config.system.cache.options(), source=where)
    return config


def prepare(point: Point, source: str) -> tuple[System, Any, Any]:
    """System, trace metadata and batch source of a point (validates capacities and names).

    Placements and caches that rank rows by how often they are read get a profile: reads per
    global row over the first ``system.tables.profile_batches`` batches (default: all)."""
    meta, batches = open_workload(point.config.workload, source)

    @functools.cache
    def profile(limit: int | None) -> np.ndarray:
        return profile_rows(batches(), meta, limit)

    return build_system(point.config, meta, source, profile), meta, batches


def validate_point(point: Point, source: str, memory_limit: int | None = None) -> System:
    """Check a point before the sweep starts (names, capacities, trace files and, given
    ``memory_limit``, its estimated host memory) without generating or reading its lookups;
    returns its system."""
    return build_system(point.config, workload_meta(point.config.workload, source), source,
                        memory_limit=memory_limit)


def simulate_point(point: Point, source: str, per_query: bool = False,
                   on_progress: Callable[[float], None] | None = None) -> PointResult:
    """Simulate one point: its measurement (``config_hash``, ``status``, ``error``, metrics,
    ``wall_s``; no coordinates) and, if asked, its per-query latencies (no ``point`` column).
    ``on_progress`` hears the share of the point's queries done, now and then (when the
    workload says how many batches it has)."""
    started = time.perf_counter()
    system, meta, batches = prepare(point, source)
    run = point.config.run
    functional = None
    if run.functional:
        cache = system.cache
        functional = FunctionalReference(meta, run.seed, system.compute.pooling,
                                         cache.slots if cache is not None else None,
                                         cache.preloaded() if cache is not None else None)
    queries = expected_queries(meta.num_batches, point.config.workload.max_batches)
    ticker = (QueryTicker(queries, on_progress)
              if on_progress is not None and queries is not None else None)
    engine = Engine(system, meta, batches(), run, functional, ticker)
    if run.warm_caches:
        engine.warm(batches())
    log = engine.run()
    check_invariants(log, system, engine.started, engine.warm_cache_lookups)
    row: dict[str, Any] = {"config_hash": point.config_hash, "status": "ok", "error": None}
    row.update(summarise(log, system))
    row["functional_checked_bags"] = functional.checked_bags if functional else 0
    row["wall_s"] = time.perf_counter() - started
    frame = None
    if per_query:
        frame = pd.DataFrame({
            "config_hash": point.config_hash, "query": log.ids,
            "arrival_us": [a * 1e6 for a in log.arrival_s],
            "finish_us": [f * 1e6 for f in log.finish_s],
            "latency_us": log.latency_s() * 1e6, "lookups": log.lookups, "hits": log.hits})
    return PointResult(row, frame)


def run_point(point: Point, source: str, per_query: bool = False) -> PointResult:
    """Simulate one point and return its results row (and per-query latencies if asked)."""
    result = simulate_point(point, source, per_query)
    frame = result.per_query
    if frame is not None:
        frame.insert(0, "point", point.index)
    return PointResult({**point.columns(), **result.row}, frame)


def device_sources(system: System) -> dict[str, Any]:
    """Each device's resolved parameters (SI units) with their sources, for the record."""
    out: dict[str, Any] = {}
    for name, built in system.built.items():
        tier = built.model
        spec = tier.device.spec if isinstance(tier, DeviceTier) else tier.spec
        out[name] = {"kind": built.kind, "fidelity": tier.fidelity,
                     "fidelity_asked": built.fidelity_asked,
                     "params": spec.model_dump(), "sources": built.sources}
    for name, link in system.links.items():
        out[name] = {"kind": "link", "params": link.spec.model_dump(),
                     "sources": system.link_sources[name]}
    for unit in system.units:
        out.setdefault("units", {})[unit.name] = {"kind": unit.kind, "index": unit.index}
    return out
