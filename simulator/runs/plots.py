"""The figures an experiment asks for (``plots:``), drawn from its results after a run."""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd

from embsim.errors import InputError
from simulator.core.config import PlotConfig
from simulator.runs.compare import compare, plot
from simulator.runs.experiment import Point


def check_plots(plots: list[PlotConfig], points: list[Point], metrics: set[str],
                source: str) -> None:
    """Before a run: every plot's ``x``, ``by`` and ``where`` name a point coordinate, and
    its ``metrics`` columns the run will write (``metrics``)."""
    known = {"case"} | {key for point in points for key in point.overrides}
    for index, spec in enumerate(plots):
        for name, column in [("x", spec.x), ("by", spec.by),
                             *(("where", key) for key in spec.where)]:
            if column is not None and column not in known:
                raise InputError(f"{column!r} is not a swept path; expected one of: "
                                 f"{', '.join(sorted(known))}", source=source,
                                 field=f"plots.{index}.{name}")
        for number, metric in enumerate(spec.metrics):
            if metric not in metrics:
                near = difflib.get_close_matches(metric, metrics, n=3)
                hint = (f"did you mean {', '.join(near)}?" if near
                        else "see the results columns in docs/configuration.md")
                raise InputError(f"{metric!r} is not a metric this run writes; {hint}",
                                 source=source, field=f"plots.{index}.metrics.{number}")


def _matching(frame: pd.DataFrame, where: dict, source: str, index: int) -> pd.DataFrame:
    for column, value in where.items():
        if column not in frame.columns:
            raise InputError(f"no results column {column!r}", source=source,
                             field=f"plots.{index}.where")
        frame = frame[frame[column].isin(value) if isinstance(value, list)
                      else frame[column] == value]
    return frame


def write_plots(plots: list[PlotConfig], frame: pd.DataFrame, out_dir: Path,
                source: str) -> list[Path]:
    """Draw each of ``plots`` from the finished points of ``frame`` into ``out_dir``."""
    written = []
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    for index, spec in enumerate(plots):
        rows = _matching(ok, spec.where, source, index)
        if rows.empty:
            raise InputError("no finished point matches", source=source,
                             field=f"plots.{index}.where")
        try:
            comparison = compare(rows, x=spec.x, metrics=spec.metrics, by=spec.by)
        except InputError as err:
            raise InputError(err.detail, source=source, field=f"plots.{index}") from None
        path = out_dir / spec.file
        plot(comparison, spec.x, spec.by, path, log=tuple(spec.log))
        written.append(path)
    return written
