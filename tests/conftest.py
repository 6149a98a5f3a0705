"""Shared helpers: small inline systems and experiments written to real YAML files."""

from __future__ import annotations

import contextlib
import copy
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

HBM = {"capacity": "80 GB", "bandwidth": "3.2 TB/s", "latency": "500 ns",
       "access_granularity": "32 B", "channels": 16, "interleave": "256 B"}
DRAM = {"capacity": "64 GB", "bandwidth": "300 GB/s", "latency": "100 ns",
        "access_granularity": "64 B", "channels": 8, "interleave": "256 B"}
PCIE = {"bandwidth": "64 GB/s", "latency": "1 us"}

BASE: dict[str, Any] = {
    "name": "small",
    "system": {
        "memory": {"hbm": HBM, "dram": DRAM},
        "links": {"pcie": PCIE},
        "tables": {"tier": "dram", "link": "pcie"},
        "compute": {"tier": "hbm"},
        "cache": {"tier": "hbm", "size": "64 KiB", "ways": 8, "policy": "lru"},
    },
    "workload": {"generator": {
        "tables": [{"rows": 5000, "dim": 16}, {"rows": 3000, "dim": 32}],
        "pooling": 8, "batches": 6, "batch_size": 32, "alpha": 1.1, "seed": 3}},
    "run": {"arrivals": {"mode": "closed", "concurrency": 2}, "seed": 0},
}


def experiment(**overrides: Any) -> dict[str, Any]:
    """A copy of BASE with dotted-path overrides (value None deletes the key)."""
    data = copy.deepcopy(BASE)
    for path, value in overrides.items():
        keys = path.split("__")
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return data


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def embsim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real ``embsim`` command line in a subprocess."""
    return subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()",
                           *args], capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=600)


def reduced(name: str, tmp_path: Path, edit: Callable[[dict[str, Any]], None]
            ) -> tuple[pd.DataFrame, Path]:
    """Run the shipped ``experiments/<name>.yaml`` after ``edit`` (which shrinks it) through
    the command line; its results and output folder."""
    data = yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text())
    edit(data)
    path = write_yaml(tmp_path / f"{name}.yaml", data)
    out = tmp_path / "out"
    proc = embsim("run", str(path), "--out", str(out), "--workers", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return pd.read_parquet(out / "results.parquet"), out


def embsim_here(*args: str) -> subprocess.CompletedProcess:
    """Run the ``embsim`` command line in this process (faster than ``embsim``, for the many
    bad-input cases): its exit status, stdout and stderr."""
    from simulator.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@pytest.fixture
def write_experiment(tmp_path):
    def write(data: dict[str, Any], name: str = "exp.yaml") -> Path:
        return write_yaml(tmp_path / name, data)
    return write
