"""``embsim compare``: a sweep's metrics per configuration, with ratios against a baseline."""

from __future__ import annotations

import json
from pathlib import Path

import click

from simulator.runs.compare import compare, plot, read_results


@click.command("compare")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--x", "x", metavar="COL", help="Column on the horizontal axis of the plot.")
@click.option("--y", "metrics", multiple=True, metavar="COL",
              help="Metric to compare (repeatable; default: throughput, p50/p99 latency, "
                   "cache hit rate).")
@click.option("--by", metavar="COL", help="One line (and one group of rows) per value of COL.")
@click.option("--baseline", "baseline", multiple=True, metavar="COL=VALUE",
              help="The configuration the ratios are against (repeatable; all must hold; "
                   "default: the first configuration).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also draw each metric against --x (required with --plot) into this image "
                   "(PNG, PDF or SVG).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def compare_command(results: Path, x: str | None, metrics: tuple[str, ...], by: str | None,
                    baseline: tuple[str, ...], plot_path: Path | None, as_json: bool) -> None:
    """Compare the configurations in RESULTS (results.parquet, or its folder)."""
    frame = read_results(results)
    comparison = compare(frame, x, list(metrics), by, list(baseline))
    if plot_path is not None:
        plot(comparison, x, by, plot_path)
    table = comparison.table
    if as_json:
        rows = json.loads(table.to_json(orient="records"))
        click.echo(json.dumps({"baseline": comparison.baseline, "columns": list(table.columns),
                               "rows": rows, "failed_left_out": comparison.failed_left_out,
                               "plot": str(plot_path) if plot_path else None}))
        return
    click.echo(f"baseline: {comparison.baseline}; ratios are metric / baseline")
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if comparison.failed_left_out:
        click.echo(f"left out {comparison.failed_left_out} failed points")
    if plot_path is not None:
        click.echo(f"wrote {plot_path}")
