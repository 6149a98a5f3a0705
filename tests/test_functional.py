"""The functional reference: real values through the data path, checked against torch."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import experiment

from embsim.errors import FunctionalMismatch
from simulator.core.functional import TOLERANCE, FunctionalReference
from simulator.core.query import Query
from simulator.core.workload import open_workload
from simulator.runs.experiment import load_points, run_point

pytest.importorskip("torch")


@pytest.mark.parametrize("pooling", ["sum", "mean"])
@pytest.mark.parametrize("cache", [
    {"tier": "hbm", "size": "2 KiB", "ways": 2, "policy": "lru"},     # evicts within batches
    {"tier": "hbm", "size": "16 KiB", "ways": "full", "policy": "lfu"},
    None,
])
def test_functional_run_matches_torch(write_experiment, pooling, cache):
    data = experiment(system__cache=cache, run__functional=True)
    data["system"]["compute"]["pooling"] = pooling
    data["workload"]["generator"].update(pooling_dist="normal", pooling_sigma=4)
    path = write_experiment(data)
    _, points = load_points(path, {})
    result = run_point(points[0], str(path))
    assert result.row["functional_checked_bags"] == 6 * 2 * 32


def test_local_tables_functional(write_experiment):
    path = write_experiment(experiment(system__cache=None, system__tables={"tier": "hbm"},
                                       run__functional=True))
    _, points = load_points(path, {})
    assert run_point(points[0], str(path)).row["functional_checked_bags"] == 6 * 64


def test_wrong_slot_bookkeeping_fails_loudly(write_experiment):
    """If the cache reported a hit in a slot that holds another row, the check must fail."""
    path = write_experiment(experiment())
    _, points = load_points(path, {})
    meta, batches = open_workload(points[0].config.workload, str(path))
    batch = next(batches())
    rows = batch.global_rows(meta.row_base)
    reference = FunctionalReference(meta, seed=0, pooling="sum", cache_slots=rows.size)
    q = looked_up(batch, rows, hit=np.zeros(rows.size, dtype=bool), slot=np.arange(rows.size))
    reference.check(q)                               # correct: every lookup fills its own slot
    q = looked_up(batch, rows, hit=np.ones(rows.size, dtype=bool),
                  slot=np.roll(np.arange(rows.size), 1))   # claims hits in other rows' slots
    with pytest.raises(FunctionalMismatch, match="differs from torch"):
        reference.check(q)


def test_partial_sums_of_several_units_combine_to_the_bag(write_experiment):
    """Any split of a bag's lookups between units (partial sums added at the host, the mean
    taken after) pools to what torch's embedding_bag gives; a lost partial vector does not."""
    path = write_experiment(experiment())
    _, points = load_points(path, {})
    meta, batches = open_workload(points[0].config.workload, str(path))
    batch = next(batches())
    rows = batch.global_rows(meta.row_base)
    for pooling in ("sum", "mean"):
        reference = FunctionalReference(meta, seed=0, pooling=pooling, cache_slots=None)
        split = np.random.default_rng(1).integers(0, 3, rows.size)
        reference.check(looked_up(batch, rows, unit=split))
        lost = looked_up(batch, rows, unit=split)
        lost.partial_bags[2] = lost.partial_bags[2][1:]     # one partial never reaches the host
        with pytest.raises(FunctionalMismatch):
            reference.check(lost)


def looked_up(batch, rows, hit=None, slot=None, unit=None) -> Query:
    """A query over ``batch`` with the cache's and the assignment's findings given."""
    n = rows.size
    q = Query(id=0, batch=batch, arrival_s=0.0, global_rows=rows, row_bytes=np.zeros(n),
              state_bytes=np.zeros(n), tier=np.zeros(n, dtype=np.int64),
              home_addresses=np.zeros(n, dtype=np.int64))
    q.hit = np.zeros(n, dtype=bool) if hit is None else hit
    q.slot = np.full(n, -1, dtype=np.int64) if slot is None else slot
    q.unit = np.zeros(n, dtype=np.int64) if unit is None else unit
    bags = q.bags()
    q.partial_bags = {int(u): np.unique(bags[q.unit == u]) for u in np.unique(q.unit) if u}
    return q


DTYPES = ["float32", "float64", "float16", "bfloat16", "int8"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("pooling", "weighted"), [("sum", False), ("mean", False),
                                                   ("sum", True)])
def test_every_dtype_pools_as_torch_within_its_tolerance(write_experiment, dtype, pooling,
                                                         weighted):
    """Stored rows of each dtype, split between two units (a near-memory unit holds half the
    rows), pooled with and without per-sample weights: equal to torch within TOLERANCE."""
    data = experiment(run__functional=True)
    data["system"]["compute"]["pooling"] = pooling
    generator = data["workload"]["generator"]
    generator.update(pooling_dist="normal", pooling_sigma=20, pooling=60, weighted=weighted)
    generator["tables"] = [{"rows": 5000, "dim": 16, "dtype": dtype},
                           {"rows": 3000, "dim": 40, "dtype": dtype}]
    data["system"]["memory"]["far"] = {**data["system"]["memory"]["dram"], "link": "pcie"}
    data["system"]["tables"] = {"tier": ["dram", "far"], "link": "pcie",
                                "placement": "hot_rows", "budget": {"dram": "200 KiB"}}
    data["system"]["units"] = {"nmp": {"kind": "near_memory", "tier": "far"}}
    data["system"]["cache"]["caches"] = ["dram"]
    path = write_experiment(data)
    _, points = load_points(path, {})
    row = run_point(points[0], str(path)).row
    assert row["functional_checked_bags"] == 6 * 2 * 32
    assert row["pooled_lookups_nmp"] > 0 and row["pooled_lookups_compute"] > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_stated_tolerance_is_tight_and_catches_a_wrong_dequantization(write_experiment,
                                                                         dtype):
    """The data path's error against torch stays within a quarter of TOLERANCE on 150-row
    bags; a row read without its dequantization (int8: without the bias) does not."""
    data = experiment(system__cache=None)
    data["workload"]["generator"].update(pooling=150, weighted=True)
    data["workload"]["generator"]["tables"] = [{"rows": 5000, "dim": 16, "dtype": dtype}]
    path = write_experiment(data)
    _, points = load_points(path, {})
    meta, batches = open_workload(points[0].config.workload, str(path))
    reference = FunctionalReference(meta, seed=0, pooling="sum", cache_slots=None)
    batch = next(batches())
    rows = batch.global_rows(meta.row_base)
    q = looked_up(batch, rows)
    error = np.abs(reference.pooled(q)[:, :16] - reference.reference(0, batch, 0,
                                                                     rows.size)).max()
    scale = np.abs(reference.reference(0, batch, 0, rows.size)).max()
    assert error <= TOLERANCE[dtype] * (1 + scale) / 4
    if dtype == "int8":
        stored = reference.weights[0].numpy()
        reference.values[:, :16] = stored[:, :16] * stored[:, 16:20].copy().view(np.float32)
        with pytest.raises(FunctionalMismatch):
            reference.check(q)
