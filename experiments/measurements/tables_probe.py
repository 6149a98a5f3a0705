"""Probe the CPU model where its test-set bias lies: many tables sharing one footprint.

The committed CPU test sets are too fast on average where many tables share 8-64 MB (AMD
EPYC: -28% to -30% against +1% below 1 MB; the same direction, smaller, on the Xeons), a
region the design set (two float32 tables) never reaches. This probe is on the design side
(the model may be shaped on it): 1, 4 and 24 tables sharing 4, 16 and 48 MiB, rows of whole
SIMD vectors (dim 64, fp32) and of partial ones (dim 44 fp32, dim 88 fp16: 176 B), uniform
and Zipf 1.2, pooling 24, batch 256: 54 points of validation_cpu.yaml's system, measured with
torch on this CPU and validated against a preset calibrated in the same minutes (or given).

    python experiments/measurements/tables_probe.py [NAME] [--preset FILE] [--rounds 3]

Writes, in experiments/measurements: NAME-lscpu.txt, NAME-preset.yaml (unless given),
NAME-tables.parquet, NAME-tables.validation.parquet and NAME-tables-report.txt (signed error
by tables and footprint for each row kind).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "experiments" / "validation_cpu.yaml"
TABLES = (1, 4, 24)
FOOTPRINTS_MIB = (4, 16, 48)
ROW_KINDS = {"dim64-fp32": (64, "float32", 4), "dim44-fp32": (44, "float32", 4),
             "dim88-fp16": (88, "float16", 2)}
G = "workload.generator."


def cases() -> dict[str, dict]:
    """The probe's points: rows = footprint / (tables x row bytes)."""
    out = {}
    for kind, (dim, dtype, size) in ROW_KINDS.items():
        for footprint in FOOTPRINTS_MIB:
            for tables in TABLES:
                for alpha in (0.0, 1.2):
                    rows = footprint * 2**20 // (tables * dim * size)
                    out[f"{kind}-{footprint}m-t{tables}-a{alpha:g}"] = {
                        G + "num_tables": tables, G + "rows": rows, G + "dim": dim,
                        G + "dtype": dtype, G + "pooling": 24, G + "batch_size": 256,
                        G + "alpha": alpha}
    return out


def embsim(*args: str) -> str:
    """Run an ``embsim`` command of this environment; its standard output."""
    command = [str(Path(sys.executable).with_name("embsim")), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def report(frame: pd.DataFrame, summary: dict) -> str:
    """The summary line and, per row kind, the mean signed error (%) by footprint x tables."""
    kinds = {(dim, dtype): kind for kind, (dim, dtype, _) in ROW_KINDS.items()}
    sizes = {dtype: size for dim, dtype, size in ROW_KINDS.values()}
    row_bytes = frame[G + "dim"] * frame[G + "dtype"].map(sizes)
    frame = frame.assign(
        kind=[kinds[(dim, dtype)] for dim, dtype in zip(frame[G + "dim"], frame[G + "dtype"],
                                                        strict=True)],
        footprint_mib=(frame[G + "num_tables"] * frame[G + "rows"] * row_bytes / 2**20).round(),
        tables=frame[G + "num_tables"])
    lines = [f"points {summary['points']}  MAPE {summary['mape']:.1f}%  mean "
             f"{summary['mean_error']:+.1f}%  max {summary['max_error']:.1f}%  "
             f"machine warning: {'; '.join(summary['machine_mismatch']) or 'none'}"]
    for kind, part in frame.groupby("kind", sort=False):
        table = part.pivot_table(index="footprint_mib", columns="tables", values="error")
        lines += ["", f"{kind}: mean signed error (%), uniform and Zipf 1.2 together",
                  (table * 100).round(1).to_string()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="cpu-probe")
    parser.add_argument("--preset", type=Path, help="a calibrated preset (default: calibrate)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    prefix = ROOT / "experiments" / "measurements" / args.name
    (prefix.parent / f"{args.name}-lscpu.txt").write_text(
        subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
    preset = args.preset or prefix.parent / f"{args.name}-preset.yaml"
    if args.preset is None:
        embsim("calibrate", "--backend", "torch-cpu", "--rounds", str(args.rounds),
               "-o", str(preset))
    sweep = "sweep=" + json.dumps({"cases": cases()})
    measured = f"{prefix}-tables.parquet"
    embsim("measure", str(EXPERIMENT), "--backend", "torch-cpu", "--no-flush", "--rounds",
           str(args.rounds), "--set", "workload.generator.model=rm2", "--set", sweep,
           "-o", measured)
    compared = f"{prefix}-tables.validation.parquet"
    summary = json.loads(embsim("validate", str(EXPERIMENT), "--measurements", measured,
                                "--preset", str(preset), "--set", "workload.generator.model=rm2",
                                "--set", sweep, "--out", compared, "--json"))
    frame = pd.read_parquet(compared)
    text = report(frame, summary)
    Path(f"{prefix}-tables-report.txt").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
