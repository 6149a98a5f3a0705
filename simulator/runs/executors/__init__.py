"""Executors: run sweep points somewhere and stream their outcomes back as they finish.

An executor gets a list of ``Task``s and yields one ``Outcome`` per task, in completion order.
Every task runs ``execute``, which never raises for a failing point: the point's row records
``status: failed`` and the error, and the sweep goes on. Tasks carry only the point's config
(paths and generator settings, never lookups): each worker process opens or generates the
workload itself and keeps it for the next points (``simulator.core.workload`` caches per process).

Executors are chosen by name (``--executor``) from ``EXECUTORS``; every module of this package
is imported here, so a new executor file registers itself.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd

from embsim.errors import InputError
from embsim.registry import Registry
from simulator.runs.experiment import Point, simulate_point


@dataclass(frozen=True)
class Task:
    """One point to simulate; ``source`` is the experiment file's absolute path."""

    point: Point
    source: str
    per_query: bool = False


@dataclass
class Outcome:
    """What a task sends back: the point's measurement row (see ``simulate_point``), its
    per-query latencies if asked, and the traceback of a failure."""

    config_hash: str
    row: dict[str, Any]
    per_query: pd.DataFrame | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.row["status"] == "ok"


Report = Callable[[float], None]
"""Hears a running task's share of queries done (``simulate_point``'s ``on_progress``)."""

Progress = Callable[[str, float], None]
"""Hears, per running config hash, the share of its queries done."""


def execute(task: Task, report: Report | None = None) -> Outcome:
    """Simulate ``task``'s point; any exception becomes a failed outcome."""
    started = time.perf_counter()
    try:
        result = simulate_point(task.point, task.source, task.per_query, report)
    except Exception as err:
        message = str(err) if isinstance(err, InputError) else f"{type(err).__name__}: {err}"
        return failed(task, message, time.perf_counter() - started, traceback.format_exc())
    return Outcome(task.point.config_hash, result.row, result.per_query)


def failed(task: Task, message: str, wall_s: float, trace: str | None = None) -> Outcome:
    """The outcome of a task that did not finish: ``status: failed`` and the error."""
    row = {"config_hash": task.point.config_hash, "status": "failed", "error": message,
           "wall_s": wall_s}
    return Outcome(task.point.config_hash, row, None, trace or message)


class Executor(ABC):
    """Runs tasks on some set of workers; ``workers`` None means all that are available."""

    # Numeric libraries get one thread per worker process: the workers already use every core.
    THREAD_LIMITS: ClassVar[dict[str, str]] = {
        name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "NUMBA_NUM_THREADS")}

    def __init__(self, workers: int | None, address: str | None):
        if workers is not None and workers < 1:
            raise InputError(f"expected at least 1 worker, got {workers}", field="--workers")
        self.workers = workers
        self.address = address

    def worker_count(self) -> int:
        """``--workers``, or this machine's CPUs."""
        return self.workers or available_cpus()

    def start(self, tasks: int) -> None:  # noqa: B027 (an optional hook)
        """Start workers ahead of ``tasks`` tasks, so that their start-up overlaps whatever
        the caller does next (the sweep's validation); ``stop`` or ``__exit__`` ends them."""

    def stop(self) -> None:  # noqa: B027 (an optional hook)
        """End workers that ``start`` started, if any."""

    def __enter__(self) -> Executor:
        """Reach the workers (a bad address is an ``InputError`` here, before any output)."""
        return self

    def __exit__(self, *exc: object) -> None:  # noqa: B027 (an optional hook)
        """Let the workers go."""

    @abstractmethod
    def run(self, tasks: list[Task],
            progress: Progress | None = None) -> Generator[Outcome, None, None]:
        """Yield one outcome per task as each finishes; ``progress`` hears how far running
        tasks are, where the executor can tell. Closing the iterator early stops the tasks
        still running."""


EXECUTORS: Registry[type[Executor]] = Registry("executor")


def make_executor(name: str, workers: int | None = None, address: str | None = None) -> Executor:
    """The executor called ``name``; bad names or options are an ``InputError``."""
    return EXECUTORS.get(name, field="--executor")(workers, address)


def available_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["EXECUTORS", "Executor", "Outcome", "Progress", "Report", "Task", "execute", "failed",
           "make_executor"]
