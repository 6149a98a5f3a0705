"""Simulate one golden case and return its metric columns (wall time left out)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from cases import case_config

from simulator.runs.experiment import load_points, simulate_point


def run_case(name: str, folder: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.write_text(yaml.safe_dump(case_config(name), sort_keys=False))
        _, points = load_points(path, {})
        row = simulate_point(points[0], str(path)).row
    return {k: v for k, v in row.items() if k not in ("wall_s", "config_hash")}
