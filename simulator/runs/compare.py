"""Comparing a sweep's results: metrics per configuration, ratios against a baseline, a plot.

A configuration is a distinct combination of the configuration columns: ``--by`` and ``--x``
when either is given, otherwise every coordinate of the results (``case`` and the swept dotted
paths, not ``point`` or ``repeat``). The rows of one configuration (its repeats, and any swept
path left out of the columns) are averaged, and ``points`` counts them. Failed points are left
out and counted.

The baseline is picked with ``COL=VALUE`` selectors (all must hold). If they select one
configuration, every ratio is against it. If they select several that differ only in the
``--x`` column, each configuration is compared with the baseline at its own x (e.g. ``--x
system.cache.size --by system.cache.policy --baseline system.cache.policy=lru``: every policy
against LRU at the same size). Any other selection is ambiguous. Without selectors the first
configuration is the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from embsim.atomic import write_atomic
from embsim.errors import InputError

DEFAULT_METRICS = ["throughput_qps", "latency_p50_us", "latency_p99_us", "cache_hit_rate"]
NOT_CONFIGURATION = {"point", "repeat"}
RATIO = "{}_vs_baseline"


@dataclass
class Comparison:
    """The table (configuration columns, ``points``, each metric and its ratio) and how the
    baseline was chosen."""

    table: pd.DataFrame
    columns: list[str]
    metrics: list[str]
    baseline: str
    failed_left_out: int


def read_results(path: Path) -> pd.DataFrame:
    """A results file (or a results folder's ``results.parquet``)."""
    path = path / "results.parquet" if path.is_dir() else path
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise InputError("file not found", source=str(path)) from None
    except (OSError, ValueError) as err:
        raise InputError(f"not a results Parquet file ({err})", source=str(path)) from None


def compare(frame: pd.DataFrame, x: str | None = None, metrics: list[str] | None = None,
            by: str | None = None, baseline: list[str] | None = None) -> Comparison:
    """Average each configuration's rows and divide each metric by the baseline's."""
    for name, flag in ((x, "--x"), (by, "--by")):
        if name is not None:
            _check_column(frame, name, flag)
    metrics = metrics or [m for m in DEFAULT_METRICS if m in frame.columns]
    for name in metrics:
        _check_column(frame, name, "--y")
        if not pd.api.types.is_numeric_dtype(frame[name]):
            raise InputError(f"column {name!r} is not numeric", field="--y")
    columns = ([c for c in (by, x) if c is not None] if x or by else _coordinates(frame))
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    if ok.empty:
        raise InputError("no point of these results succeeded", field="status")
    grouped = ok.groupby(columns, sort=False, dropna=False) if columns else None
    table = (grouped[metrics].mean().reset_index() if grouped is not None
             else ok[metrics].mean().to_frame().T)
    table.insert(len(columns), "points", grouped.size().to_numpy() if grouped is not None
                 else len(ok))
    reference, described = _baseline(table, columns, x, baseline or [])
    for name in metrics:
        table[RATIO.format(name)] = table[name] / reference[name]
    return Comparison(table, columns, metrics, described, len(frame) - len(ok))


def plot(comparison: Comparison, x: str | None, by: str | None, path: Path,
         log: tuple[str, ...] = ()) -> None:
    """Each metric against ``x``, one line per ``by`` group, one panel per metric; the axes
    named in ``log`` (``x``, ``y``) on a log scale."""
    if x is None:
        raise InputError("--plot needs --x (the column on the horizontal axis)", field="--x")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = comparison.table
    fig, axes = plt.subplots(len(comparison.metrics), 1, sharex=True, squeeze=False,
                             figsize=(6.4, 2.6 * len(comparison.metrics) + 0.8))
    kinds = fig.canvas.get_supported_filetypes()
    kind = path.suffix.lstrip(".").lower() or "png"
    if kind not in kinds:
        plt.close(fig)
        raise InputError(f"unknown image type {kind!r}; expected one of: {', '.join(kinds)}",
                         field="--plot")
    numeric = pd.api.types.is_numeric_dtype(table[x])
    order = sorted(table[x].unique()) if numeric else list(table[x].unique())
    position = {value: (value if numeric else i) for i, value in enumerate(order)}
    groups = table.groupby(by, sort=False, dropna=False) if by else [(None, table)]
    for ax, metric in zip(axes[:, 0], comparison.metrics, strict=True):
        for label, rows in groups:
            rows = rows.assign(_at=rows[x].map(position)).sort_values("_at")
            ax.plot(rows["_at"], rows[metric], marker="o",
                    label=None if by is None else str(label))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if "y" in log:
            ax.set_yscale("log")
    if "x" in log and numeric:
        axes[-1, 0].set_xscale("log", base=2)
    if not numeric:
        axes[-1, 0].set_xticks(range(len(order)), [str(v) for v in order])
    axes[-1, 0].set_xlabel(x)
    if by is not None:
        axes[0, 0].legend(title=by, fontsize="small")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format=kind, dpi=120))
    plt.close(fig)


def _coordinates(frame: pd.DataFrame) -> list[str]:
    """The configuration columns of an embsim results table: those before ``config_hash``."""
    if "config_hash" not in frame.columns:
        return []
    head = frame.columns[: frame.columns.get_loc("config_hash")]
    return [c for c in head if c not in NOT_CONFIGURATION]


def _check_column(frame: pd.DataFrame, name: str, flag: str) -> None:
    if name not in frame.columns:
        raise InputError(f"unknown column {name!r}; expected one of: "
                         f"{', '.join(map(str, frame.columns))}", field=flag)


def _baseline(table: pd.DataFrame, columns: list[str], x: str | None,
              selectors: list[str]) -> tuple[pd.DataFrame, str]:
    """For each row of ``table``, the baseline row it is compared with, and a description."""
    if not selectors:
        first = table.iloc[[0] * len(table)].reset_index(drop=True)
        return first, f"the first configuration ({_describe(table.iloc[0], columns)})"
    mask = pd.Series(True, index=table.index)
    for selector in selectors:
        column, value = _parse_selector(selector, columns)
        matches = table[column].map(lambda cell, v=value: _same(cell, v))
        if not matches.any():
            values = ", ".join(map(str, table[column].unique()))
            raise InputError(f"no configuration has {column}={value}; {column} takes: {values}",
                             field="--baseline")
        mask &= matches
    chosen = table[mask]
    spec = " ".join(selectors)
    if chosen.empty:
        raise InputError(f"no configuration has {spec}", field="--baseline")
    if len(chosen) == 1:
        row = chosen.iloc[[0] * len(table)].reset_index(drop=True)
        return row, _describe(chosen.iloc[0], columns)
    differing = [c for c in columns if chosen[c].nunique(dropna=False) > 1]
    if differing != [x]:
        raise InputError(f"{spec} matches {len(chosen)} configurations (they differ in "
                         f"{', '.join(differing)}); add COL=VALUE to pick one",
                         field="--baseline")
    at_x = chosen.set_index(x)
    return at_x.reindex(table[x]).reset_index(drop=True), f"{spec} at the same {x}"


def _parse_selector(selector: str, columns: list[str]) -> tuple[str, str]:
    column, sep, value = selector.partition("=")
    if not sep or not column:
        raise InputError(f"expected COL=VALUE, got {selector!r}", field="--baseline")
    if column not in columns:
        raise InputError(f"{column!r} is not a configuration column; expected one of: "
                         f"{', '.join(columns)}", field="--baseline")
    return column, value


def _same(cell: Any, value: str) -> bool:
    """Whether a results cell holds the value typed on the command line."""
    if str(cell) == value:
        return True
    try:
        return bool(cell == yaml.safe_load(value))
    except (yaml.YAMLError, ValueError, TypeError):
        return False


def _describe(row: pd.Series, columns: list[str]) -> str:
    return ", ".join(f"{c}={row[c]}" for c in columns) or "all points"
