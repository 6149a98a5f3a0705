"""An experiment's ``plots:`` are drawn after its run; bad plot specs stop it before."""

from __future__ import annotations

from conftest import embsim, experiment, write_yaml


def sweep_with_plots(plots):
    data = experiment()
    data["sweep"] = {"grid": {"system.cache.size": ["16 KiB", "64 KiB"],
                              "system.cache.policy": ["lru", "lfu"]}}
    data["plots"] = plots
    return data


def test_run_writes_each_plot(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", sweep_with_plots([
        {"file": "hit.png", "x": "system.cache.size", "by": "system.cache.policy"},
        {"file": "lru.svg", "x": "system.cache.size", "metrics": ["throughput_qps"],
         "where": {"system.cache.policy": "lru"}}]))
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"), "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    png = (tmp_path / "out" / "hit.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert b"<svg" in (tmp_path / "out" / "lru.svg").read_bytes()
    assert "wrote " + str(tmp_path / "out" / "hit.png") in proc.stdout


def test_plot_of_an_unswept_path_is_bad_input_and_runs_nothing(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", sweep_with_plots(
        [{"file": "hit.png", "x": "system.cache.ways"}]))
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "plots.0.x" in proc.stderr and "not a swept path" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_where_list_keeps_the_points_matching_any_of_its_values(tmp_path):
    path = write_yaml(tmp_path / "exp.yaml", sweep_with_plots([
        {"file": "both.png", "x": "system.cache.size",
         "where": {"system.cache.policy": ["lru", "fifo"]}},
        {"file": "none.png", "x": "system.cache.size",
         "where": {"system.cache.policy": ["fifo", "lifo"]}}]))
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"), "--workers", "1")
    assert proc.returncode == 2
    assert "plots.1.where" in proc.stderr and "no finished point matches" in proc.stderr
    assert (tmp_path / "out" / "both.png").read_bytes().startswith(b"\x89PNG")


def test_log_axes_are_drawn_on_a_log_scale(tmp_path, monkeypatch):
    import matplotlib.axes
    from conftest import embsim_here

    scales = []
    for axis in ("x", "y"):
        original = getattr(matplotlib.axes.Axes, f"set_{axis}scale")
        monkeypatch.setattr(matplotlib.axes.Axes, f"set_{axis}scale",
                            lambda self, value, *a, _axis=axis, _f=original, **k:
                            (scales.append((_axis, value)), _f(self, value, *a, **k)))
    data = sweep_with_plots([{"file": "log.png", "x": "system.cache.size",
                              "metrics": ["latency_p50_us"], "log": ["y"]}])
    data["sweep"]["grid"]["system.cache.size"] = [16384, 65536]
    path = write_yaml(tmp_path / "exp.yaml", data)
    proc = embsim_here("run", str(path), "--out", str(tmp_path / "out"), "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert ("y", "log") in scales and ("x", "log") not in scales
