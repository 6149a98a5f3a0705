"""The sweep's progress bar on stderr: points done of the total, failures, ETA.

Points finished by an earlier run count as done from the start; the rate and the ETA come from
the points this run finishes. A point still running counts by the share of its queries done
(its worker reports it every ``TICK_S`` seconds), so the bar moves during long points too.
Shown on a terminal only (and not with ``--quiet``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm

TICK_S = 0.5
"""How often a running point reports its share of queries done, at most."""


def expected_queries(num_batches: int | None, max_batches: int | None) -> int | None:
    """Queries a point will replay: its workload's batches (``workload.max_batches`` at most);
    None when the trace does not say how many it holds."""
    if num_batches is None:
        return max_batches
    return num_batches if max_batches is None else min(num_batches, max_batches)


class QueryTicker:
    """The engine's per-query callback that tells ``report`` the share of ``total`` queries
    done, at most every ``every_s`` seconds (default ``TICK_S``; a clock read per query,
    nothing more)."""

    def __init__(self, total: int, report: Callable[[float], None],
                 every_s: float | None = None):
        self.total = max(total, 1)
        self.report = report
        self.every_s = TICK_S if every_s is None else every_s
        self.done = 0
        self.next_s = time.monotonic() + self.every_s

    def __call__(self, query: Any) -> None:
        self.done += 1
        now = time.monotonic()
        if now >= self.next_s:
            self.next_s = now + self.every_s
            self.report(min(self.done / self.total, 1.0))


class SweepProgress:
    """A tqdm bar counting points, with the failures so far as its postfix.

    ``show``: None draws it only on a terminal, True always, False never. ``stream``:
    where to draw (default: stderr).
    """

    def __init__(self, total: int, done: int, label: str, show: bool | None = None,
                 stream: TextIO | None = None):
        self.failed = 0
        self.running: dict[str, float] = {}     # per running config: points' worth done
        self.bar = tqdm(total=total, initial=done, unit="point", desc=label, leave=False,
                        delay=0.5, smoothing=0.1, disable=None if show is None else not show,
                        file=stream, postfix={"failed": 0},
                        bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} {unit}s "
                                   "[{elapsed}<{remaining}{postfix}]")

    def partly(self, config_hash: str, points: int, share: float) -> None:
        """``share`` of the queries of a running config (standing for ``points`` sweep
        points) is done."""
        worth = points * share
        self.bar.update(worth - self.running.get(config_hash, 0.0))
        self.running[config_hash] = worth

    def advance(self, points: int, ok: bool, config_hash: str | None = None) -> None:
        """``points`` more points are done (several when sweep points share one config);
        what ``partly`` counted of that config already is not counted again."""
        if not ok:
            self.failed += points
            self.bar.set_postfix(failed=self.failed, refresh=False)
        self.bar.update(points - self.running.pop(config_hash, 0.0))

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
