"""Running sweeps: shards and resume, kills midway, failures, dry runs and bad options."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import ROOT, embsim, experiment, write_yaml

from embsim.errors import InputError
from simulator.cli import main
from simulator.runs.progress import SweepProgress
from simulator.runs.runner import RunOptions, run_experiment
from simulator.runs.shards import ShardStore

SERIAL = RunOptions(workers=1, progress=False)


# Found only while the point runs: Zipf(3) draws cannot give 40 distinct rows per bag.
UNGENERATABLE = {"workload.generator.alpha": 3.0, "workload.generator.pooling": 40}


def sweep_file(tmp_path, sweep, name="exp.yaml", **overrides):
    data = experiment(**overrides)
    data["sweep"] = sweep
    return write_yaml(tmp_path / name, data)


def leftovers(out):
    return sorted(p.name for p in out.rglob("*.tmp"))


def test_rerun_skips_finished_points_and_an_edited_sweep_runs_only_new_ones(tmp_path):
    out = tmp_path / "out"
    first = run_experiment(sweep_file(tmp_path, {"grid": {"system.cache.ways": [4, 8]}}),
                           out, {}, SERIAL)
    assert (first.ran, first.reused) == (2, 0)
    store = ShardStore(out)
    stamps = {h: store.row_path(h).stat().st_mtime_ns for h in first.frame["config_hash"]}

    again = run_experiment(tmp_path / "exp.yaml", out, {}, SERIAL)
    assert (again.ran, again.reused) == (0, 2)
    pd.testing.assert_frame_equal(again.frame, first.frame)

    edited = sweep_file(tmp_path, {"grid": {"system.cache.ways": [2, 4, 8]}})
    grown = run_experiment(edited, out, {}, SERIAL)
    assert (grown.ran, grown.reused) == (1, 2)
    assert {h: store.row_path(h).stat().st_mtime_ns for h in stamps} == stamps
    frame = pd.read_parquet(out / "results.parquet")
    assert list(frame["point"]) == [0, 1, 2]
    assert list(frame["system.cache.ways"]) == [2, 4, 8]
    assert (frame["status"] == "ok").all() and frame["error"].isna().all()

    forced = run_experiment(edited, out, {}, RunOptions(workers=1, force=True, progress=False))
    assert (forced.ran, forced.reused) == (3, 0)
    assert leftovers(out) == []


def test_failed_point_is_recorded_the_sweep_goes_on_and_a_rerun_retries_it(tmp_path):
    path = sweep_file(tmp_path, {"cases": {"good": {}, "bad": UNGENERATABLE}})
    out = tmp_path / "out"
    report = run_experiment(path, out, {}, SERIAL)
    frame = report.frame.set_index("case")
    assert frame.loc["good", "status"] == "ok" and frame.loc["good", "queries"] == 6
    assert frame.loc["bad", "status"] == "failed"
    assert "alpha too large" in frame.loc["bad", "error"]
    assert pd.isna(frame.loc["bad", "queries"])
    assert list(report.failed["case"]) == ["bad"]
    bad_hash = frame.loc["bad", "config_hash"]
    assert "Traceback" in ShardStore(out).traceback_path(bad_hash).read_text()

    rerun = run_experiment(path, out, {}, SERIAL)
    assert (rerun.ran, rerun.reused) == (1, 1)           # only failed points run again


def test_points_with_the_same_config_run_once(tmp_path):
    path = sweep_file(tmp_path, {"cases": {"base": {}, "same": {"system.cache.ways": 8}}})
    report = run_experiment(path, tmp_path / "out", {}, SERIAL)
    assert report.ran == 1
    assert list(report.frame["case"]) == ["base", "same"]
    assert report.frame["config_hash"].nunique() == 1


def test_per_query_latencies_survive_resume(tmp_path):
    out = tmp_path / "out"
    with_queries = RunOptions(workers=1, per_query=True, progress=False)
    run_experiment(sweep_file(tmp_path, {"grid": {"system.cache.ways": [4]}}), out, {}, SERIAL)
    # finished without latencies: asked for them now, the point runs again
    assert run_experiment(tmp_path / "exp.yaml", out, {}, with_queries).ran == 1
    report = run_experiment(sweep_file(tmp_path, {"grid": {"system.cache.ways": [4, 8]}}),
                            out, {}, with_queries)
    assert (report.ran, report.reused) == (1, 1)
    per_query = pd.read_parquet(out / "per_query.parquet")
    assert sorted(per_query.groupby("point").size().items()) == [(0, 6), (1, 6)]


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    path = sweep_file(tmp_path, {"grid": {"system.cache.ways": [4]}})
    with ShardStore(tmp_path / "out").locked(), \
            pytest.raises(InputError, match="another embsim run") as err:
        run_experiment(path, tmp_path / "out", {}, SERIAL)
    assert err.value.field == "--out"


def slow_sweep(tmp_path):
    """8 points: a short one first, then seven of about 0.7 s each, so that a signal sent when
    the first point has finished finds seconds of work left, even on a busy 2-core machine."""
    data = experiment(workload__generator__batches=400, workload__generator__batch_size=128,
                      workload__generator__pooling=20)
    cases = {f"ways{ways}_{policy}": {"system.cache.ways": ways, "system.cache.policy": policy}
             for policy in ("lru", "lfu") for ways in (2, 4, 8, 16)}
    cases["ways2_lru"]["workload.generator.batches"] = 10
    data["sweep"] = {"cases": cases}
    return write_yaml(tmp_path / "slow.yaml", data)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM],
                         ids=["SIGKILL", "SIGINT", "SIGTERM"])
def test_killed_midway_loses_no_finished_point_and_resumes(tmp_path, signum):
    path, out = slow_sweep(tmp_path), tmp_path / "out"
    # Ctrl-C as at a terminal: a suite started in the background (nohup, a CI runner) has
    # SIGINT ignored, which its children inherit, and Python then installs no handler for it
    proc = subprocess.Popen([sys.executable, "-c", "from simulator.cli import main; main()",
                             "run", str(path), "--out", str(out), "--workers", "2", "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    shards = out / "shards"
    while proc.poll() is None and not list(shards.glob("*[0-9a-f].parquet")):
        time.sleep(0.01)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 130), stderr
    assert "Traceback" not in stderr
    finished = sorted(p.name for p in shards.glob("*[0-9a-f].parquet"))
    assert 1 <= len(finished) < 8, "the run should have been stopped midway"
    assert leftovers(out) == [] or signum == signal.SIGKILL
    if signum != signal.SIGKILL:     # an interrupted run merges what it finished
        assert len(pd.read_parquet(out / "results.parquet")) == len(finished)

    report = run_experiment(path, out, {}, SERIAL)
    assert report.reused == len(finished) and report.ran == 8 - len(finished)
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 8 and frame["config_hash"].is_unique and (frame["status"] == "ok").all()
    assert leftovers(out) == []


def test_dry_run_lists_points_as_json_and_writes_nothing(tmp_path):
    path = sweep_file(tmp_path, {"grid": {"system.cache.ways": [4, 8]}, "repeats": 2})
    out = tmp_path / "out"
    run_experiment(sweep_file(tmp_path, {"grid": {"system.cache.ways": [4]}}, "one.yaml"), out,
                   {}, SERIAL)
    stamp = (out / "results.parquet").stat().st_mtime_ns
    proc = embsim("run", str(path), "--out", str(out), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(p["point"], p["repeat"]) for p in lines] == [(0, 0), (1, 1), (2, 0), (3, 1)]
    assert lines[0]["overrides"] == {"system.cache.ways": 4, "run.seed": 0,
                                     "workload.generator.seed": 3}
    assert [p["finished"] for p in lines] == [True, False, False, False]
    assert len({p["config_hash"] for p in lines}) == 4
    assert (out / "results.parquet").stat().st_mtime_ns == stamp
    assert embsim("run", str(path), "--out", str(tmp_path / "new"), "--dry-run").returncode == 0
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(("options", "expect"), [
    (["--executor", "dask"], "--executor: unknown executor 'dask'; expected one of: local, ray"),
    (["--workers", "0"], "--workers: expected at least 1 worker, got 0"),
    (["--address", "10.0.0.1:6379"], "--address: only the ray executor joins a cluster; "
                                      "add --executor ray"),
    (["--executor", "ray", "--address", "127.0.0.1:1"],
     "--address: cannot reach a Ray cluster at '127.0.0.1:1'"),
])
def test_bad_run_options_exit_2_with_one_line_and_no_output(tmp_path, capsys, options, expect):
    path = sweep_file(tmp_path, {"grid": {"system.cache.ways": [4]}})
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(path), "--out", str(tmp_path / "out"), *options])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"embsim: error: {expect}") and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_progress_bar_counts_points_and_failures():
    stream = io.StringIO()
    with SweepProgress(total=5, done=2, label="exp", show=True, stream=stream) as progress:
        progress.advance(1, ok=True)
        progress.advance(1, ok=False)
        text = str(progress.bar)
    assert "4.0/5" in text and "failed=1" in text and "point" in text


def test_progress_bar_counts_running_points_by_their_share_once():
    stream = io.StringIO()
    with SweepProgress(total=4, done=0, label="exp", show=True, stream=stream) as progress:
        progress.partly("a", points=2, share=0.25)       # a config standing for two points
        progress.partly("a", points=2, share=0.5)
        progress.partly("b", points=1, share=0.5)
        assert progress.bar.n == pytest.approx(1.5)
        progress.advance(2, ok=True, config_hash="a")     # its shares are not counted twice
        assert progress.bar.n == pytest.approx(2.5)
        assert "2.5/4" in str(progress.bar)


def test_results_folder_is_not_created_for_bad_input(tmp_path):
    path = sweep_file(tmp_path, {"grid": {"system.cache.ways": [4, "lots"]}})
    with pytest.raises(InputError, match="sweep point"):
        run_experiment(path, tmp_path / "out", {}, SERIAL)
    assert not (tmp_path / "out").exists()
    assert os.listdir(tmp_path) == ["exp.yaml"]


def test_a_run_leaves_no_lock_file(tmp_path):
    path = sweep_file(tmp_path, {"grid": {"system.cache.ways": [4]}})
    run_experiment(path, tmp_path / "out", {}, SERIAL)
    assert not list((tmp_path / "out").glob(".lock*"))
    assert (tmp_path / "out" / "results.parquet").exists()
