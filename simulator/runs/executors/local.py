"""The ``local`` executor: worker processes on this machine (``--workers N``, default all CPUs).

With one worker (or one task) the points run in this process, in order. Otherwise each worker
is a ``spawn``ed process (a fresh interpreter: no locks or threads inherited from this one,
which ``fork`` would copy) started with numeric libraries limited to one thread, and it keeps
its workloads between points. Each worker runs one task at a time, so the pool knows which
point was running when a worker dies (a crash or the out-of-memory killer): that point alone
is recorded as failed, a new worker takes the dead one's place, and the sweep goes on. While
a point runs, its worker sends the share of its queries done (``simulator.runs.progress``)
ahead of the outcome, for the progress bar.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from embsim.errors import InputError
from simulator.runs.executors import (
    EXECUTORS,
    Executor,
    Outcome,
    Progress,
    Report,
    Task,
    execute,
    failed,
)

STOP_GRACE_S = 2.0
PARENT_CHECK_S = 1.0


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """A pool of processes on this machine."""

    def __init__(self, workers: int | None, address: str | None):
        super().__init__(workers, address)
        if address is not None:
            raise InputError("only the ray executor joins a cluster; add --executor ray",
                             field="--address")
        self.pool: WorkerPool | None = None

    def start(self, tasks: int) -> None:
        """Spawn the pool now (its interpreters import while the caller validates)."""
        size = min(self.worker_count(), tasks)
        if size > 1 and self.pool is None:
            self.pool = WorkerPool(size).__enter__()

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, tasks: list[Task],
            progress: Progress | None = None) -> Generator[Outcome, None, None]:
        self.start(len(tasks))
        if self.pool is None:
            for task in tasks:
                yield execute(task, _reporter(task, progress))
            return
        yield from self.pool.run(tasks, progress)


def _reporter(task: Task, progress: Progress | None) -> Report | None:
    """``progress`` bound to ``task``'s config (None when nobody listens)."""
    if progress is None:
        return None
    return lambda share: progress(task.point.config_hash, share)


@dataclass(frozen=True)
class _Share:
    """A worker's message before its outcome: its task's share of queries done."""

    value: float


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    task: Task | None = None
    started: float = 0.0


class WorkerPool:
    """``size`` spawned worker processes, each fed one task at a time over its own pipe;
    a worker runs ``work`` (an importable function) on each task."""

    def __init__(self, size: int, work: Callable[[Task, Report], Outcome] = execute):
        self.size = size
        self.work = work
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool:
        self.workers = [self._start() for _ in range(self.size)]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, tasks: list[Task],
            progress: Progress | None = None) -> Generator[Outcome, None, None]:
        """Yield each task's outcome as it finishes (a worker's death fails its task only);
        ``progress`` hears the shares of queries done that workers send meanwhile."""
        queue = deque(tasks)
        while queue or any(w.task is not None for w in self.workers):
            for worker in self.workers:
                if worker.task is None and queue:
                    self._assign(worker, queue.popleft())
            busy = [w for w in self.workers if w.task is not None]
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    outcome = self._collect(worker, progress)
                    if outcome is not None:
                        yield outcome

    def _assign(self, worker: _Worker, task: Task) -> None:
        """Send a task to an idle worker (replaced first if it died while idle); should it die
        during the send, ``_collect`` reports the task as failed."""
        if not worker.process.is_alive():
            self._replace(worker)
        worker.task, worker.started = task, time.perf_counter()
        with contextlib.suppress(OSError):
            worker.conn.send(task)

    def _collect(self, worker: _Worker, progress: Progress | None) -> Outcome | None:
        """The outcome the worker sent, or a failure if it died (the worker is then idle);
        None when it sent its task's progress instead (passed on to ``progress``)."""
        task = worker.task
        assert task is not None
        try:
            message: Outcome | _Share | None = worker.conn.recv()
        except (EOFError, OSError):
            message = None
        if isinstance(message, _Share):
            if progress is not None:
                progress(task.point.config_hash, message.value)
            return None
        worker.task = None
        outcome = message
        if outcome is None:
            worker.process.join(STOP_GRACE_S)
            outcome = failed(task, f"the worker process died ({_exit_reason(worker.process)}) "
                             "while simulating this point", time.perf_counter() - worker.started)
        if not worker.process.is_alive():
            self._replace(worker)
        return outcome

    def _start(self) -> _Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(child, self.work, os.getpid()),
                                       daemon=True, name="embsim-worker")
        with _environment(Executor.THREAD_LIMITS):
            process.start()
        child.close()
        return _Worker(process, parent)

    def _replace(self, worker: _Worker) -> None:
        worker.conn.close()
        fresh = self._start()
        worker.process, worker.conn = fresh.process, fresh.conn

    def close(self) -> None:
        """Ask idle workers to stop; terminate busy ones (their points are not finished)."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                if worker.task is None:
                    worker.conn.send(None)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self.workers:
            if worker.task is None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()
            worker.conn.close()


def _serve(conn: Connection, work: Callable[[Task, Report], Outcome], parent: int) -> None:
    """A worker's loop: run tasks until told to stop (``None``) or the pool goes away.

    Ctrl-C reaches the whole process group; the pool, not the workers, decides what stops. If
    the pool's process is killed outright, the worker exits too instead of finishing its point.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    with contextlib.suppress(EOFError, OSError):
        while (task := conn.recv()) is not None:
            conn.send(work(task, lambda share: conn.send(_Share(share))))


def _exit_with(parent: int) -> None:
    """End this process once ``parent`` is gone (it is then re-parented)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def _exit_reason(process: BaseProcess) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        return f"killed by {name}" + ("; out of memory?" if name == "SIGKILL" else "")
    return f"exit code {code}"


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables while child processes start (they inherit them before any
    import), then restore this process's own."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
