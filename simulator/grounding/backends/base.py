"""The interface every measurement backend implements, and their registry."""

from __future__ import annotations

import datetime
import platform
import socket
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from embsim.errors import InputError
from embsim.registry import Registry
from traces.batch import Batch

BACKENDS: Registry[type[Backend]] = Registry("measurement backend")


def import_torch() -> Any:
    """PyTorch, or an InputError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise InputError("measuring needs PyTorch: pip install 'embsim[torch]'",
                         field="--backend") from None
    return torch


KERNELS = ("embedding_bag", "tbe")
"""Pooling kernels a backend can time: ``torch.nn.functional.embedding_bag`` per table, or
FBGEMM's table-batched embedding over all tables at once (``simulator.grounding.backends.tbe``)."""


class Backend(ABC):
    """Runs pooled embedding lookups on one processor and times them."""

    name: ClassVar[str]

    def __init__(self, kernel: str = "embedding_bag") -> None:
        self.torch = import_torch()
        if kernel not in KERNELS:
            raise InputError(f"unknown kernel {kernel!r}; expected one of: "
                             f"{', '.join(KERNELS)}", field="--kernel")
        self.kernel = kernel
        self._tbe: Any = None
        if kernel == "tbe":
            from simulator.grounding.backends.tbe import fbgemm

            fbgemm()                    # fails here, clearly, when FBGEMM is missing

    @abstractmethod
    def device_name(self) -> str:
        """The processor's marketing name, e.g. 'NVIDIA H100 80GB HBM3'."""

    @abstractmethod
    def cache_bytes(self) -> dict[str, int]:
        """Cache sizes of the processor, from the OS or the device properties."""

    @abstractmethod
    def place(self, values: np.ndarray, where: str) -> Any:
        """A table tensor holding ``values``; ``where`` is ``local`` or ``host``."""

    @abstractmethod
    def random_table(self, rows: int, dim: int, dtype: str, where: str, seed: int) -> Any:
        """A ``rows`` x ``dim`` table of seeded uniform values, created where it will live."""

    @abstractmethod
    def to_device(self, array: np.ndarray) -> Any:
        """Index or offset arrays where the kernel reads them."""

    @abstractmethod
    def synchronize(self) -> None:
        """Wait until all issued work is done."""

    @abstractmethod
    def flush_caches(self) -> None:
        """Evict the processor's caches by streaming over a buffer larger than them."""

    def time_call(self, fn: Any) -> float:
        """Seconds ``fn()`` takes, issued work completed."""
        self.synchronize()
        start = time.perf_counter()
        fn()
        self.synchronize()
        return time.perf_counter() - start

    def time_pass(self, runs: list[Any], flush: bool) -> np.ndarray:
        """Seconds of each prepared run, timed one after another (caches flushed first if
        ``flush``). ``embsim measure`` and the calibration microbenchmarks both time this way."""
        if flush:
            self.flush_caches()
        return np.array([self.time_call(run) for run in runs])

    def timed_passes(self, runs: list[Any], passes: int, warmup: int, flush: bool
                     ) -> list[np.ndarray]:
        """``passes`` timed passes over the prepared runs (``time_pass``), after ``warmup``
        untimed passes over them all (or, when each timed pass flushes the caches, ``warmup``
        calls of the first run, which only the code and the allocator remember): the protocol
        of ``embsim measure`` and of the calibration microbenchmarks alike.

        Whole warm-up passes because a processor's caches take several passes to settle on a
        skewed working set: on an AMD EPYC VM, Zipf(1.2) bags over 2 x 40K rows of 1 KiB took
        about 165, 125 and 100 us per batch in their second, fifth and eighth pass
        (docs/grounding.md). The simulation compares its steady state, caches warmed by a
        pass (``run.warm_caches``), with the measured one."""
        for _ in range(warmup):
            if flush:
                self.time_call(runs[0])
            else:
                self.time_pass(runs, False)
        return [self.time_pass(runs, flush) for _ in range(passes)]

    def tbe_placement(self, where: str) -> tuple[str, str, Any]:
        """FBGEMM's embedding location, compute device and torch device for tables ``where``
        (``local`` or ``host``)."""
        return "HOST", "CPU", self.torch.device("cpu")

    def pooled_batch(self, tables: list[Any], batch: Batch, mode: str,
                     where: str = "local") -> Any:
        """Prepared arguments and the function that pools one batch over every table."""
        if self.kernel == "tbe":
            from simulator.grounding.backends.tbe import TbeTables

            if self._tbe is None or self._tbe.tables is not tables or self._tbe.mode != mode:
                self._tbe = None                # free the previous copy first
                self._tbe = TbeTables(tables, *self.tbe_placement(where), mode)
            return self._tbe.run(batch, self.to_device)
        functional = self.torch.nn.functional
        B = batch.batch_size
        calls = []
        for t, table in enumerate(tables):
            lo, hi = batch.offsets[t * B], batch.offsets[(t + 1) * B]
            indices = self.to_device(batch.indices[lo:hi])
            offsets = self.to_device(batch.offsets[t * B:(t + 1) * B] - lo)
            calls.append((indices, table, offsets))

        def run() -> list[Any]:
            return [functional.embedding_bag(i, w, o, mode=mode) for i, w, o in calls]

        return run

    def provenance(self) -> dict[str, Any]:
        torch = self.torch
        extra: dict[str, Any] = {}
        if self.kernel == "tbe":
            from simulator.grounding.backends.tbe import fbgemm_version

            extra["fbgemm_gpu"] = fbgemm_version()
        return extra | {
            "backend": self.name,
            "device": self.device_name(),
            "torch": str(torch.__version__),
            "torch_threads": torch.get_num_threads(),
            "kernel": self.kernel,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "host": socket.gethostname(),
            "machine": platform.machine(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "caches": self.cache_bytes(),
        }


def typical_seconds(passes: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """The seconds of a run set (the median over runs of each run's median over passes), and
    each run's median."""
    per_run = np.median(np.array(passes), axis=0)
    return float(np.median(per_run)), per_run


def backend_by_name(name: str, kernel: str = "embedding_bag") -> Backend:
    """An instance of the backend registered as ``name`` timing ``kernel`` (InputError if
    unknown or unusable)."""
    return BACKENDS.get(name, field="--backend")(kernel)
