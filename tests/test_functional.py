"""The functional reference: real values through the data path, checked against torch."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import experiment

from embsim.errors import FunctionalMismatch
from simulator.experiment import load_points, run_point
from simulator.functional import FunctionalReference
from simulator.workload import open_workload

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
    slot = np.arange(rows.size)
    hit = np.zeros(rows.size, dtype=bool)
    reference.check(batch, rows, hit, slot)          # correct: every lookup fills its own slot
    hit[:] = True
    slot = np.roll(slot, 1)                          # claims hits in slots of other rows
    with pytest.raises(FunctionalMismatch, match="differs from torch embedding_bag"):
        reference.check(batch, rows, hit, slot)
