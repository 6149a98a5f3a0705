"""``embsim run``: simulate every point of an experiment and write its results."""

from __future__ import annotations

from pathlib import Path

import click

from simulator.experiment import parse_set, run_experiment

SUMMARY = ["point", "throughput_qps", "latency_p50_us", "latency_p99_us", "cache_hit_rate",
           "wall_s"]


@click.command("run")
@click.argument("experiment", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Results folder (default: results/<experiment file stem>).")
@click.option("--set", "sets", multiple=True, metavar="DOTTED.PATH=VALUE",
              help="Override a config field, e.g. --set run.arrivals.concurrency=4 (repeatable).")
@click.option("--per-query", is_flag=True, help="Also write per_query.parquet (latencies).")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary table.")
def run(experiment: Path, out_dir: Path | None, sets: tuple[str, ...], per_query: bool,
        quiet: bool) -> None:
    """Simulate EXPERIMENT (a YAML file) and write DIR/results.parquet."""
    out_dir = out_dir or Path("results") / experiment.stem
    frame = run_experiment(experiment, out_dir, parse_set(sets), per_query, progress=not quiet)
    if quiet:
        return
    swept = [c for c in frame.columns if "." in c]
    columns = [c for c in ["point", *swept, *SUMMARY[1:]] if c in frame.columns]
    click.echo(frame[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"wrote {out_dir / 'results.parquet'} ({len(frame)} rows)")
