"""Malformed trace files meet issue 16's contract: ``embsim trace stats``, ``embsim trace
convert`` and ``embsim run --dry-run`` on them exit 0 (the file happened to be valid) or 2
with one line naming the file, with no traceback, and write nothing.

Hypothesis breaks a small valid trace one way at a time: its ``embsim`` metadata (keys
dropped, values replaced by arbitrary JSON, huge numbers, garbage bytes), its columns (dropped,
retyped, nulls), single values (negative, huge), the order of its batches, its rows (none), or
the file's bytes (truncated, overwritten); CSV traces get the same treatment as text.
"""

from __future__ import annotations

import functools
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import embsim_here, experiment, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embsim.errors import MAX_MESSAGE
from traces.batch import Batch
from traces.parquet_io import TraceWriter, open_trace, write_trace
from traces.schema import TableSpec, TraceMeta

NUMBERS = st.one_of(st.integers(min_value=-(10**30), max_value=10**30),
                    st.sampled_from([0, -1, 2**31, 2**40, 2**40 + 1, 2**63, 2**64, 10**19]),
                    st.floats(allow_nan=True, allow_infinity=True))
JSON = st.recursive(st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=8)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.text(max_size=6), inner,
                                                            max_size=3)),
                    max_leaves=8)
COLUMN_NAMES = ["batch", "table", "bag", "row", "ts_ns", "weight"]
META_KEYS = ["version", "tables", "batch_size", "num_batches", "provenance"]
TABLE_KEYS = ["rows", "dim", "dtype"]


@functools.cache
def _valid() -> tuple[pa.Table, str]:
    """Two batches over two tables of 100 rows, batch size 2, with timestamps and weights:
    its columns and its metadata's JSON."""
    meta = TraceMeta([TableSpec(100, 8), TableSpec(100, 8)], batch_size=2)
    offsets = np.array([0, 1, 2, 4, 6], dtype=np.int64)
    batches = [Batch(i, np.array([0, 9, 3, 4, 5, 6], dtype=np.int64) + i, offsets, 2, 2,
                     ts_ns=np.arange(6, dtype=np.int64) + 6 * i,
                     weights=np.full(6, 0.5, dtype=np.float32)) for i in range(2)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "valid.parquet"
        meta = write_trace(path, meta, batches)
        table = pq.read_table(path)
    return table.replace_schema_metadata(None), json.dumps(meta.to_json())


def _valid_table() -> tuple[pa.Table, dict[str, Any]]:
    table, meta = _valid()
    return table, json.loads(meta)


def _mutation() -> st.SearchStrategy[tuple[str, Any]]:
    """One way of breaking the trace, with its parameters."""
    return st.one_of(
        st.tuples(st.just("drop key"), st.sampled_from(META_KEYS)),
        st.tuples(st.just("set key"), st.tuples(st.sampled_from(META_KEYS), JSON)),
        st.tuples(st.just("set table key"),
                  st.tuples(st.integers(0, 1), st.sampled_from(TABLE_KEYS), JSON)),
        st.tuples(st.just("metadata bytes"), st.binary(max_size=40)),
        st.tuples(st.just("no metadata"), st.none()),
        st.tuples(st.just("drop column"), st.sampled_from(COLUMN_NAMES)),
        st.tuples(st.just("retype column"),
                  st.tuples(st.sampled_from(COLUMN_NAMES),
                            st.sampled_from(["float64", "string", "bool", "int8", "uint64"]))),
        st.tuples(st.just("null"), st.tuples(st.sampled_from(COLUMN_NAMES), st.integers(0, 11))),
        st.tuples(st.just("set value"),
                  st.tuples(st.sampled_from(COLUMN_NAMES[:5]), st.integers(0, 11),
                            st.integers(min_value=-(2**63), max_value=2**63 - 1))),
        st.tuples(st.just("shuffle"), st.permutations(range(12))),
        st.tuples(st.just("empty"), st.none()),
        st.tuples(st.just("truncate"), st.floats(0, 1)),
        st.tuples(st.just("garbage"), st.tuples(st.floats(0, 1), st.binary(min_size=1,
                                                                           max_size=64))),
    )


def _retyped(column: pa.Array, kind: str) -> pa.Array:
    values = column.to_pylist()
    if kind == "string":
        return pa.array([str(v) for v in values])
    if kind == "bool":
        return pa.array([bool(v) for v in values])
    if kind == "float64":
        return pa.array([float(v) for v in values])
    return pa.array([int(v) % 100 for v in values], type=getattr(pa, kind)())


def _write_broken(path: Path, mutation: tuple[str, Any]) -> None:
    """The valid trace at ``path``, broken by ``mutation``."""
    table, meta = _valid_table()
    how, arg = mutation
    raw: bytes | None = None
    if how == "drop key":
        meta.pop(arg)
    elif how == "set key":
        meta[arg[0]] = arg[1]
    elif how == "set table key":
        meta["tables"][arg[0]][arg[1]] = arg[2]
    elif how == "metadata bytes":
        raw = arg
    elif how == "drop column":
        table = table.drop_columns([arg])
    elif how == "retype column":
        index = table.schema.get_field_index(arg[0])
        table = table.set_column(index, arg[0], _retyped(table.column(arg[0]), arg[1]))
    elif how == "null":
        values = table.column(arg[0]).to_pylist()
        values[arg[1]] = None
        index = table.schema.get_field_index(arg[0])
        table = table.set_column(index, pa.field(arg[0], table.schema.field(index).type),
                                 pa.array(values, type=table.schema.field(index).type))
    elif how == "set value":
        values = table.column(arg[0]).to_pylist()
        values[arg[1]] = arg[2]
        index = table.schema.get_field_index(arg[0])
        table = table.set_column(index, arg[0], pa.array(values, type=pa.int64()))
    elif how == "shuffle":
        table = table.take(list(arg))
    elif how == "empty":
        table = table.slice(0, 0)
    metadata = None if how == "no metadata" else {
        b"embsim": raw if raw is not None else json.dumps(meta).encode()}
    pq.write_table(table.replace_schema_metadata(metadata), path)
    if how in ("truncate", "garbage"):
        data = path.read_bytes()
        cut = int(len(data) * (arg if how == "truncate" else arg[0]))
        path.write_bytes(data[:cut] if how == "truncate"
                         else data[:cut] + arg[1] + data[cut + len(arg[1]):])


def _files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _meets_contract(args: list[str], folder: Path, names: tuple[str, ...],
                    output: Path | None = None) -> None:
    """Exit 0, or 2 with one bounded line naming one of ``names``; nothing written but, on
    success, ``output``."""
    before = _files(folder)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")       # a warning would print more lines
        proc = embsim_here(*args)
    assert not warned, [str(w.message)[:200] for w in warned]
    if proc.returncode == 0 and output is not None:
        output.unlink()
    assert proc.returncode in (0, 2), (args, proc.stderr)
    if proc.returncode == 2:
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("embsim: error: "), proc.stderr
        assert len(lines[0]) <= MAX_MESSAGE + 20
        assert any(name in lines[0] for name in names), lines[0]
    assert _files(folder) == before, args


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutation())
def test_any_broken_parquet_trace_meets_the_contract(tmp_path, mutation):
    trace = tmp_path / "t.parquet"
    _write_broken(trace, mutation)
    exp = write_yaml(tmp_path / "exp.yaml",
                     experiment(workload__generator=None, workload__trace="t.parquet"))
    _meets_contract(["trace", "stats", str(trace)], tmp_path, ("t.parquet",))
    _meets_contract(["trace", "convert", str(trace), str(tmp_path / "c.parquet")], tmp_path,
                    ("t.parquet",), tmp_path / "c.parquet")
    _meets_contract(["run", str(exp), "--dry-run", "--out", str(tmp_path / "out")], tmp_path,
                    ("t.parquet", "exp.yaml"))


CSV_VALID = ("batch,table,bag,row,ts_ns,weight\n"
             + "".join(f"{b},{t},{s},{r},{i},0.5\n"
                       for i, (b, t, s, r) in enumerate(
                           [(b, t, s, (7 * b + 3 * t + s) % 100)
                            for b in range(2) for t in range(2) for s in range(2)])))
CSV_ATOMS = st.sampled_from(["", ",", "\n", "-1", "1e30", "99999999999999999999999", "x",
                             "\x00", "nan", "batch", "row", "0", "1", " ", '"'])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(CSV_VALID)), length=st.integers(0, 20),
       insert=st.lists(CSV_ATOMS, max_size=6).map("".join),
       options=st.sampled_from([["--batch-size", "2"], ["--batch-size", "0"], [],
                                ["--batch-size", "2", "--rows", "3"],
                                ["--batch-size", "2", "--rows", "100,x"]]))
def test_any_broken_csv_trace_meets_the_contract(tmp_path, cut, length, insert, options):
    trace = tmp_path / "t.csv"
    trace.write_text(CSV_VALID[:cut] + insert + CSV_VALID[cut + length:])
    names = ("t.csv", "--batch-size", "--rows")       # the file, or the option that is bad
    _meets_contract(["trace", "stats", str(trace), *options], tmp_path, names)
    _meets_contract(["trace", "convert", str(trace), str(tmp_path / "c.parquet"), *options],
                    tmp_path, names, tmp_path / "c.parquet")


def test_empty_batches_are_not_buffered_by_the_writer(tmp_path):
    """Metadata may promise many trailing empty batches (``num_batches``); converting such
    a trace writes them as no rows, without holding anything per batch."""
    meta = TraceMeta([TableSpec(10, 4)], batch_size=1)
    empty = Batch(0, np.zeros(0, dtype=np.int64), np.zeros(2, dtype=np.int64), 1, 1)
    one = Batch(0, np.array([3], dtype=np.int64), np.array([0, 1], dtype=np.int64), 1, 1)
    with TraceWriter(tmp_path / "t.parquet", meta) as writer:
        writer.write(one)
        for _ in range(100_000):
            writer.write(empty)
        writer.write(one)
        assert writer.num_batches == 100_002 and len(writer._buffer) == 2
    batches = list(open_trace(tmp_path / "t.parquet"))
    assert len(batches) == 100_002
    assert batches[-1].indices.tolist() == [3] and batches[1].num_lookups == 0
