"""``embsim validate``: simulated against measured, point by point.

For every point of the experiment that has a measurement (matched by ``workload_hash``: the
workload, seeds, pooling and table placement, not the simulated hardware), simulate
it (on a calibrated machine preset when one is given) with one query in flight, as the
measurement ran its batches one at a time, with its caches warmed first when the measurement
did not flush them (``run.warm_caches``), and compare the simulated median query latency with
the measured median batch time. Errors are (predicted - measured) / measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from embsim.errors import InputError
from simulator.core.config import Experiment, parse_experiment, read_yaml
from simulator.grounding.machine_preset import apply_machine, load_machine_preset
from simulator.grounding.measure import read_provenance, workload_hash
from simulator.runs.experiment import Point, load_points, run_point

REQUIRED = ("workload_hash", "time_per_batch_us")


@dataclass
class Validation:
    """The comparison table and its summary figures."""

    frame: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def read_measurements(path: Path, field: str = "--measurements") -> pd.DataFrame:
    """A measurements Parquet with the columns validation needs (InputError otherwise)."""
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise InputError("file not found", source=str(path), field=field) from None
    except Exception as err:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"not a readable Parquet file ({type(err).__name__})",
                         source=str(path), field=field) from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected a file written "
                         "by 'embsim measure'", source=str(path), field=field)
    return frame


def as_measured(point: Point, flushed: bool) -> Point:
    """The point run as its measurement ran: one query in flight (batches timed one at a
    time), and caches warmed by a pass over the batches unless each pass began by flushing
    them."""
    config = point.config.model_copy(deep=True)
    config.run.arrivals.mode = "closed"
    config.run.arrivals.concurrency = 1
    config.run.warm_caches = not flushed
    return Point(point.index, point.overrides, config, point.config_hash)


def summarise_errors(frame: pd.DataFrame) -> dict[str, Any]:
    """Points, MAPE and maximum absolute error (percent) and Spearman rank correlation."""
    errors = frame["error"].to_numpy()
    rho = (float(spearmanr(frame["measured_us"], frame["predicted_us"]).statistic)
           if len(frame) > 2 else float("nan"))
    return {"points": int(len(frame)), "mape": float(np.mean(np.abs(errors)) * 100),
            "mean_error": float(np.mean(errors) * 100),
            "max_error": float(np.max(np.abs(errors)) * 100), "rank_correlation": rho}


MACHINE_KEYS = ("backend", "kernel", "device", "caches", "torch_threads")
"""What must agree between a preset's machine and the measured one for the preset to apply."""


def machine_mismatch(preset: dict[str, Any], measured: dict[str, Any]) -> list[str]:
    """The machine properties (``MACHINE_KEYS``) in which a preset's provenance and a
    measurement's differ, each as ``key: preset value != measured value``; keys either side
    does not record are skipped."""
    return [f"{key}: {preset[key]} != {measured[key]}" for key in MACHINE_KEYS
            if key in preset and key in measured and preset[key] != measured[key]]


def validate(experiment: Path, measurements: Path, preset_path: Path | None,
             sets: dict[str, Any]) -> Validation:
    source = str(experiment)
    measured = read_measurements(measurements)
    engine = preset_kind(preset_path) if preset_path is not None else None
    fhe_preset = engine in ("fhe", "dense")
    preset = (read_yaml(preset_path) if fhe_preset
              else load_machine_preset(preset_path) if preset_path else None)
    _, points = load_points(experiment, sets)
    by_hash = measured.drop_duplicates("workload_hash", keep="last").set_index("workload_hash")
    rows, unmeasured = [], []
    for point in points:
        key = workload_hash(point)
        if key not in by_hash.index:
            unmeasured.append(point.index)
            continue
        if engine == "dense":
            config = apply_dense_engine(point.config, preset_path, source)
        elif fhe_preset:
            config = apply_fhe_engine(point.config, preset_path, source)
        elif preset:
            config = apply_machine(point.config, preset, str(preset_path))
        else:
            config = point.config
        row = by_hash.loc[key]
        flushed = bool(row["flush"]) if "flush" in row.index else True
        simulated = run_point(as_measured(Point(point.index, point.overrides, config,
                                                point.config_hash), flushed), source).row
        measured_us = float(row["time_per_batch_us"])
        metric = str(row["metric"]) if "metric" in row.index else "latency_p50_us"
        predicted_us = float(simulated[metric])
        rows.append({"point": point.index, **point.overrides, "config_hash": point.config_hash,
                     "role": "validation", "measured_us": measured_us,
                     "predicted_us": predicted_us,
                     "error": (predicted_us - measured_us) / measured_us})
    if not rows:
        raise InputError(f"no point of {source} has a measurement in this file (workload "
                         "hashes differ: was it measured from this experiment with the same "
                         "--set?)", source=str(measurements), field="workload_hash")
    frame = pd.DataFrame(rows)
    calibration = (preset.get("microbenchmarks", []) if preset else [])
    summary = summarise_errors(frame) | {
        "experiment": source, "measurements": str(measurements),
        "preset": str(preset_path) if preset_path else None,
        "unmeasured_points": unmeasured,
        "calibrated_on": sorted({m["name"] for m in calibration}),
        "calibration_runs": len(calibration),
        "validation_points": [int(p) for p in frame["point"]],
        "measured_on": measured_device(measured),
        "machine_mismatch": machine_mismatch(preset.get("provenance", {}) if preset else {},
                                             read_provenance(measurements)),
    }
    return Validation(frame, summary)


def preset_kind(path: Path) -> str | None:
    """The ``kind`` a preset file declares: ``machine``, or an engine's (``fhe``: ``embsim
    calibrate --backend fhe-cpu``; ``dense``: ``--stage dense``)."""
    data = read_yaml(path)
    return data.get("kind") if isinstance(data, dict) else None


def apply_dense_engine(config: Experiment, path: Path, source: str) -> Experiment:
    """``config`` with its dense layers on the engine of ``path`` (the measured CPU)."""
    data = config.model_dump(mode="json", exclude_none=True)
    dense = data["system"].get("dense")
    if dense is None:
        raise InputError("a dense preset applies to a system.dense section", source=source,
                         field="system.dense")
    dense["preset"] = str(path.resolve())
    dense["params"] = {}
    return parse_experiment(data, source)


def apply_fhe_engine(config: Experiment, path: Path, source: str) -> Experiment:
    """``config`` with every ``fhe`` unit's server and client on the engine of ``path`` (the
    measured CPU ran both)."""
    data = config.model_dump(mode="json", exclude_none=True)
    units = data["system"].get("units", {})
    for entry in units.values():
        if entry.get("kind") == "fhe":
            entry["preset"] = entry["client_preset"] = str(path.resolve())
            entry.pop("params", None)
    return parse_experiment(data, source)


def measured_device(frame: pd.DataFrame) -> str | None:
    """The device a measurements file names, if it does."""
    return str(frame["device"].iloc[0]) if "device" in frame.columns and len(frame) else None


def plot_validation(result: Validation, path: Path) -> None:
    """Predicted against measured on log axes, with the y = x line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from embsim.atomic import write_atomic

    frame = result.frame
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(frame["measured_us"], frame["predicted_us"], s=22)
    low = min(frame["measured_us"].min(), frame["predicted_us"].min()) * 0.8
    high = max(frame["measured_us"].max(), frame["predicted_us"].max()) * 1.25
    ax.plot([low, high], [low, high], color="gray", linewidth=1, label="y = x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured time per batch (us)")
    ax.set_ylabel("simulated time per batch (us)")
    s = result.summary
    ax.set_title(f"{Path(s['experiment']).stem} on {s['measured_on'] or 'measured device'}\n"
                 f"MAPE {s['mape']:.1f}%, max {s['max_error']:.1f}%, rank corr "
                 f"{s['rank_correlation']:.2f}, {s['points']} points", fontsize=9)
    ax.legend(loc="upper left")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
