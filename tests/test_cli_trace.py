"""``embsim trace gen | convert | stats``, including every bad-input path (exit 2, no trace)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import embsim

from simulator.cli import main
from traces.parquet_io import open_trace

SMALL_GEN = ("--rows", "500", "--batches", "3", "--batch-size", "4")


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def assert_input_error(capsys, *args: str, expect: tuple[str, ...]) -> str:
    code, _, err = run(capsys, *args)
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("embsim: error:")
    for text in expect:
        assert text in err, (text, err)
    return err


@pytest.fixture
def rm3_trace(tmp_path, capsys):
    path = tmp_path / "rm3.parquet"
    code, out, _ = run(capsys, "trace", "gen", "--model", "rm3", *SMALL_GEN, "-o", str(path))
    assert code == 0 and "wrote 2400 lookups in 3 batches" in out
    return path


def test_gen_writes_a_deterministic_trace_of_the_preset(tmp_path, capsys, rm3_trace):
    reader = open_trace(rm3_trace)
    assert reader.meta.num_tables == 10 and reader.meta.batch_size == 4
    assert {t.rows for t in reader.meta.tables} == {500}
    assert reader.meta.provenance["model"] == "rm3"
    assert reader.meta.provenance["alpha"] == 1.05 and reader.num_lookups == 3 * 4 * 10 * 20
    again = tmp_path / "again.parquet"
    run(capsys, "trace", "gen", "--model", "rm3", *SMALL_GEN, "-o", str(again))
    assert pq.read_table(again).equals(pq.read_table(rm3_trace))


def test_gen_with_variable_pooling_and_reuse(tmp_path, capsys):
    path = tmp_path / "t.parquet"
    code, _, err = run(capsys, "trace", "gen", "--model", "rm1", *SMALL_GEN, "--pooling", "6",
                       "--pooling-dist", "lognormal", "--pooling-sigma", "0.4", "--reuse",
                       "0.3", "--alpha", "0.9", "--seed", "3", "-o", str(path))
    assert code == 0, err
    provenance = open_trace(path).meta.provenance
    assert provenance["pooling_dist"] == "lognormal" and provenance["reuse"] == 0.3


def test_gen_with_the_inversion_sampler(tmp_path, capsys, rm3_trace):
    path = tmp_path / "t.parquet"
    code, _, err = run(capsys, "trace", "gen", "--model", "rm3", *SMALL_GEN, "--sampler",
                       "inversion", "-o", str(path))
    assert code == 0, err
    reader = open_trace(path)
    assert reader.meta.provenance["sampler"] == "inversion"
    assert "sampler" not in open_trace(rm3_trace).meta.provenance
    assert reader.num_lookups == 3 * 4 * 10 * 20
    assert not pq.read_table(path).equals(pq.read_table(rm3_trace))


def test_stats_json_is_one_object_with_the_documented_keys(capsys, rm3_trace):
    code, out, _ = run(capsys, "trace", "stats", str(rm3_trace), "--json", "--mrc")
    assert code == 0
    stats = json.loads(out)
    assert stats["lookups"] == 2400 and stats["batches"] == 3
    assert set(stats["tables"][0]) >= {"table", "rows", "dim", "lookups", "unique_rows",
                                       "zipf_alpha"}
    assert len(stats["tables"]) == 10 and stats["pooling"]["mean"] == 20
    curve = stats["mrc"]
    assert len(curve["capacity_rows"]) == len(curve["hit_rate"]) > 5
    assert curve["capacity_rows"][-1] == stats["unique_rows"]


def test_stats_text(capsys, rm3_trace):
    code, out, _ = run(capsys, "trace", "stats", str(rm3_trace), "--mrc")
    assert code == 0
    assert "lookups: 2400 in 3 batches" in out and "unique rows:" in out
    assert "zipf_alpha" in out and "capacity_rows" in out and "p99 20" in out


def test_convert_dlrm_datasets_and_csv(tmp_path, capsys):
    lengths = torch.tensor([[1, 0, 2, 1], [0, 3, 1, 1]])
    indices = torch.tensor([4, 1, 2, 0, 7, 7, 3, 5, 6])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.flatten().cumsum(0)])
    with gzip.open(tmp_path / "d.pt.gz", "wb") as file:
        torch.save((indices, offsets, lengths), file)
    out = tmp_path / "d.parquet"
    code, text, err = run(capsys, "trace", "convert", str(tmp_path / "d.pt.gz"), str(out),
                          "--batch-size", "2", "--dim", "32")
    assert code == 0, err
    assert "wrote 9 lookups in 2 batches" in text
    reader = open_trace(out)
    assert [(t.rows, t.dim) for t in reader.meta.tables] == [(5, 32), (8, 32)]
    first = next(iter(reader))
    np.testing.assert_array_equal(first.indices, [4, 7, 7, 3])  # samples 0-1 of both tables
    np.testing.assert_array_equal(first.offsets, [0, 1, 1, 1, 4])

    (tmp_path / "t.csv").write_text("batch,table,bag,row\n0,0,0,4\n0,1,1,2\n1,0,0,3\n")
    code, _, err = run(capsys, "trace", "convert", str(tmp_path / "t.csv"),
                       str(tmp_path / "c.parquet"), "--batch-size", "2", "--rows", "10,20")
    assert code == 0, err
    reader = open_trace(tmp_path / "c.parquet")
    assert [t.rows for t in reader.meta.tables] == [10, 20] and reader.meta.num_batches == 2
    np.testing.assert_array_equal(next(iter(reader)).offsets, [0, 1, 1, 1, 2])
    code, out, err = run(capsys, "trace", "stats", str(tmp_path / "t.csv"), "--batch-size", "2",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["lookups"] == 3


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    proc = embsim("trace", "gen", "--model", "rm9", "-o", str(tmp_path / "t.parquet"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "rm1, rm2, rm3" in proc.stderr
    proc = embsim("trace", "stats", str(tmp_path / "absent.parquet"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "absent.parquet" in proc.stderr


def write_bad_trace(path, **change: pa.Array):
    columns = {"batch": pa.array([0, 0], pa.int32()), "table": pa.array([0, 0], pa.int32()),
               "bag": pa.array([0, 1], pa.int32()), "row": pa.array([1, 2], pa.int64())}
    columns.update(change)
    meta = {"version": 1, "tables": [{"rows": 10, "dim": 4, "dtype": "float32"}],
            "batch_size": 2, "num_batches": 1, "provenance": {}}
    table = pa.table({k: v for k, v in columns.items() if v is not None})
    pq.write_table(table.replace_schema_metadata({"embsim": json.dumps(meta)}), path)
    return str(path)


def test_stats_bad_files(tmp_path, capsys):
    assert_input_error(capsys, "trace", "stats", str(tmp_path / "none.parquet"),
                       expect=("none.parquet", "no such trace file"))
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 but not really")
    assert_input_error(capsys, "trace", "stats", str(tmp_path / "junk.parquet"),
                       expect=("junk.parquet", "not a Parquet file"))
    missing = write_bad_trace(tmp_path / "missing.parquet", bag=None)
    assert_input_error(capsys, "trace", "stats", missing,
                       expect=("missing.parquet", "missing column 'bag'"))
    oob = write_bad_trace(tmp_path / "oob.parquet", row=pa.array([1, 10], pa.int64()))
    assert_input_error(capsys, "trace", "stats", oob,
                       expect=("oob.parquet", "batch 0", "table 0", "row 10", "10 rows"))
    (tmp_path / "notes.txt").write_text("hello")
    assert_input_error(capsys, "trace", "stats", str(tmp_path / "notes.txt"),
                       expect=("notes.txt", "unrecognised trace format"))


def test_gen_bad_options(tmp_path, capsys):
    out = str(tmp_path / "t.parquet")
    assert_input_error(capsys, "trace", "gen", "--model", "rm9", "-o", out,
                       expect=("unknown model preset 'rm9'", "rm1, rm2, rm3"))
    assert_input_error(capsys, "trace", "gen", "--model", "rm1", "--pooling-dist", "poisson",
                       "-o", out, expect=("pooling_dist", "fixed, lognormal, normal"))
    assert_input_error(capsys, "trace", "gen", "--model", "rm1", "--reuse", "2", "-o", out,
                       expect=("reuse", "[0, 1]"))
    assert_input_error(capsys, "trace", "gen", "--model", "rm1", "--sampler", "ziggurat",
                       "-o", out, expect=("--sampler", "ziggurat", "numpy", "inversion"))
    assert_input_error(capsys, "trace", "gen", "--model", "rm3", *SMALL_GEN, "--alpha", "9",
                       "-o", out, expect=("alpha too large",))
    assert_input_error(capsys, "trace", "gen", "--model", "rm3", *SMALL_GEN,
                       "-o", str(tmp_path / "no" / "t.parquet"), expect=("does not exist",))
    assert not (tmp_path / "t.parquet").exists()
    assert list(tmp_path.iterdir()) == []  # no partial or temporary file left


def test_convert_bad_inputs(tmp_path, capsys, rm3_trace):
    out = str(tmp_path / "out.parquet")
    torch.save((torch.tensor([1, 2]), torch.tensor([0, 1, 5]), torch.tensor([[1, 1]])),
               tmp_path / "bad.pt")
    assert_input_error(capsys, "trace", "convert", str(tmp_path / "bad.pt"), out,
                       expect=("bad.pt", "offsets", "len(indices)"))
    assert_input_error(capsys, "trace", "convert", str(rm3_trace), out, "--rows", "5",
                       expect=("rows", "do not apply to format 'parquet'"))
    assert_input_error(capsys, "trace", "convert", str(rm3_trace), out, "--rows", "a,b",
                       expect=("--rows", "comma-separated"))
    assert_input_error(capsys, "trace", "convert", str(rm3_trace), out, "--format", "xml",
                       expect=("unknown trace format 'xml'", "csv, dlrm_datasets, parquet"))
    (tmp_path / "t.csv").write_text("batch,table,row\n0,0,1\n")
    assert_input_error(capsys, "trace", "convert", str(tmp_path / "t.csv"), out,
                       "--batch-size", "2", expect=("t.csv", "missing column 'bag'"))
    (tmp_path / "u.csv").write_text("batch,table,bag,row\n0,0,0,1\n")
    assert_input_error(capsys, "trace", "convert", str(tmp_path / "u.csv"), out,
                       expect=("u.csv", "--batch-size"))
    (tmp_path / "v.csv").write_text("batch,table,bag,row\n0,0,0,x\n")
    assert_input_error(capsys, "trace", "convert", str(tmp_path / "v.csv"), out,
                       "--batch-size", "1", expect=("v.csv", "cannot parse CSV"))
    assert not (tmp_path / "out.parquet").exists()


def test_long_trace_work_shows_progress_on_a_terminal(tmp_path):
    """``trace gen`` and ``trace stats`` draw a progress bar (batches, lookups, rate) on a
    terminal's stderr once the work takes over half a second; stdout is unchanged."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    from conftest import ROOT

    out = tmp_path / "t.parquet"
    for args in (["gen", "--model", "rm1", "--batches", "150", "-o", str(out)],
                 ["stats", str(out)]):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        proc = subprocess.run(
            [sys.executable, "-c", "from simulator.cli import main; main()", "trace", *args],
            stdout=subprocess.PIPE, stderr=slave, cwd=ROOT, timeout=300)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        assert proc.returncode == 0
        assert b"batch" in seen and b"M/s" in seen, seen[-300:]
        assert b"M/s" not in proc.stdout
