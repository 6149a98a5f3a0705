"""Running a sweep: check every point, skip the finished ones, run the rest on an executor.

Order of events, so that bad input leaves nothing behind and a killed run loses nothing:

1. Load and validate every point (names, capacities, trace files) and the executor options;
   any problem is an ``InputError`` before a file is written.
2. Take the folder's lock, write ``config.resolved.yaml``, read the shards already there: points
   whose shard says ``status: ok`` are finished and skipped (unless ``force``); failed points
   run again. Points with the same resolved config run once.
3. Run the rest; each outcome is saved as its shard as it arrives, and ``results.parquet`` is
   rewritten from the shards every ``MERGE_EVERY_S`` seconds and at the end, also when the run
   is interrupted (Ctrl-C or SIGTERM). A SIGKILL loses at most the points still running.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from embsim.atomic import check_creatable
from embsim.machine import memory_limit
from embsim.signals import sigterm_as_interrupt
from simulator.core.config import PlotConfig, parse_experiment
from simulator.core.metrics import metric_columns
from simulator.core.system import System
from simulator.runs.executors import Task, make_executor
from simulator.runs.experiment import Point, device_sources, load_points, validate_point
from simulator.runs.plots import check_plots, write_plots
from simulator.runs.progress import SweepProgress
from simulator.runs.results import write_parquet, write_text
from simulator.runs.shards import ShardStore, results_table

MERGE_EVERY_S = 30.0


@dataclass
class RunOptions:
    """How to run a sweep (the ``embsim run`` options)."""

    per_query: bool = False
    executor: str = "local"
    workers: int | None = None
    address: str | None = None
    force: bool = False
    progress: bool = True
    allow_large_memory: bool = False


@dataclass
class SweepReport:
    """What a run did: the merged results, and how many points it ran and reused."""

    frame: pd.DataFrame
    ran: int
    reused: int
    plots: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> pd.DataFrame:
        return self.frame[self.frame["status"] != "ok"]


def plan(path: Path, out_dir: Path, sets: dict[str, Any], *,
         allow_large_memory: bool = False) -> list[dict[str, Any]]:
    """What ``run_experiment`` would do, one dict per point (validates, writes nothing)."""
    source = str(path)
    _, points = load_points(path, sets)
    _validate(points, [], source, allow_large_memory)
    store = ShardStore(out_dir)
    return [{**p.describe(),
             "finished": store.is_finished(store.read(p.config_hash), per_query=False)}
            for p in points]


def run_experiment(path: Path, out_dir: Path, sets: dict[str, Any],
                   options: RunOptions | None = None) -> SweepReport:
    """Run every point of the experiment at ``path`` that ``out_dir`` has not finished."""
    options = options or RunOptions()
    source = str(path)
    raw, points = load_points(path, sets)
    plots = parse_experiment(raw, source).plots
    check_creatable(out_dir, field="--out")
    executor = make_executor(options.executor, options.workers, options.address)
    store = ShardStore(out_dir)
    measured = store.rows({p.config_hash for p in points})
    finished = set() if options.force else {
        h for h, row in measured.items() if store.is_finished(row, options.per_query)}
    todo: dict[str, Task] = {}
    for point in points:
        if point.config_hash not in finished:
            todo.setdefault(point.config_hash, Task(point, str(path.resolve()),
                                                    options.per_query))
    per_hash = Counter(p.config_hash for p in points)
    executor.start(len(todo))            # local workers start up while the points are validated
    try:
        first_system = _validate(points, plots, source, options.allow_large_memory)
    except BaseException:
        executor.stop()
        raise
    with executor if todo else contextlib.nullcontext(), store.locked():
        _write_resolved(out_dir, parse_experiment(raw, source).model_dump(mode="json"), points,
                        first_system)
        done = sum(per_hash[h] for h in finished)
        with SweepProgress(len(points), done, path.stem,
                           None if options.progress else False) as bar, \
                sigterm_as_interrupt():
            outcomes = executor.run(list(todo.values()),
                                    lambda h, share: bar.partly(h, per_hash[h], share))
            merged_at = time.monotonic()
            try:
                for outcome in outcomes:
                    store.save(outcome)
                    measured[outcome.config_hash] = outcome.row
                    bar.advance(per_hash[outcome.config_hash], outcome.ok, outcome.config_hash)
                    if time.monotonic() - merged_at > MERGE_EVERY_S:
                        write_parquet(results_table(points, measured),
                                      out_dir / "results.parquet")
                        merged_at = time.monotonic()
            finally:
                outcomes.close()
                frame = _write_results(store, points, measured, options.per_query)
    return SweepReport(frame, len(todo), len(finished),
                       write_plots(plots, frame, out_dir, source))


def _validate(points: list[Point], plots: list[PlotConfig], source: str,
              allow_large_memory: bool = False) -> System:
    """Check each distinct config once (its estimated host memory against this machine's
    limit too, unless ``allow_large_memory``), then the plots against the points' coordinates
    and metric columns; the first point's system (for the device record)."""
    limit = None if allow_large_memory else memory_limit()
    systems: dict[str, System] = {}
    for point in points:
        if point.config_hash not in systems:
            systems[point.config_hash] = validate_point(point, source, limit)
    metrics = set().union(*(metric_columns(system) for system in systems.values()))
    check_plots(plots, points, metrics, source)
    return systems[points[0].config_hash]


def _write_resolved(out_dir: Path, experiment: dict[str, Any], points: list[Point],
                    system: System) -> None:
    resolved = {
        "experiment": experiment,
        "points": [p.describe() for p in points],
        "devices": device_sources(system),
    }
    write_text(yaml.safe_dump(resolved, sort_keys=False), out_dir / "config.resolved.yaml")


def _write_results(store: ShardStore, points: list[Point],
                   measured: dict[str, dict[str, Any]], per_query: bool) -> pd.DataFrame:
    """Merge the shards of this sweep's points into ``results.parquet`` (and
    ``per_query.parquet``); nothing is written before the first point has finished."""
    frame = results_table(points, measured)
    if not frame.empty:
        write_parquet(frame, store.out_dir / "results.parquet")
        if per_query:
            write_parquet(store.per_query(points), store.out_dir / "per_query.parquet")
    return frame
