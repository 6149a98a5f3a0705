"""FHE units: CKKS sizes and security, closed-form operation counts of the lookup algorithms,
the counts SEAL really runs, the functional check against torch, the unit's time split, and bad
input. SEAL (TenSEAL) is part of the test setup (the ``fhe`` extra of ``dev``)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from conftest import embsim_here as embsim
from conftest import write_yaml

from embsim.errors import FunctionalMismatch
from hwmodels.fhe import CLIENT_OPS
from simulator.core.fhe.ckks import MAX_MODULUS_BITS, CkksParams
from simulator.core.fhe.lookup import Scheme, digit_rows, plan_lookups
from simulator.grounding.fhe_seal import EncryptedLookup, bag_counts
from simulator.runs.experiment import load_points, run_point

SMALL = CkksParams(4096, 1, scale_bits=30, first_bits=36, special_bits=36)
MID = CkksParams(8192, 2)

SYSTEM = {
    "memory": {
        "host": {"capacity": "64 GiB", "bandwidth": "100 GB/s", "latency": "100 ns",
                 "access_granularity": "64 B", "channels": 1, "interleave": "64 B"},
        "hbm": {"capacity": "16 GiB", "bandwidth": "1 TB/s", "latency": "200 ns",
                "access_granularity": "64 B", "channels": 1, "interleave": "64 B",
                "link": "pcie"},
    },
    "links": {"pcie": {"bandwidth": "64 GB/s", "latency": "1 us"},
              "net": {"bandwidth": "12.5 GB/s", "latency": "10 us"}},
    "tables": {"tier": "hbm"},
    "compute": {"tier": "host"},
    "units": {"he": {"kind": "fhe", "tier": "hbm", "link": "net", "preset": "seal-cpu",
                     "ring_dim": 8192, "levels": 2}},
}


def experiment(rows: int = 300, dim: int = 8, tables: int = 2, batch_size: int = 2,
               **unit: Any) -> dict[str, Any]:
    data = {"system": copy.deepcopy(SYSTEM),
            "workload": {"generator": {"tables": [{"rows": rows, "dim": dim}] * tables,
                                       "pooling": 3, "batches": 2, "batch_size": batch_size,
                                       "alpha": 0, "seed": 4}},
            "run": {"fidelity": "analytic"}}
    data["system"]["units"]["he"].update(unit)
    return data


def simulate(tmp_path, data: dict[str, Any]) -> dict[str, Any]:
    path = write_yaml(tmp_path / "exp.yaml", data)
    _, points = load_points(path, {})
    return run_point(points[0], str(path)).row


def test_ckks_sizes_and_security_follow_the_standard():
    p = CkksParams(8192, 2)
    assert p.slots == 4096 and p.top_limbs == 3
    assert p.ciphertext_bytes(3) == 2 * 8192 * 3 * 8
    assert p.plaintext_bytes(3) == 8192 * 3 * 8
    assert p.wire_bytes(3) == 2 * 8192 * (60 + 2 * 40) // 8
    assert p.key_bytes() == 2 * 3 * 4 * 8192 * 8        # SEAL: a digit per limb, one special
    assert p.modulus_bits == 60 + 2 * 40 + 60 <= MAX_MODULUS_BITS[8192]
    assert p.problems() == []
    assert CkksParams(8192, 4).problems()[0][0] == "levels"        # 300 bits > 218
    assert CkksParams(6000, 1).problems()[0][0] == "ring_dim"
    hybrid = CkksParams(65536, 23, digits=4)
    assert hybrid.alpha == 6 and hybrid.special == 6
    assert hybrid.key_bytes() == 2 * 4 * (24 + 6) * 65536 * 8


def test_one_hot_plan_counts_by_hand():
    """One table of 100 rows, dim 8, one sample: p = 128 rows, 8 diagonals, baby steps 4,
    giant steps 2, folds 8, 16, 32, 64."""
    plan = plan_lookups([(100, 8)], 1, Scheme(), SMALL)
    top = 2
    assert dict(plan.server) == {("rotate", top): 3 + 1, ("mul_plain", top): 8,
                                 ("add", top): 2 * 3 + 1, ("rescale", top): 1,
                                 ("rotate", top - 1): 4, ("add", top - 1): 4}
    assert plan.rotation_steps == {1, 2, 3, 4, 8, 16, 32, 64}
    assert (plan.uploads, plan.downloads, plan.plaintext_reads) == (1, 1, 8)
    assert dict(plan.client) == {("encode", 2): 1, ("encrypt", 2): 1, ("decrypt", 1): 1,
                                 ("decode", 1): 1}


def test_chunks_digits_and_packing_by_hand():
    # 5000 rows at N = 4096 (2048 slots): chunks of 1024 rows, 5 of them; the products add
    # before the giant steps (2 of them, so 4 adds), one rescale and 1024/8 -> 7 folds
    plan = plan_lookups([(5000, 8)], 1, Scheme(), SMALL)
    assert plan.server[("mul_plain", 2)] == 5 * 8
    assert plan.server[("rotate", 2)] == 5 * 3 + 1
    assert plan.server[("rotate", 1)] == 7
    assert plan.uploads == 5 and plan.downloads == 1
    # two digits of 71 rows (71^2 >= 5000): two 128-row products, summed by the server
    assert digit_rows(5000, 2) == 71
    plan = plan_lookups([(5000, 8)], 3, Scheme(digits=2), SMALL)
    assert plan.uploads == 6 and plan.downloads == 3
    assert plan.server[("mul_plain", 2)] == 6 * 8
    # packed: a block takes 128 + 7 = 135 slots, 15 to a ciphertext: 3 samples x 2 digits
    # x 2 tables = 12 blocks in one ciphertext
    plan = plan_lookups([(5000, 8)] * 2, 3, Scheme(digits=2, packing=True), SMALL)
    assert plan.uploads == 1 and plan.downloads == 1
    assert plan.server[("mul_plain", 2)] == 8


@pytest.mark.parametrize("rows,dims,batch,digits,packing,clients", [
    ([100, 37], [8, 4], 2, 1, False, "batch"),
    ([100, 37], [8, 4], 3, 1, True, "batch"),
    ([1000], [16], 2, 2, False, "batch"),
    ([1000, 300], [16, 16], 3, 3, True, "sample"),
    ([3000], [8], 1, 1, False, "batch"),
])
def test_seal_runs_exactly_the_planned_operations_and_matches_the_tables(
        rows, dims, batch, digits, packing, clients):
    rng = np.random.default_rng(1)
    params = SMALL if max(rows) < 2000 else MID
    scheme = Scheme(digits, packing, clients)
    tables = [[rng.standard_normal((digit_rows(n, digits), d)) for _ in range(digits)]
              for n, d in zip(rows, dims, strict=True)]
    lookup = EncryptedLookup(params, scheme, rows, tables)
    indices, offsets = [], [0]
    for n in rows:
        for _ in range(batch):
            indices += list(rng.integers(0, n, int(rng.integers(0, 6))))
            offsets.append(len(indices))
    indices, offsets = np.array(indices, dtype=np.int64), np.array(offsets)
    got = lookup.pooled(bag_counts(indices, offsets, None, rows, digits, batch), batch)
    for t, d in enumerate(dims):
        table = lookup.composed(t)
        for s in range(batch):
            lo, hi = offsets[t * batch + s], offsets[t * batch + s + 1]
            np.testing.assert_allclose(got[s, t, :d], table[indices[lo:hi]].sum(0),
                                       atol=2e-3)
    plan = plan_lookups(list(zip(rows, dims, strict=True)), batch, scheme, params)
    ran = lookup.ckks.log.counts
    assert {k: v for k, v in ran.items() if k[0] in CLIENT_OPS} == dict(plan.client)
    assert {k: v for k, v in ran.items() if k[0] not in CLIENT_OPS} == dict(plan.server)


def test_digit_decomposition_gain_grows_with_the_table():
    """HE-LRM's trend: k small products beat one large one by more as tables grow."""
    params = CkksParams(16384, 2)
    gains = []
    for rows in (2**10, 2**14, 2**18):
        one_hot = plan_lookups([(rows, 16)], 1, Scheme(), params)
        digits = plan_lookups([(rows, 16)], 1, Scheme(digits=2), params)
        work = [sum(c * params.work(op, limbs) for (op, limbs), c in p.server.items())
                for p in (one_hot, digits)]
        gains.append(work[0] / work[1])
    assert gains[0] < gains[1] < gains[2]


def test_unit_time_is_client_plus_links_plus_server(tmp_path):
    row = simulate(tmp_path, experiment())
    parts = (row["fhe_client_ms_he"] + row["fhe_link_ms_he"] + row["fhe_server_ms_he"])
    assert row["latency_p50_us"] / 1e3 == pytest.approx(parts, rel=0.02)
    assert row["fhe_server_ms_he"] == pytest.approx(
        max(row["fhe_compute_ms_he"], row["fhe_memory_ms_he"]))
    assert row["fhe_upload_mb_he"] > row["fhe_download_mb_he"] > 0
    assert row["pooled_lookups_he"] == row["lookups"]


def test_memory_traffic_shows_when_the_scratchpad_is_small(tmp_path):
    big = simulate(tmp_path, experiment())
    small = simulate(tmp_path, experiment(params={"scratchpad": "1 MiB"}))
    assert big["fhe_key_mb_he"] == 0 and big["fhe_memory_share_he"] == 0
    assert small["fhe_key_mb_he"] > 0 and small["fhe_plaintext_mb_he"] > 0
    assert small["fhe_memory_ms_he"] > 0
    slow_keys = simulate(tmp_path, experiment(params={"scratchpad": "1 MiB"}, keys="host",
                                              keys_link="pcie"))
    assert slow_keys["fhe_memory_ms_he"] > small["fhe_memory_ms_he"]
    # keys and tables both over PCIe share the link: the server waits for both, and the
    # latency is still the sum of its parts
    both = experiment(params={"scratchpad": "1 MiB"}, keys="host", keys_link="pcie",
                      workspace="hbm", tier="host", tables_link="pcie")
    both["system"]["tables"] = {"tier": "host"}
    row = simulate(tmp_path, both)
    parts = row["fhe_client_ms_he"] + row["fhe_link_ms_he"] + row["fhe_server_ms_he"]
    assert row["latency_p50_us"] / 1e3 == pytest.approx(parts, rel=0.02)
    pcie = 64e9
    moved = (row["fhe_key_mb_he"] + row["fhe_plaintext_mb_he"]) * 1e6
    assert row["fhe_memory_ms_he"] / 1e3 >= moved / pcie * 0.99


def test_the_unit_plans_only_the_tables_at_its_tier(tmp_path):
    """A large table elsewhere neither fills the unit's tier nor costs it anything."""
    data = experiment(tables=1)
    data["workload"]["generator"]["tables"] = [{"rows": 300, "dim": 8},
                                               {"rows": 40_000_000, "dim": 8}]
    data["system"]["tables"] = {"tier": ["hbm", "host"], "link": "pcie",
                                "budget": {"hbm": "1 MiB"}}
    row = simulate(tmp_path, data)
    alone = simulate(tmp_path, experiment(tables=1))
    assert row["fhe_server_ops_he"] == alone["fhe_server_ops_he"]
    assert row["pooled_lookups_he"] < row["lookups"]


GPU_BITS = {"preset": "gpu-h100-cheddar", "first_bits": 32, "scale_bits": 30,
            "special_bits": 32}


def test_bootstrapping_where_the_levels_run_out(tmp_path):
    plain = simulate(tmp_path, experiment(**GPU_BITS))
    refreshed = simulate(tmp_path, experiment(**GPU_BITS, levels_after=3))
    assert plain["fhe_bootstraps_he"] == 0 < refreshed["fhe_bootstraps_he"]
    assert refreshed["fhe_compute_ms_he"] > plain["fhe_compute_ms_he"]


def test_functional_check_encrypts_and_matches_torch(tmp_path):
    for unit in ({}, {"digits": 2, "packing": True}):
        data = experiment(**unit)
        data["run"]["functional"] = True
        row = simulate(tmp_path, data)
        assert row["fhe_checked_bags_he"] == 2 * 2 * 2          # batches x tables x samples


def test_functional_tolerance_follows_the_scale(tmp_path):
    data = experiment(scale_bits=25)
    data["run"]["functional"] = True
    assert simulate(tmp_path, data)["fhe_checked_bags_he"] == 8


@pytest.mark.parametrize("unit,field", [
    ({"ring_dim": 65536, "levels": 2}, "system.units.he.ring_dim"),
    ({"key_digits": 2, "ring_dim": 16384}, "system.units.he.key_digits"),
])
def test_functional_refuses_what_seal_cannot_run(tmp_path, unit, field):
    data = experiment(**unit)
    data["run"]["functional"] = True
    path = write_yaml(tmp_path / "f.yaml", data)
    result = embsim("run", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and field in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_functional_check_fails_on_a_wrong_lookup(tmp_path, monkeypatch):
    data = experiment()
    data["run"]["functional"] = True
    original = EncryptedLookup.composed
    monkeypatch.setattr(EncryptedLookup, "composed",
                        lambda self, t: original(self, t) + 0.01)
    with pytest.raises(FunctionalMismatch):
        simulate(tmp_path, data)


@pytest.mark.parametrize("unit,field", [
    ({"ring_dim": 6000}, "system.units.he.ring_dim"),
    ({"levels": 0}, "system.units.he.levels"),
    ({"levels": 9}, "system.units.he.levels"),
    ({"packing": True}, "system.units.he.packing"),
    ({"keys": "host"}, "system.units.he.keys_link"),
    ({"workspace": "host", "keys": "host"}, "system.units.he.tables_link"),
    ({"keys": "nowhere", "keys_link": "pcie"}, "system.units.he.keys"),
    ({"preset": "nosuch"}, "system.units.he.preset"),
    ({"levels_after": 4, "preset": "seal-cpu"}, "system.units.he.levels"),
    ({"digits": 0}, "system.units.he.digits"),
    ({"preset": "craterlake"}, "system.units.he.first_bits"),
    ({"preset": "craterlake", "first_bits": 28, "special_bits": 28},
     "system.units.he.scale_bits"),
    ({"preset": None}, "system.units.he.preset"),
    ({"client_preset": "nosuch"}, "system.units.he.client_preset"),
])
def test_bad_fhe_input_exits_2_naming_the_field(tmp_path, unit, field):
    data = experiment(rows=5000, **unit)
    path = write_yaml(tmp_path / "bad.yaml", data)
    result = embsim("run", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert field in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_fhe_lookup_experiment_reduced(tmp_path):
    """The shipped experiment at reduced size: accelerators beat the CPU, digits beat one-hot
    by more on larger tables, and keys and tables over PCIe make the server memory-bound."""
    import yaml
    from conftest import ROOT

    data = yaml.safe_load((ROOT / "experiments" / "fhe_lookup.yaml").read_text())
    data["workload"]["generator"].update(batches=1, num_tables=2)
    data["sweep"]["cases"] = {k: v for k, v in data["sweep"]["cases"].items()
                              if k in ("cpu_1t", "sharp", "sharp_host_ddr")}
    data["sweep"]["grid"] = {"workload.generator.rows": [4096, 262144],
                             "system.units.he.digits": [1, 2],
                             "system.units.he.packing": [False]}
    data["sweep"].pop("exclude")
    data["plots"] = data["plots"][:1]
    path = write_yaml(tmp_path / "fhe_lookup.yaml", data)
    result = embsim("run", str(path), "--out", str(tmp_path / "out"), "--workers", "1",
                    "--quiet")
    assert result.returncode == 0, result.stderr
    import pandas as pd

    frame = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert (frame["status"] == "ok").all() and len(frame) == 12
    assert (tmp_path / "out" / "fhe_lookup_one_hot.png").read_bytes().startswith(b"\x89PNG")
    server = frame.set_index(["case", "workload.generator.rows", "system.units.he.digits"])[
        "fhe_server_ms_he"]
    assert (server.loc["cpu_1t"] > 100 * server.loc["sharp"]).all()
    gain = {rows: server[("cpu_1t", rows, 1)] / server[("cpu_1t", rows, 2)]
            for rows in (4096, 262144)}
    assert gain[262144] > gain[4096]
    share = frame.set_index(["case", "workload.generator.rows", "system.units.he.digits"])[
        "fhe_memory_share_he"]
    assert share[("sharp_host_ddr", 262144, 1)] > share[("sharp", 262144, 1)]


def test_calibration_fits_each_operation_and_writes_presets(tmp_path, monkeypatch):
    """``calibrate --backend fhe-cpu`` on a reduced grid: every operation gets a cost per
    modular operation with its source, the presets load and drive a unit."""
    import yaml

    from hwmodels.presets import resolve
    from simulator.grounding import fhe_calibrate

    monkeypatch.setattr(fhe_calibrate, "GRID", ((4096, (1,)), (8192, (1, 2))))
    out = tmp_path / "mine.yaml"
    result = embsim("calibrate", "--backend", "fhe-cpu", "-o", str(out))
    assert result.returncode == 0, result.stderr
    one = yaml.safe_load(out.read_text())
    assert one["kind"] == "fhe" and one["params"]["threads"]["value"] == 1
    assert len(one["microbenchmarks"]) == 3 * 10
    spec, sources = resolve("fhe", str(out), {})
    assert 1e-11 < spec.op_time("rotate") < 1e-7
    assert "fhe-cpu" in sources["rotate_time"]
    multi, _ = resolve("fhe", str(tmp_path / "mine-mt.yaml"), {})
    assert multi.threads >= 1 and 0 < multi.parallel_efficiency <= 1


def test_fit_recovers_a_proportional_cost():
    from simulator.grounding.fhe_calibrate import fit

    runs = [{"op": op, "seconds": 2e-9 * work, "modops": work}
            for op in ("add", "mul_plain", "mul", "relinearize", "rescale", "rotate",
                       "encode", "encrypt", "decrypt", "decode") for work in (1e5, 1e6)]
    costs = fit(runs)
    assert costs["rotate"][0] == pytest.approx(2e-9) and costs["rotate"][1] < 1e-12


def test_measure_and_validate_encrypted_lookups(tmp_path):
    """``measure --backend fhe-cpu`` times real lookups (checked against the tables) and
    ``validate`` compares the unit's predictions with them on the engine's preset."""
    data = experiment(rows=200, tables=1, batch_size=1, link="direct")
    data["system"]["tables"] = {"tier": "host"}
    data["system"]["units"]["he"]["tier"] = "host"
    data["sweep"] = {"grid": {"system.units.he.digits": [1, 2]}}
    path = write_yaml(tmp_path / "v.yaml", data)
    measured = tmp_path / "m.parquet"
    result = embsim("measure", str(path), "--backend", "fhe-cpu", "--repeats", "1",
                    "--warmup", "0", "-o", str(measured))
    assert result.returncode == 0, result.stderr
    import pandas as pd

    frame = pd.read_parquet(measured)
    assert len(frame) == 2 and (frame["time_per_batch_us"] > 0).all()
    assert (frame["server_ops_per_batch"] > 0).all()
    result = embsim("validate", str(path), "--measurements", str(measured), "--json")
    assert result.returncode == 0, result.stderr
    import json

    summary = json.loads(result.stdout)
    assert summary["points"] == 2 and summary["mape"] < 100


@pytest.mark.parametrize("unit,field", [
    ({"packing": True, "ring_dim": 4096, "levels": 1, "first_bits": 36, "scale_bits": 30,
      "special_bits": 36}, "system.units.he.packing"),
    ({"levels": 0, "ring_dim": 4096, "first_bits": 36, "scale_bits": 30,
      "special_bits": 36}, "system.units.he.levels"),
    ({"ring_dim": 65536}, "system.units.he.ring_dim"),
])
def test_measure_refuses_bad_fhe_options(tmp_path, unit, field):
    data = experiment(rows=5000, link="direct", **unit)
    data["system"]["tables"] = {"tier": "host"}
    data["system"]["units"]["he"]["tier"] = "host"
    path = write_yaml(tmp_path / "bad.yaml", data)
    result = embsim("measure", str(path), "--backend", "fhe-cpu", "-o", str(tmp_path / "m"))
    assert result.returncode == 2, result.stderr
    assert field in result.stderr and "Traceback" not in result.stderr
    assert str(path) in result.stderr and not (tmp_path / "m").exists()


def test_measure_needs_one_fhe_unit(tmp_path):
    data = experiment()
    data["system"].pop("units")
    path = write_yaml(tmp_path / "none.yaml", data)
    result = embsim("measure", str(path), "--backend", "fhe-cpu", "-o", str(tmp_path / "x"))
    assert result.returncode == 2 and "system.units" in result.stderr
    assert not (tmp_path / "x").exists()
