"""Rewrite ``metrics_before_units.parquet`` from the engine as it is now (see cases.py)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent)]

import pandas as pd  # noqa: E402
from cases import CASES  # noqa: E402
from run_case import run_case  # noqa: E402

if __name__ == "__main__":
    rows = [{"case": name, **run_case(name, HERE)} for name in CASES]
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "metrics_before_units.parquet"
    pd.DataFrame(rows).to_parquet(out, index=False)
    print(f"wrote {out} ({len(rows)} cases)")
