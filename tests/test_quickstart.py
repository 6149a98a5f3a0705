"""The shipped quickstart experiment, end to end through the CLI at reduced size."""

from __future__ import annotations

import pandas as pd
from conftest import ROOT, embsim


def test_quickstart_reduced(tmp_path):
    out = tmp_path / "qs"
    proc = embsim("run", str(ROOT / "experiments" / "quickstart.yaml"), "--out", str(out),
                  "--set", "workload.generator.batches=3",
                  "--set", "workload.generator.batch_size=8")
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(out / "results.parquet")
    assert list(frame["system.cache.size"]) == ["64 MiB", "256 MiB", "1 GiB", "4 GiB"]
    assert (frame["queries"] == 3).all()
    assert (frame["lookups"] == 3 * 8 * 32 * 120).all()
    # 4 GiB holds all 16M rows of 256 B: nothing is evicted, so no point hits more
    assert frame["cache_evictions"].iloc[-1] == 0
    assert frame["cache_hit_rate"].iloc[-1] == frame["cache_hit_rate"].max()
    assert (frame["bytes_pcie"] == frame["cache_misses"] * 256).all()
    assert (frame["latency_p99_us"] >= frame["latency_p50_us"]).all()
