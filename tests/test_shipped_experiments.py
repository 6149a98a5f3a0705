"""The shipped placement and cache-policy experiments, end to end at reduced size."""

from __future__ import annotations

import pandas as pd
import yaml
from conftest import ROOT, embsim, write_yaml


def reduced(name: str, tmp_path, edit) -> tuple[pd.DataFrame, object]:
    data = yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text())
    edit(data)
    path = write_yaml(tmp_path / f"{name}.yaml", data)
    out = tmp_path / "out"
    proc = embsim("run", str(path), "--out", str(out), "--workers", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return pd.read_parquet(out / "results.parquet"), out


def test_gpu_cache_policies_reduced(tmp_path):
    def edit(data):
        data["workload"]["generator"].update(rows=20000, batches=8, batch_size=16)
        data["sweep"]["grid"] = {"system.cache.load_factor": [0.05, 0.2],
                                 "workload.generator.alpha": [1.05]}
        data["sweep"]["cases"]["static"]["system.cache.profile_batches"] = 2
        data["sweep"]["cases"]["freq_aware"]["system.cache.profile_batches"] = 2
        data["plots"] = data["plots"][:1]

    frame, out = reduced("gpu_cache_policies", tmp_path, edit)
    assert (frame["status"] == "ok").all() and len(frame) == 8
    assert (out / "gpu_cache_policies_alpha1.05.png").read_bytes().startswith(b"\x89PNG")
    by = frame.set_index(["case", "system.cache.load_factor"])
    for case in ("lru", "lfu", "static", "freq_aware"):
        assert by.loc[(case, 0.2), "cache_hit_rate"] >= by.loc[(case, 0.05), "cache_hit_rate"]
    assert (by.loc["static", "cache_evictions"] == 0).all()
    assert (by.loc["lru", "cache_num_requested_indices"] == by.loc["lru", "lookups"]).all()
    assert (frame["cache_hits"] + frame["cache_misses"] == frame["lookups"]).all()


def test_sdm_tiering_reduced(tmp_path):
    def edit(data):
        data["workload"]["generator"].update(rows=20000, batches=8, batch_size=16)
        data["system"]["tables"].update(budget={"dram": "1 MiB", "scm": "2 MiB"},
                                        profile_batches=2)
        data["sweep"]["cases"]["dram_ssd"]["system.tables.budget"] = {"dram": "1 MiB"}
        data["sweep"]["grid"] = {"system.cache.size": ["256 KiB", "4 MiB"]}

    frame, out = reduced("sdm_tiering", tmp_path, edit)
    assert (frame["status"] == "ok").all() and len(frame) == 4
    assert (out / "sdm_tiering.png").read_bytes().startswith(b"\x89PNG")
    by = frame.set_index(["case", "system.cache.size"])
    with_scm = by.loc["dram_scm_ssd"]
    assert (with_scm["lookups_scm"] > 0).all() and (with_scm["bytes_read_scm"] > 0).all()
    assert (by.loc["dram_ssd", "bytes_read_ssd"] > with_scm["bytes_read_ssd"]).all()
    # the hot rows (1 MiB of 16 x 20000 x 256 B) serve more than their share of lookups
    assert (frame["lookups_dram"] / frame["lookups"] > 1 / 80).all()
    assert (frame["bytes_wasted_ssd"] > 0).all()              # 256 B rows in 4 KiB pages
    assert (by.xs("4 MiB", level=1)["cache_hit_rate"].values
            >= by.xs("256 KiB", level=1)["cache_hit_rate"].values).all()
