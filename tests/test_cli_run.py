"""``embsim run`` end to end, and every bad-input path: exit 2, one clear line, no output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import embsim, experiment, write_yaml

from traces.batch import Batch
from traces.parquet_io import write_trace
from traces.schema import TableSpec, TraceMeta


def small_trace(path, rows_in_file: int = 10, declared_rows: int = 10):
    meta = TraceMeta([TableSpec(declared_rows, 8), TableSpec(declared_rows, 8)], batch_size=2)
    batch = Batch(0, np.array([0, rows_in_file - 1, 3, 4, 5, 6], dtype=np.int64),
                  np.array([0, 1, 2, 4, 6], dtype=np.int64), 2, 2)
    write_trace(path, meta, [batch, Batch(1, batch.indices, batch.offsets, 2, 2)])
    return path


def test_run_writes_results_config_and_per_query(tmp_path):
    data = experiment(system__cache__ways="full")
    data["sweep"] = {"grid": {"system.cache.size": ["16 KiB", "64 KiB"],
                              "system.cache.policy": ["lru", "lfu"]}}
    path = write_yaml(tmp_path / "exp.yaml", data)
    out = tmp_path / "out"
    proc = embsim("run", str(path), "--out", str(out), "--per-query",
                  "--set", "run.arrivals.concurrency=3")
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 4
    for column in ["point", "system.cache.size", "system.cache.policy", "config_hash", "queries",
                   "lookups", "sim_time_s", "throughput_qps", "lookups_per_s",
                   "latency_mean_us", "latency_p50_us", "latency_p95_us", "latency_p99_us",
                   "cache_hit_rate", "bytes_hbm", "bytes_dram", "bytes_pcie", "bw_gbps_hbm",
                   "bw_gbps_dram", "bw_gbps_pcie", "energy_uj_per_query", "wall_s"]:
        assert column in frame.columns, column
    assert frame["config_hash"].nunique() == 4
    # a bigger fully associative LRU cache never hits less (LRU is a stack algorithm)
    lru = frame[frame["system.cache.policy"] == "lru"].set_index("system.cache.size")
    assert lru.loc["64 KiB", "cache_hit_rate"] >= lru.loc["16 KiB", "cache_hit_rate"]
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["experiment"]["run"]["arrivals"]["concurrency"] == 3
    assert len(resolved["points"]) == 4
    assert resolved["devices"]["pcie"]["params"]["bandwidth"] == 64e9
    per_query = pd.read_parquet(out / "per_query.parquet")
    assert len(per_query) == 4 * 6
    assert set(per_query["point"]) == {0, 1, 2, 3}
    assert "wrote" in proc.stdout


def test_run_from_a_trace_file(tmp_path):
    small_trace(tmp_path / "t.parquet")
    data = experiment(workload={"trace": "t.parquet"}, system__cache=None,
                      system__tables={"tier": "hbm"})
    path = write_yaml(tmp_path / "exp.yaml", data)
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert frame.loc[0, "queries"] == 2 and frame.loc[0, "lookups"] == 12


def bad(tmp_path, data, *extra, expect: list[str]):
    path = write_yaml(tmp_path / "bad.yaml", data) if data is not None else tmp_path / "bad.yaml"
    out = tmp_path / "out"
    proc = embsim("run", str(path), "--out", str(out), *extra)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in expect:
        assert fragment in lines[0], (fragment, lines[0])
    assert not out.exists()
    return lines[0]


def test_unknown_key(tmp_path):
    data = experiment(system__cache__colour="red")
    bad(tmp_path, data, expect=["bad.yaml", "system.cache.colour", "unknown key"])


def test_wrong_type(tmp_path):
    data = experiment(run__arrivals={"mode": "closed", "concurrency": "many"})
    bad(tmp_path, data, expect=["bad.yaml", "run.arrivals.concurrency", "'many'"])


@pytest.mark.parametrize(("field", "value"), [("system.cache.size", "-5 MiB"),
                                              ("system.memory.hbm.capacity", 0),
                                              ("workload.generator.batches", 0)])
def test_negative_or_zero_sizes(tmp_path, field, value):
    data = experiment()
    bad(tmp_path, data, "--set", f"{field}={value}", expect=["bad.yaml", field, "greater than 0"])


def test_unparseable_unit(tmp_path):
    bad(tmp_path, experiment(system__cache__size="lots"),
        expect=["system.cache.size", "expected a size such as '64 GiB'"])


def test_unknown_preset_lists_choices(tmp_path):
    data = experiment(system__memory__hbm={"preset": "hbm9-imaginary"})
    line = bad(tmp_path, data, expect=["bad.yaml", "system.memory.hbm.preset",
                                       "unknown memory preset 'hbm9-imaginary'"])
    assert "expected one of:" in line


def test_unknown_policy_lists_choices(tmp_path):
    bad(tmp_path, experiment(system__cache__policy="mru"),
        expect=["system.cache.policy", "expected one of: fifo, lfu, lru"])


def test_unknown_fidelity_lists_choices(tmp_path):
    bad(tmp_path, experiment(run__fidelity="ultra"),
        expect=["bad.yaml", "run.fidelity", "'ultra'", "'analytic', 'fast' or 'detailed'"])


def test_detailed_on_a_generic_tier_runs_its_fallback_and_says_so(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", experiment(run__fidelity="detailed"))
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    devices = yaml.safe_load((tmp_path / "out" / "config.resolved.yaml").read_text())["devices"]
    assert devices["hbm"]["kind"] == "memory"
    assert (devices["hbm"]["fidelity"], devices["hbm"]["fidelity_asked"]) == ("fast", "detailed")
    assert devices["pcie"]["kind"] == "link"


def test_unknown_tier_reference(tmp_path):
    bad(tmp_path, experiment(system__tables={"tier": "ssd", "link": "pcie"}),
        expect=["system.tables.tier", "unknown memory tier 'ssd'", "dram, hbm"])


def test_remote_tables_need_a_link(tmp_path):
    bad(tmp_path, experiment(system__tables={"tier": "dram"}),
        expect=["system.tables.link", "name the link"])


def test_tables_exceeding_capacity(tmp_path):
    bad(tmp_path, experiment(system__memory__dram__capacity="64 KiB"),
        expect=["system.tables.tier", "the tables need", "'dram' holds 64 KiB"])


def test_cache_exceeding_its_tier(tmp_path):
    bad(tmp_path, experiment(system__memory__hbm__capacity="1 MiB",
                             system__cache__size="2 MiB"),
        expect=["system.cache.size", "holds 1 MiB"])


def test_missing_trace_file(tmp_path):
    bad(tmp_path, experiment(workload={"trace": "nope.parquet"}),
        expect=["nope.parquet"])


def test_corrupt_trace_file(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"this is not parquet at all")
    bad(tmp_path, experiment(workload={"trace": "broken.parquet"}),
        expect=["broken.parquet"])


def test_row_outside_its_table(tmp_path):
    # trace files are read through before the sweep starts: bad input, nothing written
    small_trace(tmp_path / "oob.parquet", rows_in_file=11, declared_rows=10)
    line = bad(tmp_path, experiment(workload={"trace": "oob.parquet"}),
               expect=["oob.parquet", "10"])
    assert "row" in line


def test_bad_set_syntax(tmp_path):
    bad(tmp_path, experiment(), "--set", "run.seed", expect=["--set", "expected KEY=VALUE"])


def test_missing_experiment_file(tmp_path):
    bad(tmp_path, None, expect=["bad.yaml", "file not found"])


def test_invalid_yaml(tmp_path):
    (tmp_path / "bad.yaml").write_text("system: [unclosed\n")
    proc = embsim("run", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sweep_value_of_wrong_type_names_the_point(tmp_path):
    data = experiment()
    data["sweep"] = {"grid": {"system.cache.ways": [4, "lots"]}}
    bad(tmp_path, data, expect=["sweep point", "system.cache.ways"])


@pytest.mark.parametrize(("content", "expect"), [
    (b"\xff\xfe\x00garbage", "not a UTF-8 text file"),
    (b"a: " + b"[" * 5000 + b"]" * 5000, "nested too deep"),
])
def test_unreadable_experiment_files(tmp_path, content, expect):
    (tmp_path / "bad.yaml").write_bytes(content)
    bad(tmp_path, None, expect=["bad.yaml", expect])


@pytest.mark.parametrize(("sets", "expect"), [
    (["run..seed=1"], "run..seed: expected dotted names, with no empty part"),
    (["run.functional=true", "run.functional=1"], "run.functional is set twice"),
    (["system.cache.size=["], "system.cache.size: value '[' is not a YAML value"),
])
def test_bad_sets_exit_2_naming_the_key(tmp_path, sets, expect):
    extra = [arg for value in sets for arg in ("--set", value)]
    bad(tmp_path, experiment(), *extra, expect=["--set", expect])
