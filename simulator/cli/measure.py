"""``embsim measure``, ``embsim calibrate`` and ``embsim validate``: ground the numbers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from embsim.assignments import parse_assignments
from embsim.errors import InputError

BACKEND_CHOICE = click.Choice(["torch-cpu", "torch-cuda", "fhe-cpu"])
FHE = "fhe-cpu"
"""The backend that runs encrypted lookups with Microsoft SEAL (``simulator.grounding``'s
``fhe_*`` modules) instead of torch's kernels."""
KERNEL_OPTION = click.option(
    "--kernel", type=click.Choice(["embedding_bag", "tbe"]), default="embedding_bag",
    show_default=True, help="Pooling kernel: torch's embedding_bag per table, or FBGEMM's "
                            "table-batched embedding (needs fbgemm-gpu-cpu or fbgemm-gpu).")
ROUNDS_OPTION = click.option(
    "--rounds", type=click.IntRange(1), default=1, show_default=True,
    help="Run everything this many times and pool the rounds (medians), for a machine whose "
         "speed drifts.")
STAGE_OPTION = click.option(
    "--stage", type=click.Choice(["embedding", "dense"]), default="embedding",
    show_default=True, help="What to time: the embedding lookups, or the dense layers "
                            "(system.dense's MLPs on torch-cpu, one thread, or torch-cuda: "
                            "docs/dense.md).")
SET_OPTION = click.option("--set", "sets", multiple=True, metavar="DOTTED.PATH=VALUE",
                          help="Override a config field (repeatable), as for 'embsim run'.")


@click.command()
@click.argument("experiment", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--backend", type=BACKEND_CHOICE, help="Run the points on this backend.")
@click.option("--pool", "pooled", multiple=True, metavar="FILE",
              type=click.Path(path_type=Path, dir_okay=False),
              help="Instead, pool earlier measurements of EXPERIMENT (repeatable: one file "
                   "per round of an interleaved session) into one: each point's fastest round.")
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Parquet file of measurements.")
@click.option("--repeats", type=click.IntRange(1), default=5, show_default=True,
              help="Timed passes over each point's batches.")
@click.option("--warmup", type=click.IntRange(0), default=3, show_default=True,
              help="Untimed passes over all batches before timing (with --flush: calls of "
                   "the first batch).")
@click.option("--flush/--no-flush", default=True, show_default=True,
              help="Flush the processor's caches before each timed pass.")
@ROUNDS_OPTION
@KERNEL_OPTION
@STAGE_OPTION
@SET_OPTION
def measure(experiment: Path, backend: str | None, pooled: tuple[Path, ...], out: Path,
            repeats: int, warmup: int, flush: bool, rounds: int, kernel: str, stage: str,
            sets: tuple[str, ...]) -> None:
    """Execute every point of EXPERIMENT for real and record its timings."""
    from simulator.grounding.measure import (
        MeasureSettings,
        measure_experiment,
        pool_measurements,
    )

    if (backend is None) == (not pooled):
        raise InputError("give exactly one of --backend (to measure) or --pool (to pool "
                         "earlier measurements)", field="--backend")
    if pooled:
        frame = pool_measurements(experiment, list(pooled), out, parse_assignments(sets))
        spread = frame["round_spread"]
        click.echo(f"wrote {out} ({len(frame)} points, the fastest of "
                   f"{frame['rounds'].iloc[0]} rounds; slowest round over fastest: median "
                   f"{spread.median():.2f}x, 90th percentile {spread.quantile(0.9):.2f}x)")
        return
    settings = MeasureSettings(warmup=warmup, repeats=repeats, flush=flush, rounds=rounds)
    if stage == "dense":
        from simulator.grounding.dense import measure_dense

        frame = measure_dense(experiment, out, parse_assignments(sets), settings,
                              backend=backend)
        shown = ["gflops"]
    elif backend == FHE:
        reject_torch_options(rounds, kernel)
        from simulator.grounding.fhe_measure import measure_fhe

        frame = measure_fhe(experiment, out, parse_assignments(sets), settings)
        shown = ["client_per_batch_us", "server_ops_per_batch"]
    else:
        from simulator.grounding.backends import backend_by_name

        frame = measure_experiment(experiment, backend_by_name(backend, kernel), out,
                                   parse_assignments(sets), settings)
        shown = ["effective_bw_gbps", "lookups_per_s"]
    columns = ["point", *[c for c in frame.columns if "." in c], "time_per_batch_us", *shown]
    click.echo(frame[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"wrote {out} ({len(frame)} points, {frame['device'].iloc[0]})")


@click.command()
@click.option("--backend", type=BACKEND_CHOICE, help="Run the microbenchmarks on this backend.")
@click.option("--refit", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Instead, refit a preset from the microbenchmarks it records (repeatable: "
                   "several presets of one machine, such as the rounds of an interleaved "
                   "session, are pooled first: each microbenchmark's fastest round).")
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Machine preset YAML to write.")
@ROUNDS_OPTION
@KERNEL_OPTION
@STAGE_OPTION
def calibrate(backend: str | None, refit: tuple[Path, ...], out: Path, rounds: int,
              kernel: str, stage: str) -> None:
    """Run microbenchmarks on BACKEND and write a machine preset fitted to them."""
    from simulator.core.config import read_yaml
    from simulator.grounding import calibrate as calibration
    from simulator.grounding.machine_preset import (
        load_machine_preset,
        machine_system,
        save_machine_preset,
        strip_sources,
    )

    if (backend is None) == (not refit):
        raise InputError("give exactly one of --backend or --refit", field="--backend")
    if backend == FHE:
        reject_torch_options(1, kernel)
        calibrate_fhe_presets(out, rounds)
        return
    if stage == "dense":
        from simulator.grounding.dense import calibrate_dense, refit_dense

        if refit:
            if len(refit) > 1:
                raise InputError("a dense preset is refitted from one file", field="--refit")
            dense = refit_dense(read_yaml(refit[0]), out.stem)
        else:
            dense = calibrate_dense(out.stem, rounds, backend)
        save_machine_preset(dense, out)
        click.echo(", ".join(f"{key} {entry['value']:.4g}"
                             for key, entry in dense["params"].items()))
        click.echo(f"wrote {out}")
        return
    if refit:
        preset = calibration.refit(*(load_machine_preset(path) for path in refit))
    else:
        from simulator.grounding.backends import backend_by_name

        preset = calibration.calibrate(backend_by_name(backend, kernel), rounds=rounds)
    machine_system(preset, str(out))          # a fit that went wrong is caught here
    save_machine_preset(preset, out)
    memory = strip_sources(preset["system"]["memory"])
    for name, tier in memory.items():
        click.echo(f"{name}: {tier['bandwidth'] / 1e9:.1f} GB/s, "
                   f"{tier['latency'] * 1e9:.0f} ns, {tier['capacity'] / 2**20:.0f} MiB")
    compute = strip_sources(preset["system"]["compute"])
    click.echo("processor: " + ", ".join(
        f"{key} {compute[key] * 1e9:.3g} ns" for key in (*calibration.COSTS, calibration.FLOOR)
        if key in compute))
    click.echo(f"wrote {out}")


def reject_torch_options(rounds: int, kernel: str) -> None:
    """``--kernel`` picks a torch kernel, and ``measure --rounds`` a torch measurement's
    rounds: neither applies to SEAL's encrypted lookups."""
    if kernel != "embedding_bag":
        raise InputError(f"--kernel {kernel} picks a torch kernel; fhe-cpu runs SEAL",
                         field="--kernel")
    if rounds != 1:
        raise InputError("fhe-cpu measures each point in one round (use --repeats)",
                         field="--rounds")


def calibrate_fhe_presets(out: Path, rounds: int) -> None:
    """Time SEAL's CKKS operations here and write ``out`` (one thread) and ``<out>-mt``
    (every core, at the measured parallel efficiency): ``fhe`` presets."""
    import copy

    from simulator.grounding.fhe_calibrate import calibrate_fhe
    from simulator.grounding.machine_preset import save_machine_preset

    preset = calibrate_fhe(out.stem, repeats=4 * rounds + 1,
                           progress=lambda where: click.echo(f"timing {where}", err=True))
    multi = copy.deepcopy(preset)
    multi["name"] = f"{out.stem}-mt"
    multi["description"] += f", {multi['params']['threads']['value']} threads"
    for key in ("threads", "parallel_efficiency"):
        preset["params"][key] = {"value": 1, "source": "one thread: SEAL runs each operation "
                                                        "on one"}
    mt_out = out.with_name(f"{out.stem}-mt{out.suffix}")
    save_machine_preset(preset, out)
    save_machine_preset(multi, mt_out)
    for key, entry in preset["params"].items():
        if key.endswith("_time"):
            click.echo(f"{key[:-5]}: {entry['value'] * 1e9:.3g} ns per modular operation "
                       f"({entry['source'].rsplit('; ', 1)[-1]})")
    click.echo(f"parallel efficiency over {multi['params']['threads']['value']} threads: "
               f"{multi['params']['parallel_efficiency']['value']:.2f}")
    click.echo(f"wrote {out} and {mt_out}")


@click.command()
@click.argument("experiment", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--measurements", type=click.Path(path_type=Path, dir_okay=False),
              required=True, help="Parquet written by 'embsim measure'.")
@click.option("--preset", type=click.Path(path_type=Path, dir_okay=False),
              help="Machine preset written by 'embsim calibrate'.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Parquet of the comparison (default: beside the measurements).")
@click.option("--plot", type=click.Path(path_type=Path, dir_okay=False),
              help="PNG of predicted against measured.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@SET_OPTION
def validate(experiment: Path, measurements: Path, preset: Path | None, out: Path | None,
             plot: Path | None, as_json: bool, sets: tuple[str, ...]) -> None:
    """Simulate EXPERIMENT's measured points and compare with the measurements."""
    from simulator.grounding.validate import plot_validation
    from simulator.grounding.validate import validate as run_validation
    from simulator.runs.results import write_parquet

    result = run_validation(experiment, measurements, preset, parse_assignments(sets))
    if result.summary["machine_mismatch"]:
        click.echo(f"warning: the preset {preset} was calibrated on another machine than the "
                   f"measurements {measurements} come from (preset != measured: "
                   f"{'; '.join(result.summary['machine_mismatch'])})", err=True)
    out = out or measurements.with_name(f"{measurements.stem}.validation.parquet")
    write_parquet(result.frame, out)
    if plot:
        plot_validation(result, plot)
    summary = result.summary | {"comparison": str(out), "plot": str(plot) if plot else None}
    if as_json:
        rows = result.frame.to_dict(orient="records")
        click.echo(json.dumps(summary | {"rows": rows}, default=str))
        return
    shown = result.frame.assign(error_pct=result.frame["error"] * 100)
    columns = ["point", *[c for c in shown.columns if "." in c], "measured_us", "predicted_us",
               "error_pct"]
    click.echo(shown[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"MAPE {summary['mape']:.1f}%  mean error {summary['mean_error']:+.1f}%  "
               f"max error {summary['max_error']:.1f}%  "
               f"rank correlation {summary['rank_correlation']:.3f}  points {summary['points']}")
    click.echo(f"calibrated on: {summary['calibration_runs']} microbenchmark runs "
               f"({', '.join(summary['calibrated_on']) or 'no preset'}); validated on: all "
               f"{summary['points']} measured points")
    click.echo(f"wrote {out}" + (f" and {plot}" if plot else ""))
