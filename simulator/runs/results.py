"""Result files, written atomically (see ``embsim.atomic``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from embsim.atomic import write_atomic


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_text(text: str, path: Path) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))
