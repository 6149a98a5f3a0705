"""Remote nodes holding table shards (simulator/core/nodes.py): closed forms (one shard is the
single-node result plus the network and the RPC), invariants (every lookup pooled once, the
network carries exactly the requests and pooled vectors), contention at a node's RPC workers,
results columns and bad input through the CLI."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import embsim_here as embsim
from conftest import reduced, write_yaml

from embsim.errors import InvariantError
from simulator.core.nodes import INDEX_BYTES, sub_batch
from simulator.core.workload import open_workload
from simulator.runs.experiment import load_points, prepare, run_point

DRAM = {"capacity": "1 GiB", "bandwidth": "100 GB/s", "latency": "100 ns",
        "access_granularity": "64 B", "channels": 1, "interleave": "64 B"}
COMPUTE = {"tier": "dram", "query_overhead": "2 us", "call_overhead": "1 us",
           "bag_overhead": "10 ns", "lookup_overhead": "2 ns"}
NET = {"bandwidth": "10 GB/s", "latency": "2 us", "message_overhead": "100 B"}
TABLES = [{"rows": 4000, "dim": 16}, {"rows": 2000, "dim": 32}, {"rows": 3000, "dim": 16},
          {"rows": 1000, "dim": 64}]


def node(**changes):
    return {"memory": {"dram": dict(DRAM)}, "tables": {"tier": "dram"},
            "compute": dict(COMPUTE), "link": "net", "rpc_overhead": "5 us", **changes}


def single(batches=3, concurrency=1, tables=TABLES):
    """The single-server system: every table in the main node's DRAM."""
    return {
        "system": {"memory": {"dram": dict(DRAM)}, "tables": {"tier": "dram"},
                   "compute": dict(COMPUTE)},
        "workload": {"generator": {"tables": copy.deepcopy(tables), "pooling": 5,
                                   "batches": batches, "batch_size": 8, "alpha": 1.1,
                                   "seed": 3}},
        "run": {"fidelity": "analytic",
                "arrivals": {"mode": "closed", "concurrency": concurrency}},
    }


def sharded(shards, strategy="capacity_balanced", nodes=None, **kwargs):
    data = single(**kwargs)
    data["system"]["links"] = {"net": dict(NET)}
    data["system"]["nodes"] = nodes or {f"n{i}": node() for i in range(max(shards, 1))}
    data["system"]["sharding"] = {"strategy": strategy, "shards": shards}
    return data


def run(tmp_path, data, name="exp.yaml"):
    path = write_yaml(tmp_path / name, data)
    _, points = load_points(path, {})
    return run_point(points[0], str(path), per_query=True), points[0], path


def test_no_nodes_and_zero_shards_give_the_single_server_numbers(tmp_path):
    base, _, _ = run(tmp_path, single(), "a.yaml")
    zero, _, _ = run(tmp_path, sharded(0), "b.yaml")
    for column, value in base.row.items():
        if column not in ("wall_s", "config_hash"):
            assert zero.row[column] == value or (value != value and zero.row[column]
                                                 != zero.row[column]), column


def test_one_shard_is_the_single_node_result_plus_network_and_rpc(tmp_path):
    base, point, path = run(tmp_path, single(), "a.yaml")
    one, _, _ = run(tmp_path, sharded(1), "b.yaml")
    meta, batches = open_workload(point.config.workload, str(path))
    bw, latency, header = 10e9, 2e-6, 100
    pooled = 8 * int(np.sum(meta.row_bytes))            # batch size x each table's row
    # after the answer, the main node's own work: its query overhead, then the outputs'
    # write into its DRAM (analytic: bytes at 100 GB/s after 100 ns)
    main_own = 2e-6 + pooled / 100e9 + 100e-9
    expected = []
    for batch, lat in zip(batches(), base.per_query["latency_us"], strict=True):
        request = INDEX_BYTES * (batch.indices.size + batch.offsets.size) + header
        network = (request + pooled + header) / bw + 2 * latency
        expected.append(lat + (network + 5e-6 + main_own) * 1e6)
    got = one.per_query["latency_us"].to_numpy()
    assert got == pytest.approx(expected, rel=1e-9)
    row = one.row
    assert row["requests_n0"] == 3 and row["requests_per_query"] == 1
    assert row["pooled_lookups_n0"] == row["lookups"] == base.row["lookups"]
    # compute: the node's embedding time and its RPC cost, plus the main node's query overhead
    assert row["compute_s_total"] == pytest.approx(
        base.row["compute_s_total"] + 3 * 5e-6 + 3 * 2e-6, rel=1e-9)


def test_every_lookup_is_pooled_once_and_the_network_carries_requests_and_vectors(tmp_path):
    result, point, path = run(tmp_path, sharded(4, concurrency=3, batches=6))
    row = result.row
    names = [f"n{i}" for i in range(4)]
    assert sum(row[f"pooled_lookups_{n}"] for n in names) == row["lookups"]
    assert row["pooled_lookups_compute"] == 0
    assert row["bytes_net"] == row["network_bytes"] == sum(
        row[f"request_bytes_{n}"] + row[f"response_bytes_{n}"] for n in names)
    meta, batches = open_workload(point.config.workload, str(path))
    system, _, _ = prepare(point, str(path))
    requests = responses = 0
    for unit in system.units[1:]:
        for batch in batches():
            sub = sub_batch(batch, unit.tables)
            if sub.num_lookups:
                requests += INDEX_BYTES * (sub.indices.size + sub.offsets.size) + 100
                responses += 8 * int(np.sum(meta.row_bytes[unit.tables])) + 100
    assert row["bytes_net"] == requests + responses
    assert sum(row[f"tables_{n}"] for n in names) == len(TABLES)


def test_a_lost_request_breaks_the_network_invariant(tmp_path):
    _, point, path = run(tmp_path, sharded(2))
    system, meta, batches = prepare(point, str(path))
    from simulator.core.engine import Engine
    from simulator.core.metrics import check_invariants
    engine = Engine(system, meta, batches(), point.config.run)
    log = engine.run()
    check_invariants(log, system, engine.started)
    system.units[1].request_bytes -= 1
    with pytest.raises(InvariantError, match="link net"):
        check_invariants(log, system, engine.started)


def test_queries_queue_at_a_nodes_rpc_workers(tmp_path):
    one_worker, _, _ = run(tmp_path, sharded(1, concurrency=4, batches=8), "a.yaml")
    many = sharded(1, concurrency=4, batches=8)
    many["system"]["nodes"]["n0"]["rpc_workers"] = 4
    four_workers, _, _ = run(tmp_path, many, "b.yaml")
    assert one_worker.row["queue_s_n0"] > 0
    assert four_workers.row["queue_s_n0"] < one_worker.row["queue_s_n0"]
    assert four_workers.row["latency_p50_us"] < one_worker.row["latency_p50_us"]


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["system"]["nodes"]["n0"].update(link="nowhere"), "system.nodes.n0.link"),
    (lambda d: d["system"]["nodes"]["n0"].pop("link"), "system.nodes.n0.link"),
    (lambda d: d["system"]["sharding"].update(strategy="random"),
     "system.sharding.strategy"),
    (lambda d: d["system"]["sharding"].update(shards=3), "system.sharding.shards"),
    (lambda d: [n["memory"]["dram"].update(capacity="64 KiB")
                for n in d["system"]["nodes"].values()], "system.sharding"),
    (lambda d: d["system"]["nodes"]["n1"]["tables"].update(tier="hbm"),
     "system.nodes.n1.tables.tier"),
    (lambda d: d["system"]["sharding"].update(strategy="one_table_per_shard"),
     "system.sharding.shards"),
    (lambda d: d["system"]["sharding"].update(nets=[[0, 1], [1, 2, 3]]),
     "system.sharding.nets"),
    (lambda d: d["system"]["nodes"]["n0"].update(rpc_workers=0),
     "system.nodes.n0.rpc_workers"),
    (lambda d: d["system"]["sharding"].update(shards=0, strategy="random"),   # the baseline
     "system.sharding.strategy"),                                            # point too
    (lambda d: d["system"].update(dense={"bottom_mlp": [4, 8], "top_mlp": [1], "tier": "shards",
                                         "params": {"peak_flops": 1e9}}),
     "system.dense.tier"),
])
def test_bad_input_exits_2_naming_the_field(tmp_path, change, field):
    data = sharded(2)
    change(data)
    path = write_yaml(tmp_path / "exp.yaml", data)
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"), "--workers", "1")
    assert proc.returncode == 2, proc.stderr
    assert f" {field}: " in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_scaleout_experiment_reduced(tmp_path):
    """experiments/scaleout_inference.yaml end to end at reduced size: every strategy runs,
    the single server is each line's first point, more shards cost more compute, bin
    packing asks as few shards as hold the tables, and the figure is drawn."""
    def shrink(data):
        data["workload"]["generator"]["batches"] = 6
        data["sweep"]["grid"] = {"system.sharding.shards": [0, 2, 8],
                                 "workload.generator.alpha": [1.1],
                                 "run.arrivals.mode": ["closed"]}
        data["sweep"]["exclude"] = [{"system.sharding.strategy": "one_table_per_shard",
                                     "system.sharding.shards": 2}]
        data["plots"] = data["plots"][:1]

    frame, out = reduced("scaleout_inference", tmp_path, shrink)
    assert (frame["status"] == "ok").all() and len(frame) == 11
    assert (out / "scaleout_inference.png").read_bytes().startswith(b"\x89PNG")
    by = frame.set_index(["case", "system.sharding.shards"])
    single = by.xs(0, level=1)
    assert single["latency_p99_us"].nunique() == 1 and single["compute_s_total"].nunique() == 1
    for case in ("capacity_balanced", "load_balanced"):
        assert by.loc[(case, 8), "compute_s_total"] > by.loc[(case, 2), "compute_s_total"] \
            > by.loc[(case, 0), "compute_s_total"]
        assert by.loc[(case, 8), "requests_per_query"] == 8
    # 768 MB of tables in two nets of 384 MB: two 512 MiB shards hold them, whatever is offered
    assert by.loc[("net_specific_bin_packing", 8), "requests_per_query"] == 2
    assert by.loc[("one_table_per_shard", 8), "tables_n7"] == 1


def test_load_balanced_sharding_reads_the_traces_profile(tmp_path):
    """Two tables of equal size, one read 20 times as often: balancing bytes and balancing
    load split the four tables differently, and the load split evens out the nodes' lookups."""
    tables = [{"rows": 2000, "dim": 16, "pooling": 40}, {"rows": 2000, "dim": 16, "pooling": 2},
              {"rows": 2000, "dim": 16, "pooling": 30}, {"rows": 2000, "dim": 16, "pooling": 2}]
    rows = {}
    for strategy in ("capacity_balanced", "load_balanced"):
        data = sharded(2, strategy, tables=tables)
        rows[strategy], _, _ = run(tmp_path, data, f"{strategy}.yaml")
    capacity, load = rows["capacity_balanced"].row, rows["load_balanced"].row
    # by bytes (all equal): tables 0, 2 on n0 and 1, 3 on n1 (most room first, in order)
    assert capacity["pooled_lookups_n0"] > 10 * capacity["pooled_lookups_n1"]
    # by load: table 0 (heaviest) on n0, table 2 on n1, then the light ones
    assert abs(load["pooled_lookups_n0"] - load["pooled_lookups_n1"]) < 0.5 * load["lookups"]
    assert load["lookups"] == capacity["lookups"]


def test_warm_caches_pass_through_the_nodes_caches(tmp_path):
    cache = {"tier": "llc", "size": "64 KiB", "ways": 4, "policy": "lru"}
    llc = {"capacity": "1 MiB", "bandwidth": "200 GB/s", "latency": "20 ns",
           "access_granularity": "64 B", "channels": 1, "interleave": "64 B"}
    hits, latency = {}, {}
    for warm in (False, True):
        nodes = {f"n{i}": node(memory={"llc": dict(llc), "dram": {**DRAM, "link": "direct"}},
                               compute={**COMPUTE, "tier": "llc"}, cache=dict(cache))
                 for i in range(2)}
        data = sharded(2, nodes=nodes)
        data["run"]["warm_caches"] = warm
        result, _, _ = run(tmp_path, data, f"warm{warm}.yaml")
        hits[warm] = result.row["cache_hits_n0"] + result.row["cache_hits_n1"]
        latency[warm] = result.row["latency_mean_us"]
    assert hits[True] > hits[False] and latency[True] < latency[False]


def test_a_nodes_sweep_runs_unchanged_on_ray(tmp_path):
    ray = pytest.importorskip("ray")
    from simulator.runs.runner import RunOptions, run_experiment
    data = sharded(2)
    data["sweep"] = {"grid": {"system.sharding.shards": [0, 2],
                              "system.sharding.strategy": ["capacity_balanced",
                                                           "load_balanced"]}}
    path = write_yaml(tmp_path / "ray.yaml", data)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        run_experiment(path, tmp_path / "ray", {}, RunOptions(executor="ray", workers=1,
                                                              progress=False))
    finally:
        ray.shutdown()
    run_experiment(path, tmp_path / "local", {}, RunOptions(workers=1, progress=False))
    import pandas as pd
    frames = [pd.read_parquet(tmp_path / name / "results.parquet").drop(columns=["wall_s"])
              for name in ("ray", "local")]
    assert (frames[1]["status"] == "ok").all() and len(frames[1]) == 4
    pd.testing.assert_frame_equal(frames[0], frames[1])


def test_a_nodes_memory_and_the_network_count_in_the_energy(tmp_path):
    nodes = {f"n{i}": node(memory={"dram": {**DRAM, "energy_per_bit": "10 pJ"}})
             for i in range(2)}
    data = sharded(2, nodes=nodes)
    data["system"]["links"]["net"]["energy_per_bit"] = "5 pJ"
    result, _, _ = run(tmp_path, data)
    row = result.row
    node_energy = row["energy_j_n0"] + row["energy_j_n1"]
    assert row["energy_j_n0"] > 0 and row["energy_j_n1"] > 0
    network = row["bytes_net"] * 8 * 5e-12
    main = row["energy_j_dram"] + row["energy_j_shards"]
    assert row["energy_uj_per_query"] == pytest.approx(
        (node_energy + network + main) * 1e6 / row["queries"], rel=1e-9)


def test_shards_hold_what_the_main_node_cannot(tmp_path):
    """Capacity-driven scale-out: a main node too small for the tables is refused as a single
    server and runs with the tables on its nodes."""
    data = sharded(2)
    data["system"]["memory"]["dram"]["capacity"] = "64 KiB"
    ok, _, _ = run(tmp_path, data, "ok.yaml")
    assert ok.row["queries"] == 3
    data["system"]["sharding"]["shards"] = 0
    path = write_yaml(tmp_path / "single.yaml", data)
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"), "--workers", "1")
    assert proc.returncode == 2 and "system.tables" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("strategy", "shards", "concurrency", "mode"), [
    ("capacity_balanced", 3, 2, "closed"), ("load_balanced", 4, 3, "open"),
    ("net_specific_bin_packing", 2, 4, "closed"), ("one_table_per_shard", 4, 2, "open")])
def test_every_run_keeps_the_invariants(tmp_path, strategy, shards, concurrency, mode):
    data = sharded(shards, strategy, batches=6, concurrency=concurrency)
    data["run"]["arrivals"] = {"mode": mode, "concurrency": concurrency, "qps": 50000}
    result, _, _ = run(tmp_path, data)            # the run checks its invariants itself
    row = result.row
    names = [n for n in data["system"]["nodes"] if f"requests_{n}" in row]
    assert sum(row[f"pooled_lookups_{n}"] for n in names) == row["lookups"]
    assert sum(row[f"tables_{n}"] for n in names) == len(TABLES)
    assert row["bytes_net"] == sum(row[f"request_bytes_{n}"] + row[f"response_bytes_{n}"]
                                   for n in names)
    assert (result.per_query["latency_us"] > 0).all()


def test_shards_without_nodes_are_refused(tmp_path):
    data = single()
    data["system"]["sharding"] = {"shards": 2}
    path = write_yaml(tmp_path / "exp.yaml", data)
    proc = embsim("run", str(path), "--out", str(tmp_path / "out"), "--workers", "1")
    assert proc.returncode == 2 and " system.sharding.shards: " in proc.stderr, proc.stderr


def test_the_main_nodes_dense_layers_count_in_the_compute(tmp_path):
    """The main node runs the dense stage beside its shards' requests: its layers' time adds
    to the cluster's compute once per query, however much of it hid behind the shards."""
    dense = {"bottom_mlp": [13, 64, 16], "top_mlp": [32, 1], "interaction": "cat",
             "params": {"peak_flops": 1e9, "layer_overhead": "1 us", "cache": "1 GiB"}}
    plain, _, _ = run(tmp_path, sharded(2), "a.yaml")
    data = sharded(2)
    data["system"]["dense"] = dense
    with_dense, _, _ = run(tmp_path, data, "b.yaml")
    alone = single()
    alone["system"]["dense"] = dense
    single_dense, _, _ = run(tmp_path, alone, "c.yaml")
    single_plain, _, _ = run(tmp_path, single(), "d.yaml")
    dense_s = single_dense.row["compute_s_total"] - single_plain.row["compute_s_total"]
    assert dense_s > 0
    assert with_dense.row["compute_s_total"] == pytest.approx(
        plain.row["compute_s_total"] + dense_s)
    assert with_dense.row["latency_mean_us"] >= plain.row["latency_mean_us"]


def test_cores_on_a_node_report_as_the_nodes_columns(tmp_path):
    """The nodes pool with their own cores; the main node pools nothing and keeps none."""
    data = sharded(2)
    for name in ("n0", "n1"):
        data["system"]["nodes"][name]["compute"]["cores"] = {"count": 2}
    data["system"]["compute"]["cores"] = {"count": 4}
    result, _, _ = run(tmp_path, data)
    row = result.row
    for name in ("n0", "n1"):
        assert row[f"core0_lookups_{name}"] + row[f"core1_lookups_{name}"] == \
            row[f"pooled_lookups_{name}"] > 0
    assert not any(column.endswith("_compute") and column.startswith("core")
                   for column in row)


def test_a_node_beyond_the_memory_limit_is_refused_naming_its_field(tmp_path, monkeypatch):
    from simulator.runs import runner
    monkeypatch.setattr(runner, "memory_limit", lambda: 4 * 2**20)     # a 4 MiB machine
    data = sharded(2)
    n1 = data["system"]["nodes"]["n1"]
    n1["memory"] = {"llc": {**DRAM, "capacity": "64 MiB"}, "dram": {**DRAM, "link": "direct"}}
    n1["compute"]["tier"] = "llc"
    n1["cache"] = {"tier": "llc", "size": "16 MiB", "ways": "full"}      # a 16 MiB row cache
    path = write_yaml(tmp_path / "exp.yaml", data)
    proc = embsim("run", str(path), "--dry-run", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "system.nodes.n1.cache.size" in proc.stderr, proc.stderr
    assert "limit is 4 MiB" in proc.stderr and not (tmp_path / "out").exists()
