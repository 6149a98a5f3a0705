"""Issue 16's bad inputs: each exits with status 2 and one short line naming the file and the
field, with no traceback, and leaves nothing behind (no results folder, no temporary file).

The cases run in this process (``embsim_here``): an exception that escaped as a traceback
would fail the test. A property test feeds arbitrary experiment texts and ``--set`` values.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from conftest import ROOT, embsim_here, experiment, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embsim import limits
from embsim.errors import MAX_MESSAGE
from traces.batch import Batch
from traces.parquet_io import write_trace
from traces.schema import TableSpec, TraceMeta

MAX_LINE = 300
"""Characters a message line may take in these cases, the test's folder counted as one (the
hard cap is ``MAX_MESSAGE``)."""


def _trace(path: Path, **meta_changes: object) -> Path:
    """A two-table trace of two batches, its metadata changed by ``meta_changes`` (a key
    ``table0_rows`` sets the first table's rows; ``empty`` drops every lookup)."""
    meta = TraceMeta([TableSpec(100, 8), TableSpec(100, 8)], batch_size=2)
    batch = Batch(0, np.array([0, 9, 3, 4, 5, 6], dtype=np.int64),
                  np.array([0, 1, 2, 4, 6], dtype=np.int64), 2, 2)
    write_trace(path, meta, [batch, Batch(1, batch.indices, batch.offsets, 2, 2)])
    if not meta_changes:
        return path
    table = pq.read_table(path)
    data = json.loads(pq.ParquetFile(path).metadata.metadata[b"embsim"])
    if "table0_rows" in meta_changes:
        data["tables"][0]["rows"] = meta_changes.pop("table0_rows")
    if meta_changes.pop("empty", False):
        table = table.slice(0, 0)
    data.update(meta_changes)
    pq.write_table(table.replace_schema_metadata({"embsim": json.dumps(data)}), path)
    return path


def _dlrm_file(path: Path) -> Path:
    lengths = torch.full((2, 4), 2, dtype=torch.int64)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.flatten().cumsum(0)])
    torch.save((torch.arange(int(offsets[-1])) % 7, offsets, lengths), path)
    return path


def _exp(d: Path, **changes: object) -> str:
    return str(write_yaml(d / "exp.yaml", experiment(**changes)))


def _on_trace(d: Path, trace: str) -> str:
    return _exp(d, workload__generator=None, workload__trace=trace)


def _run(*extra: str) -> Callable[[Path], list[str]]:
    """``embsim run`` of a valid experiment with ``extra`` options."""
    return lambda d: ["run", _exp(d), "--out", str(d / "out"), *extra]


def _run_with(**changes: object) -> Callable[[Path], list[str]]:
    """``embsim run`` of the small experiment with ``changes`` (see ``conftest.experiment``)."""
    return lambda d: ["run", _exp(d, **changes), "--out", str(d / "out")]


def _run_text(content: bytes) -> Callable[[Path], list[str]]:
    def args(d: Path) -> list[str]:
        (d / "exp.yaml").write_bytes(content)
        return ["run", str(d / "exp.yaml"), "--out", str(d / "out")]
    return args


def _laughs() -> bytes:
    levels = ["&a0 [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return (f"description: [{', '.join(levels)}]\n"
            + yaml.safe_dump(experiment(), sort_keys=False)).encode()


CASES: dict[str, tuple[Callable[[Path], list[str]], list[str]]] = {
    # tracebacks before
    "random bytes": (_run_text(bytes(range(256)) * 8), ["exp.yaml", "not a UTF-8 text file"]),
    "non-UTF-8": (_run_text("name: caf\xe9\n".encode("latin-1")),
                  ["exp.yaml", "not a UTF-8 text file"]),
    "nested 5000 deep": (_run_text(b"a: " + b"[" * 5000 + b"]" * 5000),
                         ["exp.yaml", "nested too deep"]),
    "rows 10**30": (_run_with(workload__generator__tables=[{"rows": 10**30, "dim": 8}],
                              workload__generator__pooling=2),
                    ["exp.yaml", "workload.generator.tables.0.rows", "less than or equal"]),
    "trace rows 10**30, stats": (
        lambda d: ["trace", "stats", str(_trace(d / "t.parquet", table0_rows=10**30))],
        ["t.parquet", "embsim.tables.0.rows", "[1, 1099511627776]"]),
    "trace rows 10**30, convert": (
        lambda d: ["trace", "convert", str(_trace(d / "t.parquet", table0_rows=10**30)),
                   str(d / "c.parquet")],
        ["t.parquet", "embsim.tables.0.rows"]),
    "trace rows 10**30, run": (
        lambda d: ["run", _on_trace(d, str(_trace(d / "t.parquet", table0_rows=10**30))),
                   "--out", str(d / "out")],
        ["t.parquet", "embsim.tables.0.rows"]),
    "--set value [": (_run("--set", "system.cache.size=["),
                      ["--set", "system.cache.size", "not a YAML value"]),
    "--set python tag": (_run("--set", "system.cache.size=!!python/name:os.system"),
                         ["--set", "system.cache.size", "could not determine a constructor"]),
    "--out cannot be a folder": (
        lambda d: ["run", _exp(d), "--out", str(d / "exp.yaml" / "out")],
        ["--out", "would be inside the file"]),
    "convert onto a folder": (
        lambda d: ["trace", "convert", str(_trace(d / "t.parquet")), str(d)],
        ["is a folder", "expected the path of a file"]),
    "cache.size 1e30 B": (_run_with(system__cache__size="1e30 B"),
                          ["exp.yaml", "system.cache.size", "at most 1024 PiB"]),
    "cache.size 10 TiB on HBM": (_run_with(system__cache__size="10 TiB"),
                                 ["exp.yaml", "system.cache.size", "holds 74.51 GiB"]),
    # found only at run time before
    "batch_size 10**12": (_run_with(workload__generator__batch_size=10**12),
                          ["exp.yaml", "workload.generator.batch_size", "1048576"]),
    "run.seed -1": (_run_with(run__seed=-1), ["exp.yaml", "run.seed", "greater than or equal"]),
    "max_batches 10**20": (_run_with(workload__max_batches=10**20),
                           ["exp.yaml", "workload.max_batches", "10000000"]),
    "batches 10**12": (_run_with(workload__generator__batches=10**12),
                       ["exp.yaml", "workload.generator.batches", "10000000"]),
    "concurrency 10**9": (_run_with(run__arrivals__concurrency=10**9),
                          ["exp.yaml", "run.arrivals.concurrency", "65536"]),
    "repeats 10**9": (_run_with(sweep={"repeats": 10**9}), ["exp.yaml", "sweep.repeats", "10000"]),
    "sweep of 10**6 points": (
        _run_with(sweep={"grid": {"run.seed": list(range(1000)),
                                  "workload.generator.seed": list(range(1000))}}),
        ["exp.yaml", "sweep", "1000000 points", "at most 100000"]),
    "plot of an unknown metric": (
        _run_with(plots=[{"file": "p.png", "x": "system.cache.size", "metrics": ["hit_ratez"]}],
                  sweep={"grid": {"system.cache.size": ["32 KiB", "64 KiB"]}}),
        ["exp.yaml", "plots.0.metrics.0", "'hit_ratez'", "cache_hit_rate"]),
    "trace gen --batches 1e12": (
        lambda d: ["trace", "gen", "--model", "rm1", "--batches", "1e12", "-o",
                   str(d / "g.parquet")], ["--batches", "not a valid integer"]),
    "trace gen --batches 10**12": (
        lambda d: ["trace", "gen", "--model", "rm1", "--batches", str(10**12), "-o",
                   str(d / "g.parquet")], ["--batches", "1<=x<=10000000"]),
    # accepted silently before
    "empty trace": (
        lambda d: ["run", _on_trace(d, str(_trace(d / "t.parquet", empty=True, num_batches=0))),
                   "--out", str(d / "out")], ["t.parquet", "holds no lookups"]),
    "trace version 99, run": (
        lambda d: ["run", _on_trace(d, str(_trace(d / "t.parquet", version=99))),
                   "--out", str(d / "out")], ["t.parquet", "embsim.version", "got 99"]),
    "trace version 99, stats": (
        lambda d: ["trace", "stats", str(_trace(d / "t.parquet", version=99))],
        ["t.parquet", "embsim.version", "expected 1"]),
    "cache.ways 10**12": (_run_with(system__cache__ways=10**12),
                          ["exp.yaml", "system.cache.ways", "65536"]),
    "num_tables above the model's": (
        _run_with(workload__generator={"model": "rm1", "num_tables": 64, "batches": 1,
                                       "batch_size": 2}),
        ["exp.yaml", "workload.generator.num_tables", "has 8 tables", "got 64"]),
    "--set twice": (_run("--set", "run.seed=1", "--set", "run.seed=2"),
                    ["--set", "run.seed is set twice"]),
    # unclear messages before
    "run.fidelity ultra": (_run_with(run__fidelity="ultra"),
                           ["exp.yaml", "run.fidelity", "'detailed' (got 'ultra')"]),
    "--set run.fidelity=ultra": (_run("--set", "run.fidelity=ultra"),
                                 ["exp.yaml", "run.fidelity", "(got 'ultra')"]),
    "--set ...=1": (_run("--set", "...=1"), ["--set", "...: expected dotted names"]),
    "workload.trace empty": (lambda d: ["run", _on_trace(d, ""), "--out", str(d / "out")],
                             ["exp.yaml", "workload.trace", "is empty"]),
    "billion laughs": (_run_text(_laughs()), ["exp.yaml", "once its aliases are expanded"]),
    "dlrm_datasets file as a trace": (
        lambda d: ["run", _on_trace(d, str(_dlrm_file(d / "d.pt"))), "--out", str(d / "out")],
        ["exp.yaml", "workload.trace", "dlrm_datasets file",
         "embsim trace convert", "d.parquet"]),
}


def _files(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, name):
    make_args, expect = CASES[name]
    work = tmp_path / "w"
    work.mkdir()
    args = make_args(work)
    before = _files(tmp_path)
    started = time.perf_counter()
    proc = embsim_here(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("embsim: error: "), proc.stderr
    assert len(lines[0].replace(str(work), "W")) <= MAX_LINE, lines[0]
    for fragment in expect:
        assert fragment in lines[0], (fragment, lines[0])
    assert _files(tmp_path) == before, "bad input left files behind"
    assert time.perf_counter() - started < 30


def test_sigterm_removes_the_temporary_file_of_trace_gen(tmp_path):
    out = tmp_path / "big.parquet"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from simulator.cli import main; main()", "trace", "gen",
         "--model", "rm1", "--batches", "100000", "-o", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while (not list(tmp_path.glob(".big.parquet.*.tmp")) and proc.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.05)
    assert list(tmp_path.glob(".big.parquet.*.tmp")), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert os.listdir(tmp_path) == []


def _contract(proc: subprocess.CompletedProcess, folder: Path, before: set[Path]) -> None:
    """Exit 0 (the input happened to be valid) or 2 with one bounded line; nothing written
    either way (the runs are dry runs)."""
    assert proc.returncode in (0, 2), proc.stderr
    if proc.returncode == 2:
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("embsim: error: "), proc.stderr
        assert len(lines[0]) <= MAX_MESSAGE + 20
    assert _files(folder) == before


YAML_ATOMS = st.sampled_from(["[", "]", "{", "}", ":", "- ", "&a ", "*a", "!!python/name:os.x",
                              "\n", "  ", "1e30", "-1", "10 TiB", "system", "workload", "null"])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                      st.lists(YAML_ATOMS, max_size=30).map("".join)))
def test_any_experiment_text_meets_the_contract(tmp_path, text):
    path = tmp_path / "any.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    before = _files(tmp_path)
    _contract(embsim_here("run", str(path), "--dry-run", "--out", str(tmp_path / "out")),
              tmp_path, before)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["system.cache.size", "system.cache.ways", "run.seed",
                            "workload.generator.batches", "run.arrivals.concurrency",
                            "workload.generator.tables.0.rows", "sweep.repeats", "x..y", ""]),
       value=st.one_of(st.integers(min_value=-10**40, max_value=10**40).map(str),
                       st.lists(YAML_ATOMS, max_size=8).map("".join)))
def test_any_set_value_meets_the_contract(tmp_path, key, value):
    path = write_yaml(tmp_path / "exp.yaml", experiment())
    before = _files(tmp_path)
    _contract(embsim_here("run", str(path), "--dry-run", "--out", str(tmp_path / "out"),
                          "--set", f"{key}={value}"), tmp_path, before)


def test_every_limit_is_documented_with_its_value():
    page = (ROOT / "docs" / "configuration.md").read_text()
    for name, value in vars(limits).items():
        if name.startswith("MAX_"):
            assert f"| `{name}` | {value} " in page, name
