"""``embsim compare``: configurations, ratios against a baseline, plots, and bad flags."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import embsim, experiment, write_yaml

from embsim.errors import InputError
from simulator.cli import main
from simulator.runs.compare import compare

SIZES = ["16 KiB", "64 KiB"]


@pytest.fixture
def results():
    """A results table: 2 sizes x 2 policies x 2 repeats, and one failed point."""
    rows = []
    for size_index, size in enumerate(SIZES):
        for policy, speed in (("lru", 100.0), ("lfu", 150.0)):
            for repeat in (0, 1):
                rows.append({"point": len(rows), "system.cache.size": size,
                             "system.cache.policy": policy, "repeat": repeat,
                             "config_hash": f"h{len(rows)}", "status": "ok", "error": None,
                             "throughput_qps": speed * (size_index + 1) + repeat,
                             "latency_p99_us": 10.0 / (size_index + 1),
                             "wall_s": 0.1})
    rows[-1].update(status="failed", error="boom", throughput_qps=float("nan"))
    return pd.DataFrame(rows)


def test_configurations_average_repeats_and_leave_out_failures(results):
    comparison = compare(results)
    table = comparison.table
    assert comparison.columns == ["system.cache.size", "system.cache.policy"]
    assert list(table["points"]) == [2, 2, 2, 1]
    assert list(table["throughput_qps"]) == [100.5, 150.5, 200.5, 300.0]
    assert comparison.failed_left_out == 1
    assert list(table["throughput_qps_vs_baseline"]) == [1.0, 150.5 / 100.5, 200.5 / 100.5,
                                                         300.0 / 100.5]
    assert comparison.baseline.startswith("the first configuration")


def test_one_baseline_configuration(results):
    comparison = compare(results, metrics=["latency_p99_us"],
                         baseline=["system.cache.size=64 KiB", "system.cache.policy=lru"])
    assert list(comparison.table["latency_p99_us_vs_baseline"]) == [2.0, 2.0, 1.0, 1.0]


def test_baseline_at_each_x(results):
    comparison = compare(results, x="system.cache.size", by="system.cache.policy",
                         baseline=["system.cache.policy=lru"])
    table = comparison.table.set_index(["system.cache.policy", "system.cache.size"])
    ratio = table["throughput_qps_vs_baseline"]
    assert ratio[("lfu", "16 KiB")] == 150.5 / 100.5
    assert ratio[("lfu", "64 KiB")] == 300.0 / 200.5
    assert ratio[("lru", "64 KiB")] == 1.0
    assert comparison.baseline == "system.cache.policy=lru at the same system.cache.size"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"baseline": ["system.cache.policy=lru"]},
     "matches 2 configurations \\(they differ in system.cache.size\\)"),
    ({"baseline": ["system.cache.policy=mru"]},
     "no configuration has system.cache.policy=mru; system.cache.policy takes: lru, lfu"),
    ({"baseline": ["throughput_qps=1"]}, "'throughput_qps' is not a configuration column"),
    ({"baseline": ["lru"]}, "expected COL=VALUE"),
])
def test_ambiguous_or_absent_baseline(results, kwargs, message):
    with pytest.raises(InputError, match=message) as err:
        compare(results, **kwargs)
    assert err.value.field == "--baseline"


@pytest.mark.parametrize(("kwargs", "field"), [({"x": "size"}, "--x"), ({"by": "nope"}, "--by"),
                                               ({"metrics": ["qps"]}, "--y")])
def test_unknown_column_lists_the_columns(results, kwargs, field):
    with pytest.raises(InputError, match="unknown column .*expected one of: point, "
                                         "system.cache.size") as err:
        compare(results, **kwargs)
    assert err.value.field == field


def test_compare_command_table_json_and_plot(tmp_path, results, capsys):
    results.to_parquet(tmp_path / "results.parquet")
    plot = tmp_path / "plots" / "qps.png"
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(tmp_path), "--x", "system.cache.size", "--by",
              "system.cache.policy", "--y", "throughput_qps", "--baseline",
              "system.cache.policy=lru", "--plot", str(plot), "--json"])
    assert exit_.value.code == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["columns"] == ["system.cache.policy", "system.cache.size", "points",
                                 "throughput_qps", "throughput_qps_vs_baseline"]
    assert len(answer["rows"]) == 4 and answer["failed_left_out"] == 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with pytest.raises(SystemExit):
        main(["compare", str(tmp_path / "results.parquet")])
    text = capsys.readouterr().out
    assert text.startswith("baseline: the first configuration")
    assert "throughput_qps_vs_baseline" in text and "left out 1 failed points" in text


@pytest.mark.parametrize(("args", "expect"), [
    (["--y", "status"], "--y: column 'status' is not numeric"),
    (["--plot", "out.png"], "--x: --plot needs --x"),
    (["--x", "system.cache.size", "--plot", "out.bmpx"], "--plot: unknown image type 'bmpx'"),
])
def test_bad_compare_flags_exit_2_with_one_line(tmp_path, results, capsys, args, expect):
    results.to_parquet(tmp_path / "results.parquet")
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(tmp_path / "results.parquet"), *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"embsim: error: {expect}") and len(err.splitlines()) == 1
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.bmpx").exists()


def test_compare_a_real_sweep(tmp_path):
    data = experiment()
    data["sweep"] = {"grid": {"system.cache.size": ["16 KiB", "64 KiB"],
                              "system.cache.policy": ["lru", "lfu"]}}
    path = write_yaml(tmp_path / "exp.yaml", data)
    assert embsim("run", str(path), "--out", str(tmp_path / "out"), "--quiet").returncode == 0
    proc = embsim("compare", str(tmp_path / "out" / "results.parquet"), "--x",
                  "system.cache.size", "--by", "system.cache.policy", "--y", "cache_hit_rate",
                  "--baseline", "system.cache.policy=lru", "--plot", str(tmp_path / "hit.png"))
    assert proc.returncode == 0, proc.stderr
    assert "cache_hit_rate_vs_baseline" in proc.stdout
    assert (tmp_path / "hit.png").stat().st_size > 1000


def test_missing_results_file(tmp_path):
    proc = embsim("compare", str(tmp_path / "nope.parquet"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"embsim: error: {tmp_path / 'nope.parquet'}: file not found"
