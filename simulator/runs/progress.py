"""The sweep's progress bar on stderr: points done of the total, failures, ETA.

Points finished by an earlier run count as done from the start; the rate and the ETA come from
the points this run finishes. Shown on a terminal only (and not with ``--quiet``).
"""

from __future__ import annotations

from typing import TextIO

from tqdm import tqdm


class SweepProgress:
    """A tqdm bar counting points, with the failures so far as its postfix.

    ``show``: None draws it only on a terminal, True always, False never. ``stream``:
    where to draw (default: stderr).
    """

    def __init__(self, total: int, done: int, label: str, show: bool | None = None,
                 stream: TextIO | None = None):
        self.failed = 0
        self.bar = tqdm(total=total, initial=done, unit="point", desc=label, leave=False,
                        delay=0.5, smoothing=0.1, disable=None if show is None else not show,
                        file=stream, postfix={"failed": 0})

    def advance(self, points: int, ok: bool) -> None:
        """``points`` more points are done (several when sweep points share one config)."""
        if not ok:
            self.failed += points
            self.bar.set_postfix(failed=self.failed, refresh=False)
        self.bar.update(points)

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
