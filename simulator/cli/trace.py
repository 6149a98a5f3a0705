"""``embsim trace``: generate, convert and inspect embedding access traces."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from embsim.errors import InputError
from embsim.limits import MAX_BATCH_SIZE, MAX_BATCHES, MAX_POOLING, MAX_ROWS, MAX_SEED
from embsim.machine import memory_limit, refuse_above
from traces.batch import Batch
from traces.formats import FORMATS, detect_format, open_any
from traces.generators import POOLING_DISTS, SAMPLERS, synthesize
from traces.models import MODELS, model_preset
from traces.mrc import StackDistanceMRC, default_capacities
from traces.parquet_io import METADATA_KEY, TraceWriter
from traces.schema import DTYPE_BYTES, TraceMeta
from traces.stats import TraceStats, memory_bytes


@click.group("trace")
def trace() -> None:
    """Generate, convert and inspect embedding access traces."""


def _progress(batches: Iterable[Batch], meta: TraceMeta, label: str) -> Iterator[Batch]:
    """The batches, counted on a progress bar on stderr (a terminal only; after half a second,
    so short work prints nothing): batches of the total, lookups so far, lookups per second."""
    from tqdm import tqdm

    total = meta.num_batches if meta.num_batches else None
    with tqdm(total=total, unit="batch", desc=label, leave=False, delay=0.5,
              disable=None, file=sys.stderr) as bar:
        lookups = 0
        start = time.perf_counter()
        for batch in batches:
            yield batch
            lookups += batch.num_lookups
            rate = lookups / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix_str(f"{lookups:.3g} lookups, {rate / 1e6:.3g} M/s", refresh=False)
            bar.update(1)


def _write(path: str, meta: TraceMeta, batches: Iterable[Batch]) -> None:
    with TraceWriter(path, meta) as writer:
        for batch in _progress(batches, meta, f"write {Path(path).name}"):
            writer.write(batch)
    click.echo(f"wrote {writer.num_lookups} lookups in {writer.num_batches} batches "
               f"({meta.num_tables} tables, batch size {meta.batch_size}) to {path}")


def _parse_rows(text: str | None) -> list[int] | int | None:
    """``"1000"`` -> 1000 (every table); ``"1000,2000"`` -> one count per table."""
    if text is None:
        return None
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"expected a row count or a comma-separated list of them, got "
                         f"{text!r}", field="--rows") from None
    return counts[0] if len(counts) == 1 else counts


@trace.command("gen")
@click.option("--model", required=True, help=f"Model preset: {', '.join(MODELS.names())} "
              "(DeepRecSys RM1-RM3, see traces/presets/models.yaml).")
@click.option("--batches", default=10, show_default=True, type=click.IntRange(1, MAX_BATCHES),
              help="Number of batches: enough for a quick look; raise it for steady-state "
                   "cache studies.")
@click.option("--batch-size", default=64, show_default=True,
              type=click.IntRange(1, MAX_BATCH_SIZE),
              help="Samples per batch (bags per table): a mid-size inference batch.")
@click.option("--alpha", default=1.05, show_default=True,
              help="Zipf exponent of row popularity; <= 1 draws rows uniformly (FBGEMM's "
                   "default 1.0; with --sampler inversion only 0 does). The default 1.05 "
                   "gives a mildly skewed, cache-relevant workload without the extreme "
                   "concentration of larger exponents.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED),
              help="Seed of the random generator.")
@click.option("--reuse", default=0.0, show_default=True,
              help="Fraction of each table's lookups copied from the previous batch.")
@click.option("--pooling", type=click.FloatRange(0, MAX_POOLING, min_open=True),
              default=None, help="Mean lookups per bag for every table [default: the model's].")
@click.option("--pooling-dist", default="fixed", show_default=True,
              help=f"Pooling factor distribution: {', '.join(POOLING_DISTS.names())}.")
@click.option("--pooling-sigma", default=0.0, show_default=True,
              help="Scale of the pooling distribution (normal: lookups; lognormal: log-space).")
@click.option("--rows", type=click.IntRange(1, MAX_ROWS), default=None,
              help="Rows of every table, overriding the model's.")
@click.option("--sampler", type=click.Choice(SAMPLERS), default="numpy", show_default=True,
              help=f"Row sampler: {', '.join(SAMPLERS)}. numpy is FBGEMM's folded Zipf; "
                   "inversion draws a bounded Zipf(alpha) over each table's rows for every "
                   "alpha > 0, several times faster, and gives a different trace.")
@click.option("-o", "--output", required=True, help="Parquet file to write.")
def gen(model: str, batches: int, batch_size: int, alpha: float, seed: int, reuse: float,
        pooling: float | None, pooling_dist: str, pooling_sigma: float, rows: int | None,
        sampler: str, output: str) -> None:
    """Write a synthetic trace of a model preset (FBGEMM generate_requests semantics)."""
    preset = model_preset(model)
    tables = preset.tables if rows is None else [replace(t, rows=rows) for t in preset.tables]
    meta, generated = synthesize(
        tables, preset.pooling if pooling is None else pooling, batches=batches,
        batch_size=batch_size, alpha=alpha, reuse=reuse, pooling_dist=pooling_dist,
        pooling_sigma=pooling_sigma, seed=seed, sampler=sampler,
    )
    meta.provenance.update(model=model, model_source=preset.source)
    _write(output, meta, generated)


_IMPORT_OPTIONS = [
    click.option("--format", "fmt", default=None,
                 help=f"Input format: {', '.join(FORMATS.names())} [default: detected]."),
    click.option("--batch-size", type=int, default=None,
                 help="Samples per batch (csv: required; dlrm_datasets: default all samples)."),
    click.option("--rows", default=None,
                 help="Rows per table: one number for all, or comma-separated per table "
                      "[default: largest row id + 1]."),
    click.option("--dim", type=int, default=None, help="Embedding dimension [default: 64]."),
    click.option("--dtype", default=None,
                 help=f"Element type: {', '.join(DTYPE_BYTES)} [default: float32]."),
]


def _import_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options that tell importers what their files do not store."""
    for option in reversed(_IMPORT_OPTIONS):
        command = option(command)
    return command


def _open(path: str, fmt: str | None, batch_size: int | None, rows: str | None,
          dim: int | None, dtype: str | None) -> tuple[TraceMeta, Iterable[Batch]]:
    return open_any(path, fmt, batch_size=batch_size, rows=_parse_rows(rows), dim=dim,
                    dtype=dtype)


@trace.command("convert")
@click.argument("source")
@click.argument("output")
@_import_options
def convert(source: str, output: str, fmt: str | None, batch_size: int | None,
            rows: str | None, dim: int | None, dtype: str | None) -> None:
    """Convert trace SOURCE (any readable format) to the canonical Parquet file OUTPUT."""
    _write(output, *_open(source, fmt, batch_size, rows, dim, dtype))


@trace.command("stats")
@click.argument("path")
@click.option("--mrc", is_flag=True,
              help="Also compute the LRU hit rate against cache capacity in rows.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--allow-large-memory", is_flag=True,
              help="Count rows of tables whose estimated host memory is above this machine's "
                   "limit (80% of the memory available; refused otherwise).")
@_import_options
def stats(path: str, mrc: bool, as_json: bool, allow_large_memory: bool, fmt: str | None,
          batch_size: int | None, rows: str | None, dim: int | None,
          dtype: str | None) -> None:
    """Print lookups, distinct rows, per-table Zipf alpha and pooling factors of PATH."""
    meta, batches = _open(path, fmt, batch_size, rows, dim, dtype)
    limit = None if allow_large_memory else memory_limit()
    if limit is not None:
        parquet = (fmt or detect_format(Path(path))) == "parquet"
        refuse_above(memory_bytes(meta, mrc), limit,
                     f"counting the reads of {meta.total_rows} rows", source=path,
                     field=f"{METADATA_KEY}.tables" if parquet else "rows")
    summary = TraceStats(meta)
    curve = StackDistanceMRC(meta.total_rows) if mrc else None
    row_base = meta.row_base
    for batch in _progress(batches, meta, f"read {Path(path).name}"):
        summary.update(batch)
        if curve is not None:
            curve.update(batch.global_rows(row_base))
    result = summary.result()
    if curve is not None:
        capacities = default_capacities(curve.unique_keys)
        result["mrc"] = {"capacity_rows": capacities.tolist(),
                         "hit_rate": curve.hit_rates(capacities).tolist()}
    click.echo(json.dumps(result) if as_json else _render(path, result))


def _render(path: str, result: dict[str, Any]) -> str:
    pool = result["pooling"]
    share = result["unique_rows"] / result["total_rows"]
    lines = [
        f"trace: {path}",
        f"lookups: {result['lookups']} in {result['batches']} batches of "
        f"{result['batch_size']} samples, {len(result['tables'])} tables",
        f"unique rows: {result['unique_rows']} of {result['total_rows']} ({share:.2%})",
        "pooling (lookups per bag): " + ", ".join(
            f"{key} {_number(pool[key])}"
            for key in ("min", "mean", "std", "p50", "p95", "p99", "max")),
        f"{'table':>6} {'rows':>12} {'dim':>5} {'lookups':>12} {'unique_rows':>12} "
        f"{'zipf_alpha':>10}",
    ]
    lines += [f"{t['table']:>6} {t['rows']:>12} {t['dim']:>5} {t['lookups']:>12} "
              f"{t['unique_rows']:>12} {_number(t['zipf_alpha']):>10}"
              for t in result["tables"]]
    if "mrc" in result:
        lines.append("LRU hit rate (one fully associative cache over all tables):")
        lines.append(f"{'capacity_rows':>14} {'hit_rate':>9}")
        lines += [f"{c:>14} {h:>9.4f}" for c, h in
                  zip(result["mrc"]["capacity_rows"], result["mrc"]["hit_rate"], strict=True)]
    return "\n".join(lines)


def _number(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
