"""The ``ray`` executor: points as Ray tasks (``--executor ray [--address ADDR]``).

With ``--address`` it joins an existing Ray cluster (``auto`` finds a local one); without, it
starts a Ray instance on this machine for the sweep and stops it afterwards. If this process
is already connected to Ray (``ray.init`` was called), that connection is used as it is.
Every node needs embsim installed and the experiment's trace files at the same path.

Each task carries one point's config; Ray reuses its worker processes, so a worker generates
or opens a workload once and keeps it for the next points. At most ``--workers`` tasks (default:
the cluster's CPUs) are in flight, so stopping the sweep cancels little. A task whose worker
dies fails its own point only. Needs the ``ray`` extra: ``pip install 'embsim[ray]'``.
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Generator
from typing import Any

from embsim.errors import InputError
from simulator.runs.executors import (
    EXECUTORS,
    Executor,
    Outcome,
    Progress,
    Task,
    execute,
    failed,
)

CONNECT_TIMEOUT_S = 10.0


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Tasks on a Ray cluster, or on a Ray instance started here."""

    def __init__(self, workers: int | None, address: str | None):
        super().__init__(workers, address)
        try:
            import ray
        except ImportError:
            raise InputError("the ray executor needs Ray: pip install 'embsim[ray]'",
                             field="--executor") from None
        self.ray: Any = ray
        self.started_here = False

    def __enter__(self) -> RayExecutor:
        self.started_here = not self.ray.is_initialized()
        if self.started_here:
            self._connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started_here:
            self.ray.shutdown()

    def run(self, tasks: list[Task],
            progress: Progress | None = None) -> Generator[Outcome, None, None]:
        """Tasks run as Ray tasks; they report no progress within a point (the bar counts
        whole points), so ``progress`` is not called."""
        if not tasks:
            return
        ray = self.ray
        remote = ray.remote(num_cpus=1, max_retries=0,
                            runtime_env={"env_vars": self.THREAD_LIMITS})(execute)
        limit = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        queue = deque(tasks)
        pending: dict[Any, Task] = {}
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    task = queue.popleft()
                    pending[remote.remote(task)] = task
                ready, _ = ray.wait(list(pending), num_returns=1)
                task = pending.pop(ready[0])
                yield self._result(ready[0], task)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def _connect(self) -> None:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.WARNING}
        if self.address is None:
            options["num_cpus"] = self.worker_count()
        else:
            _check_reachable(self.address)
        try:
            self.ray.init(address=self.address, **options)
        except ConnectionError as err:
            raise InputError(f"cannot reach a Ray cluster at {self.address!r}: {err}",
                             field="--address") from None

    def _result(self, ref: Any, task: Task) -> Outcome:
        """The task's outcome, or a failure if Ray lost it (worker died, node lost)."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as err:
            return failed(task, f"Ray could not run this point: {type(err).__name__}: {err}", 0.0)


def _check_reachable(address: str) -> None:
    """Fail fast on a ``HOST:PORT`` (or ``ray://HOST:PORT``) that does not answer: Ray itself
    retries such an address without end, and Ctrl-C does not stop it."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return                                      # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise InputError(f"cannot reach a Ray cluster at {address!r} ({err})",
                         field="--address") from None
