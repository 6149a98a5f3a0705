"""The functional reference: real values through the data path, checked against torch."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import experiment

from embsim.errors import FunctionalMismatch
from simulator.core.functional import FunctionalReference
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
    with pytest.raises(FunctionalMismatch, match="differs from torch embedding_bag"):
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
