"""Full-size proof that a refactor moved no number: run the shipped experiments and every
committed validation pair on two checkouts, then compare every metric column exactly.

    python tests/golden/full_runs.py record CHECKOUT OUT    # in each checkout's environment
    python tests/golden/full_runs.py compare BEFORE_OUT AFTER_OUT

``record`` runs ``embsim run`` on quickstart, sdm_tiering and gpu_cache_policies (full size)
and ``embsim validate`` on the committed measurements with their presets, from CHECKOUT, with
the Python running this script. ``compare`` prints, per experiment, the columns that differ
(``wall_s`` aside) and the columns only the later run has, and per validation whether every
prediction is identical; it exits 1 if anything differs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

EXPERIMENTS = ("quickstart", "sdm_tiering", "gpu_cache_policies")
PAIRS = (("validation_cpu", "cpu-amd-epyc-2026-11-26", "cpu-amd-epyc-2026-11-26"),
         ("validation_cpu", "cpu-amd-epyc-tbe-2026-11-26", "cpu-amd-epyc-tbe-2026-11-26"),
         ("validation_gpu", "h100-2026-11-26", "h100-2026-11-26"),
         ("validation_gpu", "h100-2026-11-26-warm", "h100-2026-11-26"),
         ("validation_gpu", "h100-2026-11-26b", "h100-2026-11-26b"),
         ("validation_gpu", "h100-2026-11-26b-warm", "h100-2026-11-26b"),
         ("validation_gpu", "h200-2026-11-26", "h200-2026-11-26"),
         ("validation_gpu", "h200-2026-11-26-warm", "h200-2026-11-26"))


def embsim(checkout: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()", *args],
                   cwd=checkout, check=True, capture_output=True)


def record(checkout: Path, out: Path) -> None:
    measured = Path("experiments/measurements")
    for name in EXPERIMENTS:
        embsim(checkout, "run", f"experiments/{name}.yaml", "--out", str(out / name),
               "--quiet", "--force")
    for experiment, measurements, preset in PAIRS:
        embsim(checkout, "validate", f"experiments/{experiment}.yaml", "--measurements",
               str(measured / f"{measurements}.parquet"), "--preset",
               str(measured / f"{preset}-preset.yaml"), "--out",
               str(out / f"val-{measurements}.parquet"))


def compare(before: Path, after: Path) -> int:
    differences = 0
    for name in EXPERIMENTS:
        old = pd.read_parquet(before / name / "results.parquet")
        new = pd.read_parquet(after / name / "results.parquet")
        columns = [c for c in old.columns if c != "wall_s"]
        differ = [c for c in columns if c not in new.columns or not old[c].equals(new[c])]
        added = sorted(set(new.columns) - set(old.columns))
        print(f"{name}: {len(old)} points, {len(columns)} columns compared; differing "
              f"{differ or 'none'}; new columns {added or 'none'}")
        differences += len(differ)
    for _, measurements, _ in PAIRS:
        old = pd.read_parquet(before / f"val-{measurements}.parquet")
        new = pd.read_parquet(after / f"val-{measurements}.parquet")
        same = old["predicted_us"].equals(new["predicted_us"])
        print(f"validation {measurements}: {len(old)} points, predictions identical: {same}")
        differences += not same
    print("identical" if not differences else f"{differences} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    command, first, second = sys.argv[1:4]
    if command == "record":
        record(Path(first).resolve(), Path(second).resolve())
    else:
        sys.exit(compare(Path(first), Path(second)))
