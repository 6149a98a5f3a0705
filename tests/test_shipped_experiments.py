"""The shipped placement and cache-policy experiments, end to end at reduced size."""

from __future__ import annotations

from conftest import reduced


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


def test_recnmp_reduced(tmp_path):
    """RecNMP's trends at reduced size: rank units beat the host more with more ranks, the
    RankCache hits, and near-memory pooling saves memory energy (fewer bytes cross the DQ)."""
    def edit(data):
        data["workload"]["generator"].update(rows=20000, batches=4)
        data["sweep"]["grid"] = {"workload.generator.model": ["rm1"],
                                 "system.memory.dram.params.ranks": [1, 4]}
        data["plots"] = data["plots"][:1]

    frame, out = reduced("recnmp", tmp_path, edit)
    assert (frame["status"] == "ok").all() and len(frame) == 8
    assert (out / "recnmp_rm1.png").read_bytes().startswith(b"\x89PNG")
    by = frame.set_index(["case", "system.memory.dram.params.ranks"])
    latency = by["latency_p50_us"]
    speedup = {r: latency[("host", r)] / latency[("rank", r)] for r in (1, 4)}
    assert speedup[4] > speedup[1] > 0.5
    assert (by.loc["rank_cache", "cache_hit_rate_rank_nmp"] > 0).all()
    assert (by.loc["rank", "energy_uj_per_query"] < by.loc["host", "energy_uj_per_query"]).all()
    near = frame[frame["case"] != "host"]
    assert (near["pooled_lookups_rank_nmp"] == near["lookups"]).all()
    assert (near["bytes_dq"] < near["bytes_dram"]).all()


def test_nmp_levels_reduced(tmp_path):
    """Every level pools every lookup where its rows live and sends partial sums only."""
    def edit(data):
        data["workload"]["generator"].update(rows=20000, batches=3)
        data["sweep"]["grid"] = {"workload.generator.alpha": [1.1]}
        data["sweep"]["cases"]["upmem_cache_aware"]["system.units.nmp"]["profile_batches"] = 1

    frame, out = reduced("nmp_levels", tmp_path, edit)
    assert (frame["status"] == "ok").all() and len(frame) == 8
    for png in ("nmp_levels.png", "nmp_levels_energy.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG")
    by = frame.set_index("case")
    for case in ("dimm", "rank", "bank_group", "upmem", "upmem_cache_aware", "cxl"):
        assert by.loc[case, "pooled_lookups_nmp"] == by.loc[case, "lookups"]
        assert by.loc[case, "partials_nmp"] > 0
    assert by.loc["bank_group", "engines_nmp"] == 4 * by.loc["rank", "engines_nmp"]
    assert by.loc["upmem_cache_aware", "wram_hits_nmp"] > 0 == by.loc["upmem", "wram_hits_nmp"]
    assert by.loc["rank", "latency_p50_us"] < by.loc["host_dram", "latency_p50_us"]
    assert by.loc["cxl", "bytes_cxl_link"] < by.loc["host_cxl", "bytes_cxl_link"]
