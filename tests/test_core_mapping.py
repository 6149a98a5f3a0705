"""The host's cores and the table-to-core mappings (issue 15): each policy's rule, the closed
form of a balanced mapping (the single core's pooling time over the cores), the asymmetric
mapping against round-robin on skewed and uniform tables, every lookup mapped once, the
``l1`` strategy, bad input, and the shipped experiment at reduced size."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import embsim_here, reduced, write_yaml

from simulator.core.units.core_mapping import MAPPINGS, MappingInput
from simulator.runs.experiment import load_points, run_point

LOOKUP_S = 10e-9
HBM = {"capacity": "1 GiB", "bandwidth": "1 TB/s", "latency": "100 ns",
       "access_granularity": "64 B", "channels": 1, "interleave": "64 B"}


def mapping_input(rows, heat=None, speed=(1.0, 1.0), cost=None) -> MappingInput:
    rows = np.asarray(rows, dtype=np.int64)
    heat = heat if heat is not None else [np.ones(int(n)) for n in rows]
    return MappingInput(speed=np.asarray(speed, dtype=float), table_rows=rows,
                        table_bytes=rows * 64, heat=heat,
                        lookup_cost=np.ones(rows.size) if cost is None else np.asarray(cost))


def core_loads(m: MappingInput, name: str) -> np.ndarray:
    """Each core's profiled cost under mapping ``name``, row by row (every row mapped once)."""
    mapped = MAPPINGS.get(name)(m)
    load = np.zeros(m.count)
    for t, n in enumerate(m.table_rows):
        rows = np.arange(int(n))
        core = mapped.cores_of(np.full(rows.size, t), rows)
        assert ((core >= 0) & (core < m.count)).all()
        np.add.at(load, core, m.heat[t] * m.lookup_cost[t])
    return load


def test_round_robin_gives_table_t_to_core_t_mod_count():
    mapped = MAPPINGS.get("round_robin")(mapping_input([5] * 7, speed=[1, 1, 1]))
    assert mapped.table_core.tolist() == [0, 1, 2, 0, 1, 2, 0] and not mapped.splits


def test_size_balanced_puts_the_largest_table_on_the_emptiest_core():
    # 100 -> c0; 60 -> c1; 50 -> c1 (60 < 100); 10 -> c0 (100 < 110)
    mapped = MAPPINGS.get("size_balanced")(mapping_input([100, 60, 50, 10]))
    assert mapped.table_core.tolist() == [0, 1, 1, 0]


def test_asymmetric_splits_a_hot_table_by_rows_of_equal_reads():
    heat = [np.full(1000, 7.0), np.ones(10), np.ones(10), np.ones(10)]   # 7000 vs 10 reads
    m = mapping_input([1000, 10, 10, 10], heat=heat, speed=[1, 1, 1, 1])
    mapped = MAPPINGS.get("asymmetric")(m)
    assert 0 in mapped.splits and mapped.table_core[0] == -1
    bounds, cores = mapped.splits[0]
    assert bounds[0] == 0 and bounds[-1] == 1000 and (np.diff(bounds) >= 0).all()
    assert len(set(cores.tolist())) == 4                 # over every core
    load = core_loads(m, "asymmetric")
    assert load.sum() == pytest.approx(7030)
    assert load.max() / load.mean() < 1.01
    assert core_loads(m, "round_robin").max() == 7000


def test_asymmetric_without_a_profile_splits_by_row_counts():
    m = mapping_input([3000, 500, 500], speed=[1, 1])
    m.heat = None                                          # validation: every row read once
    mapped = MAPPINGS.get("asymmetric")(m)
    bounds, cores = mapped.splits[0]        # 500 + 1500 rows per core: 2000 each
    assert bounds.tolist() == [0, 1500, 3000] and sorted(cores.tolist()) == [0, 1]
    assert sorted(mapped.table_core[1:].tolist()) == [0, 1]


def test_asymmetric_gives_a_core_twice_as_fast_twice_the_work():
    heat = [np.ones(600)] + [np.ones(100)] * 3
    m = mapping_input([600, 100, 100, 100], heat=heat, speed=[2, 1, 1])
    load = core_loads(m, "asymmetric")
    assert load.sum() == pytest.approx(900)
    np.testing.assert_allclose(load / m.speed, 900 / 4, rtol=0.02)


def test_asymmetric_is_no_worse_than_round_robin_on_uniform_tables():
    m = mapping_input([50] * 8, speed=[1] * 4)
    assert core_loads(m, "asymmetric").max() == core_loads(m, "round_robin").max() == 100


def system(tables, cores=None, **generator):
    compute = {"tier": "hbm", "lookup_overhead": f"{LOOKUP_S * 1e9:g} ns"}
    if cores is not None:
        compute["cores"] = cores
    return {
        "system": {"memory": {"hbm": dict(HBM)}, "tables": {"tier": "hbm"},
                   "compute": compute},
        "workload": {"generator": {"tables": tables, "batches": 4, "batch_size": 8,
                                   "alpha": 1.05, "seed": 5, **generator}},
        "run": {"fidelity": "analytic", "arrivals": {"mode": "closed", "concurrency": 1}},
    }


def run(tmp_path, data, name="exp.yaml"):
    path = write_yaml(tmp_path / name, data)
    _, points = load_points(path, {})
    return run_point(points[0], str(path), per_query=True)


EQUAL = [{"rows": 2000, "dim": 16, "pooling": 6}] * 8
HOT = [{"rows": 2000, "dim": 16, "pooling": 48}] + [{"rows": 2000, "dim": 16, "pooling": 3}] * 7


def test_a_balanced_mapping_takes_the_single_core_time_over_the_cores(tmp_path):
    one = run(tmp_path, system(EQUAL, {"count": 1}), "one.yaml")
    four = run(tmp_path, system(EQUAL, {"count": 4}), "four.yaml")
    plain = run(tmp_path, system(EQUAL), "plain.yaml")
    lookups = one.per_query["lookups"].to_numpy()
    single = lookups * LOOKUP_S * 1e6                         # one core's pooling, us
    saved = one.per_query["latency_us"] - four.per_query["latency_us"]
    np.testing.assert_allclose(saved, single * (1 - 1 / 4), rtol=1e-9)
    np.testing.assert_allclose(one.per_query["latency_us"], plain.per_query["latency_us"],
                               rtol=1e-12)
    assert four.row["core_imbalance_compute"] == pytest.approx(1.0)
    per_core = [four.row[f"core{c}_lookups_compute"] for c in range(4)]
    assert per_core == [four.row["lookups"] / 4] * 4
    assert four.row["core0_busy_us_compute"] == pytest.approx(
        four.row["lookups"] / 4 * LOOKUP_S * 1e6)


def test_each_core_walks_the_longest_bag_of_its_own_tables(tmp_path):
    two = [{"rows": 2000, "dim": 16, "pooling": 6}] * 2       # fixed bags of 6 rows
    def latency(cores, name):
        data = system(two, cores)
        data["system"]["compute"].update(lookup_overhead="0 ns", lookup_chain_latency="1 us")
        return run(tmp_path, data, name).per_query["latency_us"].to_numpy()

    one, split = latency({"count": 1}, "one.yaml"), latency({"count": 2}, "two.yaml")
    np.testing.assert_allclose(one - split, 6.0, rtol=1e-9)    # 12 rows walked, then 6 per core


def test_a_lookup_floor_is_each_cores_least_cost_per_lookup(tmp_path):
    """Eight tables of 16-element rows over 4 cores: a floor above what a lookup costs raises
    every core's time by (floor - cost) per lookup, over the cores in parallel."""
    def latency(floor, name):
        data = system(EQUAL, {"count": 4})
        data["system"]["compute"]["lookup_floor"] = floor
        result = run(tmp_path, data, name)
        return result.per_query["latency_us"].to_numpy(), result.per_query["lookups"].to_numpy()

    base, lookups = latency("0 ns", "base.yaml")
    floored, _ = latency(f"{LOOKUP_S * 1e9 + 3} ns", "floor.yaml")
    np.testing.assert_allclose(floored - base, lookups / 4 * 3e-3, rtol=1e-9)


@pytest.mark.parametrize("mapping", ["round_robin", "size_balanced", "asymmetric"])
def test_every_lookup_is_mapped_to_one_core(tmp_path, mapping):
    result = run(tmp_path, system(HOT, {"count": 3, "mapping": mapping}))
    counted = sum(result.row[f"core{c}_lookups_compute"] for c in range(3))
    assert counted == result.row["lookups"] == result.row["pooled_lookups_compute"]


def test_asymmetric_beats_round_robin_on_a_hot_table_and_ties_on_equal_ones(tmp_path):
    def p50(tables, mapping, name):
        cores = {"count": 4, "mapping": mapping, "profile_batches": 2}
        return run(tmp_path, system(tables, cores), name).row

    hot_rr, hot_asym = p50(HOT, "round_robin", "a.yaml"), p50(HOT, "asymmetric", "b.yaml")
    assert hot_asym["latency_p50_us"] < 0.6 * hot_rr["latency_p50_us"]
    assert hot_rr["core_imbalance_compute"] > 2 > 1.2 > hot_asym["core_imbalance_compute"]
    equal_rr, equal_asym = p50(EQUAL, "round_robin", "c.yaml"), p50(EQUAL, "asymmetric", "d.yaml")
    assert equal_asym["latency_p50_us"] <= equal_rr["latency_p50_us"] * (1 + 1e-9)


def test_heterogeneous_cores_slow_the_table_on_the_slow_core(tmp_path):
    fast = run(tmp_path, system(EQUAL, {"count": 2, "speed": [1, 1]}), "f.yaml").row
    slow = run(tmp_path, system(EQUAL, {"count": 2, "speed": [1, 0.5]}), "s.yaml").row
    assert slow["core1_busy_us_compute"] == pytest.approx(2 * fast["core1_busy_us_compute"])
    assert slow["latency_p50_us"] > fast["latency_p50_us"]


def test_l1_strategy_keeps_small_tables_off_the_tier(tmp_path):
    small = [{"rows": 100, "dim": 16, "pooling": 4}] * 4          # 6.4 KiB each
    gm = run(tmp_path, system(small, {"count": 2}), "gm.yaml").row
    l1 = run(tmp_path, system(small, {"count": 2, "strategy": "l1", "l1_bytes": "16 KiB"}),
             "l1.yaml").row
    rows = gm["lookups"] * 64
    assert gm["bytes_read_hbm"] - l1["bytes_read_hbm"] == rows   # every row read from L1
    assert l1["latency_p50_us"] < gm["latency_p50_us"]


@pytest.mark.parametrize("cores, field", [
    ({"count": 0}, "system.compute.cores.count"),
    ({"count": 2, "mapping": "random"}, "system.compute.cores.mapping"),
    ({"count": 2, "speed": [1, 1, 1]}, "system.compute.cores.speed"),
    ({"count": 2, "speed": -1}, "system.compute.cores.speed"),
    ({"count": 2, "strategy": "gm_ub"}, "system.compute.cores.strategy"),
    ({"count": 2, "cores": 3}, "system.compute.cores.cores"),
])
def test_bad_cores_exit_2_naming_the_field(tmp_path, cores, field):
    path = write_yaml(tmp_path / "bad.yaml", system(EQUAL, cores))
    proc = embsim_here("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert field in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_core_mapping_experiment_reduced(tmp_path):
    def shrink(data):
        data["workload"]["generator"].update(batches=4, batch_size=16)
        data["system"]["compute"]["cores"]["profile_batches"] = 2
        data["sweep"]["cases"] = {k: data["sweep"]["cases"][k] for k in ("balanced", "extreme")}
        data["sweep"]["grid"]["system.compute.cores.count"] = [1, 8]
        data["plots"] = data["plots"][2:]

    frame, out = reduced("core_mapping", tmp_path, shrink)
    assert (out / "core_mapping_extreme.png").read_bytes().startswith(b"\x89PNG")
    assert (frame["status"] == "ok").all() and len(frame) == 12
    p50 = frame.set_index(["case", "system.compute.cores.mapping",
                           "system.compute.cores.count"])["latency_p50_us"]
    for mapping in ("round_robin", "size_balanced", "asymmetric"):    # one core: all alike
        assert p50[("extreme", mapping, 1)] == pytest.approx(p50[("extreme", "round_robin", 1)])
    assert p50[("extreme", "round_robin", 8)] / p50[("extreme", "asymmetric", 8)] > 3
    assert p50[("balanced", "asymmetric", 8)] == pytest.approx(
        p50[("balanced", "round_robin", 8)])


def test_l1_with_tables_outside_the_compute_tier_exits_2(tmp_path):
    """Rows of another tier are fetched over its link; 'l1' cannot keep them in a buffer."""
    data = system(EQUAL, {"count": 2, "strategy": "l1"})
    data["system"]["memory"]["dram"] = {**HBM, "link": "pcie"}
    data["system"]["links"] = {"pcie": {"bandwidth": "64 GB/s", "latency": "1 us"}}
    data["system"]["tables"] = {"tier": "dram"}
    path = write_yaml(tmp_path / "bad.yaml", data)
    proc = embsim_here("run", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "system.compute.cores.strategy" in proc.stderr and "'dram'" in proc.stderr
    assert not (tmp_path / "out").exists()
