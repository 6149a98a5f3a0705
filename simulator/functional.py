"""Functional reference: carry real values through the simulated data path, check with torch.

With ``run.functional: true`` the run materialises every table with seeded values, keeps a copy
of each cached row in its cache slot, reads each lookup's row from where the simulated path says
it is (the slot on a hit, the table on a miss, which also fills the slot), pools the bags and
compares them with ``torch.nn.functional.embedding_bag``. A mismatch raises
``FunctionalMismatch``: it means the simulator's data path (e.g. cache slot bookkeeping) is
wrong. Values are float32 whatever the tables' storage dtype.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from embsim.errors import FunctionalMismatch, InputError
from embsim.units import format_size
from traces.batch import Batch
from traces.schema import TraceMeta

MAX_TABLE_BYTES = 2 * 2**30


@njit(cache=True)
def _read_through_cache(values, store, global_rows, hit, slot, out):
    """Row values as the cached data path delivers them, lookup by lookup, in order (slot -1:
    read from the table without caching)."""
    for i in range(global_rows.size):
        if slot[i] < 0:
            out[i] = values[global_rows[i]]
            continue
        if not hit[i]:
            store[slot[i]] = values[global_rows[i]]
        out[i] = store[slot[i]]


@njit(cache=True)
def _pool_bags(rows, offsets, mean, out):
    """Sum (or mean) of each bag's rows; empty bags pool to zero, as in torch."""
    for bag in range(offsets.size - 1):
        start, stop = offsets[bag], offsets[bag + 1]
        for i in range(start, stop):
            out[bag] += rows[i]
        if mean and stop > start:
            out[bag] /= stop - start


def _torch():
    try:
        import torch
    except ImportError:
        raise InputError("run.functional: true needs PyTorch: pip install 'embsim[torch]'",
                         field="run.functional") from None
    return torch


class FunctionalReference:
    """Seeded table values, cache slot contents and the comparison with torch."""

    def __init__(self, meta: TraceMeta, seed: int, pooling: str, cache_slots: int | None):
        self.torch = _torch()
        needed = meta.total_rows * max(t.dim for t in meta.tables) * 4
        if needed > MAX_TABLE_BYTES:
            raise InputError(
                f"functional check would materialise {format_size(needed)} of tables (limit "
                f"{format_size(MAX_TABLE_BYTES)}); use smaller tables", field="run.functional")
        self.meta = meta
        self.mean = pooling == "mean"
        self.max_dim = max(t.dim for t in meta.tables)
        rng = np.random.default_rng(seed)
        self.values = np.zeros((meta.total_rows, self.max_dim), dtype=np.float32)
        base = meta.row_base
        for t, table in enumerate(meta.tables):
            self.values[base[t]:base[t + 1], :table.dim] = rng.standard_normal(
                (table.rows, table.dim), dtype=np.float32)
        self.store = (np.zeros((cache_slots, self.max_dim), dtype=np.float32)
                      if cache_slots else None)
        self.checked_bags = 0

    def pooled(self, batch: Batch, global_rows: np.ndarray, hit: np.ndarray | None,
               slot: np.ndarray | None) -> np.ndarray:
        """Pooled bags (T*B, max_dim) computed from the rows the data path delivered."""
        if self.store is None:
            rows = self.values[global_rows]
        else:
            rows = np.empty((global_rows.size, self.max_dim), dtype=np.float32)
            _read_through_cache(self.values, self.store, global_rows, hit, slot, rows)
        out = np.zeros((batch.offsets.size - 1, self.max_dim), dtype=np.float32)
        _pool_bags(rows, batch.offsets, self.mean, out)
        return out

    def check(self, batch: Batch, global_rows: np.ndarray, hit: np.ndarray | None,
              slot: np.ndarray | None) -> None:
        """Compare the data path's pooled bags with torch's ``embedding_bag``, table by table."""
        torch = self.torch
        pooled = self.pooled(batch, global_rows, hit, slot)
        B = batch.batch_size
        base = self.meta.row_base
        for t, table in enumerate(self.meta.tables):
            lo, hi = batch.offsets[t * B], batch.offsets[(t + 1) * B]
            weight = torch.from_numpy(self.values[base[t]:base[t + 1], :table.dim])
            expected = torch.nn.functional.embedding_bag(
                torch.from_numpy(batch.indices[lo:hi]), weight,
                torch.from_numpy(batch.offsets[t * B:(t + 1) * B] - lo),
                mode="mean" if self.mean else "sum").numpy()
            got = pooled[t * B:(t + 1) * B, :table.dim]
            if not np.allclose(got, expected, rtol=1e-4, atol=1e-4):
                bag = int(np.argmax(np.abs(got - expected).max(axis=1)))
                raise FunctionalMismatch(
                    f"batch {batch.index}, table {t}, bag {bag}: simulated pooling "
                    f"{got[bag][:4]}... differs from torch embedding_bag {expected[bag][:4]}...")
        self.checked_bags += batch.offsets.size - 1
