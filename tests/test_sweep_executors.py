"""Executors: the same metrics whatever runs the points, a real local Ray instance, and a
failing point (or a dying worker) that fails alone."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from conftest import experiment, write_yaml
from test_sweep_resume import UNGENERATABLE

from simulator.runs import progress
from simulator.runs.executors import Outcome, Task, execute
from simulator.runs.executors.local import WorkerPool
from simulator.runs.experiment import load_points
from simulator.runs.runner import RunOptions, run_experiment

WALL_CLOCK = ["wall_s"]


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module (starting Ray takes seconds)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def random_sweep(tmp_path):
    """Points whose metrics depend on their seeds: Poisson arrivals and generated lookups."""
    data = experiment(run__arrivals={"mode": "open", "qps": 20000})
    data["sweep"] = {"grid": {"system.cache.policy": ["lru", "lfu"],
                              "system.cache.ways": [4, "full"]},
                     "repeats": 2}
    return write_yaml(tmp_path / "random.yaml", data)


def metrics(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=WALL_CLOCK)


def test_metrics_do_not_depend_on_the_executor(tmp_path, ray_instance):
    path = random_sweep(tmp_path)
    frames = {}
    for name, options in {"serial": RunOptions(workers=1, progress=False),
                          "local_2": RunOptions(workers=2, progress=False),
                          "ray": RunOptions(executor="ray", workers=2, progress=False)}.items():
        report = run_experiment(path, tmp_path / name, {}, options)
        assert report.ran == 8
        frames[name] = metrics(pd.read_parquet(tmp_path / name / "results.parquet"))
    assert (frames["serial"]["status"] == "ok").all()
    assert frames["serial"]["latency_p99_us"].nunique() > 1     # the seeds matter
    pd.testing.assert_frame_equal(frames["local_2"], frames["serial"])
    pd.testing.assert_frame_equal(frames["ray"], frames["serial"])


def test_ray_runs_a_sweep_and_a_failing_point_fails_alone(tmp_path, ray_instance):
    data = experiment()
    data["sweep"] = {"cases": {"bad": UNGENERATABLE, "good": {}},
                     "grid": {"system.cache.ways": [4, 8]}}
    path = write_yaml(tmp_path / "exp.yaml", data)
    options = RunOptions(executor="ray", progress=False, per_query=True)
    report = run_experiment(path, tmp_path / "out", {}, options)
    status = report.frame.set_index(["case", "system.cache.ways"])["status"]
    assert status.to_dict() == {("bad", 4): "failed", ("bad", 8): "failed",
                                ("good", 4): "ok", ("good", 8): "ok"}
    assert report.failed["error"].str.contains("alpha too large").all()
    per_query = pd.read_parquet(tmp_path / "out" / "per_query.parquet")
    assert sorted(per_query["point"].unique()) == [2, 3]


def crash_on_second_point(task: Task, report) -> Outcome:
    """Runs the point, except that point 1 kills its worker process outright."""
    if task.point.index == 1:
        os._exit(3)
    return execute(task, report)


def test_a_worker_that_dies_fails_only_its_point(write_experiment):
    data = experiment()
    data["sweep"] = {"grid": {"system.cache.ways": [2, 4, 8, 16]}}
    path = write_experiment(data)
    _, points = load_points(path, {})
    tasks = [Task(p, str(path)) for p in points]
    with WorkerPool(2, crash_on_second_point) as pool:
        outcomes = {o.config_hash: o for o in pool.run(tasks)}
    status = [outcomes[p.config_hash].row["status"] for p in points]
    assert status == ["ok", "failed", "ok", "ok"]
    assert outcomes[points[1].config_hash].row["error"] == (
        "the worker process died (exit code 3) while simulating this point")


def halfway_then_run(task: Task, report) -> Outcome:
    """Says it is half done (as a running point's ticker would), then runs the point."""
    report(0.5)
    return execute(task, report)


def test_workers_send_progress_before_the_outcome(write_experiment):
    data = experiment()
    data["sweep"] = {"grid": {"system.cache.ways": [2, 4]}}
    path = write_experiment(data)
    _, points = load_points(path, {})
    heard: list[tuple[str, float]] = []
    with WorkerPool(2, halfway_then_run) as pool:
        outcomes = list(pool.run([Task(p, str(path)) for p in points],
                                 lambda h, share: heard.append((h, share))))
    assert sorted(o.config_hash for o in outcomes) == sorted(p.config_hash for p in points)
    assert all(o.ok for o in outcomes)
    assert sorted(heard) == sorted((p.config_hash, 0.5) for p in points)


def test_a_point_reports_its_share_of_queries_done(write_experiment, monkeypatch):
    monkeypatch.setattr(progress, "TICK_S", 0.0)         # report after every query
    path = write_experiment(experiment())
    _, points = load_points(path, {})
    shares: list[float] = []
    outcome = execute(Task(points[0], str(path)), shares.append)
    batches = points[0].config.workload.generator.batches
    assert outcome.ok and len(shares) == batches
    assert shares == [(i + 1) / batches for i in range(batches)]
