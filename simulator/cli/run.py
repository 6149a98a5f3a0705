"""``embsim run``: simulate the points of an experiment's sweep and write its results.

Exit status: 0 when every point succeeded, 1 when some failed (their rows say why), 2 for bad
input (nothing is run or written), 130 when interrupted (finished points are kept).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from embsim.assignments import parse_assignments
from simulator.runs.executors import EXECUTORS
from simulator.runs.runner import RunOptions, SweepReport, plan, run_experiment

SUMMARY = ["throughput_qps", "latency_p50_us", "latency_p99_us", "cache_hit_rate", "wall_s"]
SHOW_ROWS = 40


@click.command("run")
@click.argument("experiment", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Results folder (default: results/<experiment file stem>).")
@click.option("--set", "sets", multiple=True, metavar="DOTTED.PATH=VALUE",
              help="Override a config field, e.g. --set run.arrivals.concurrency=4 (repeatable).")
@click.option("--per-query", is_flag=True, help="Also write per_query.parquet (latencies).")
@click.option("--executor", default="local", show_default=True,
              help=f"Where the points run: {', '.join(EXECUTORS.names())}.")
@click.option("--workers", type=int, metavar="N",
              help="Worker processes (local) or tasks in flight (ray); default: every CPU.")
@click.option("--address", metavar="ADDR",
              help="Ray cluster to join (--executor ray); default: start one on this machine.")
@click.option("--force", is_flag=True, help="Rerun points that already finished.")
@click.option("--dry-run", is_flag=True,
              help="Print the points as JSON lines; run nothing, write nothing.")
@click.option("--allow-large-memory", is_flag=True,
              help="Run points whose estimated host memory is above this machine's limit "
                   "(80% of the memory available; such points are refused otherwise).")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary table.")
@click.pass_context
def run(ctx: click.Context, experiment: Path, out_dir: Path | None, sets: tuple[str, ...],
        per_query: bool, executor: str, workers: int | None, address: str | None, force: bool,
        dry_run: bool, allow_large_memory: bool, quiet: bool) -> None:
    """Simulate EXPERIMENT (a YAML file) and write DIR/results.parquet.

    Each finished point is kept in DIR/shards/, so running the same command again runs only
    the points that have not finished (failed points run again).
    """
    out_dir = out_dir or Path("results") / experiment.stem
    if dry_run:
        for item in plan(experiment, out_dir, parse_assignments(sets),
                         allow_large_memory=allow_large_memory):
            click.echo(json.dumps(item, default=str))
        return
    options = RunOptions(per_query, executor, workers, address, force, progress=not quiet,
                         allow_large_memory=allow_large_memory)
    report = run_experiment(experiment, out_dir, parse_assignments(sets), options)
    if not quiet:
        _print_summary(report, out_dir)
    failed = report.failed
    if len(failed):
        first = failed.iloc[0]
        click.echo(f"embsim: {len(failed)} of {len(report.frame)} points failed (point "
                   f"{first['point']}: {first['error']}); see the status and error columns of "
                   f"{out_dir / 'results.parquet'}", err=True)
        ctx.exit(1)


def _print_summary(report: SweepReport, out_dir: Path) -> None:
    frame = report.frame
    coordinates = list(frame.columns[: frame.columns.get_loc("config_hash")])
    status = ["status"] if len(report.failed) else []
    columns = [c for c in [*coordinates, *status, *SUMMARY] if c in frame.columns]
    shown = frame[columns].head(SHOW_ROWS)
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if len(frame) > SHOW_ROWS:
        click.echo(f"... and {len(frame) - SHOW_ROWS} more rows")
    click.echo(f"wrote {out_dir / 'results.parquet'} ({len(frame)} rows; ran {report.ran}, "
               f"reused {report.reused} finished)")
    for path in report.plots:
        click.echo(f"wrote {path}")
