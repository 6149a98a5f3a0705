"""Functional reference: carry real values through the simulated data path, check with torch.

With ``run.functional: true`` the run materialises every table with seeded values and stores
them in the table's dtype (float32, float64, float16, bfloat16, or int8 as FBGEMM's fused 8-bit
row-wise rows: bytes, a float32 scale and a float32 bias, packed by torch's own
``embedding_bag_byte_prepack``). The data path reads each row as stored and dequantizes it
(``q x scale + bias`` for int8), from where the simulated path says it is (the cache slot on a
hit, the table on a miss, which also fills the slot); every compute unit sums its share (times
its per-sample weight, when the batch has weights) into one float32 partial vector per bag;
the host adds the partials the units report sending (and divides by the bag's length for mean
pooling). The result must equal torch: ``torch.nn.functional.embedding_bag`` on the stored
weights (``per_sample_weights``), or ``torch.ops.quantized.embedding_bag_byte_rowwise_offsets``
for int8, within ``TOLERANCE[dtype]``. A mismatch raises ``FunctionalMismatch``: the
simulator's data path (cache slot bookkeeping, the split between units) is wrong.

Tolerances (``atol = rtol = TOLERANCE``): float32, float64 and int8 ``1e-4``: both sides add
the same float32 values in different orders; float16 ``1e-2`` and bfloat16 ``5e-2``: torch adds
in the stored type and rounds the result to it (2^-11 and 2^-8 relative), the data path adds in
float32, as FBGEMM's kernels and near-memory units do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from embsim.errors import FunctionalMismatch, InputError
from embsim.units import format_size
from simulator.core.query import Query
from traces.batch import Batch
from traces.schema import TraceMeta

MAX_TABLE_BYTES = 2 * 2**30


@njit(cache=True)
def _read_through_cache(values, store, store_row, global_rows, hit, slot, saved_at, saved_prev,
                        saved_row, saved_value, out):
    """Row values as the cached data path delivers them, lookup by lookup, in order.

    A miss fills its slot; slot -1 reads the table without caching. A hit reads its slot; if a
    fill of this same batch has since replaced the row there, the hit reads the row as that
    slot held it earlier in the batch (caches that look a whole batch up before filling it, as
    HugeCTR's HPS does, serve the batch from those values); a hit on a slot that never held its
    row delivers NaN, which fails the comparison.
    """
    saved = 0
    for i in range(global_rows.size):
        row, s = global_rows[i], slot[i]
        if s < 0:
            out[i] = values[row]
        elif not hit[i]:
            saved_row[saved] = store_row[s]              # what the slot held until now
            saved_value[saved] = store[s]
            saved_prev[saved] = saved_at[s] - 1
            saved += 1
            saved_at[s] = saved
            store[s] = values[row]
            store_row[s] = row
            out[i] = store[s]
        elif store_row[s] == row:
            out[i] = store[s]
        else:
            out[i] = np.nan
            k = saved_at[s] - 1
            while k >= 0:
                if saved_row[k] == row:
                    out[i] = saved_value[k]
                    break
                k = saved_prev[k]
    for i in range(global_rows.size):
        if slot[i] >= 0:
            saved_at[slot[i]] = 0


TOLERANCE = {"float32": 1e-4, "float64": 1e-4, "int8": 1e-4, "float16": 1e-2,
             "bfloat16": 5e-2}
"""Absolute and relative tolerance of the comparison with torch, by the table's dtype."""


@njit(cache=True)
def _pool_bags(rows, weights, offsets, unit, units, mean, out):
    """Each unit's partial sum of each bag's rows times their weights (``unit``: who pools
    each lookup), added into the bag's output; then the mean, if asked. Empty bags pool to
    zero, as in torch."""
    partial = np.zeros((units, rows.shape[1]), dtype=rows.dtype)
    for bag in range(offsets.size - 1):
        start, stop = offsets[bag], offsets[bag + 1]
        partial[:] = 0
        for i in range(start, stop):
            partial[unit[i]] += weights[i] * rows[i]
        for u in range(units):
            out[bag] += partial[u]
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

    def __init__(self, meta: TraceMeta, seed: int, pooling: str, cache_slots: int | None,
                 preloaded: tuple[np.ndarray, np.ndarray] | None = None):
        """``preloaded``: (slots, global rows) a cache holds before the run."""
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
        """Each row as the data path reads it: the stored row, dequantized to float32."""
        self.weights = []
        """Each table as torch's reference reads it (the stored form)."""
        base = meta.row_base
        for t, table in enumerate(meta.tables):
            stored, read = self._store(rng.standard_normal((table.rows, table.dim),
                                                           dtype=np.float32), table.dtype)
            self.weights.append(stored)
            self.values[base[t]:base[t + 1], :table.dim] = read
        self.store = (np.zeros((cache_slots, self.max_dim), dtype=np.float32)
                      if cache_slots else None)
        self.store_row = np.full(cache_slots or 0, -1, dtype=np.int64)
        self.saved_at = np.zeros(cache_slots or 0, dtype=np.int64)
        if self.store is not None and preloaded is not None:
            slots, rows = preloaded
            self.store[slots] = self.values[rows]
            self.store_row[slots] = rows
        self.checked_bags = 0

    def _store(self, values: np.ndarray, dtype: str) -> tuple[Any, np.ndarray]:
        """(the table in its stored form for torch, its rows as the data path reads them)."""
        torch = self.torch
        weight = torch.from_numpy(values)
        if dtype == "int8":
            packed = torch.ops.quantized.embedding_bag_byte_prepack(weight)
            raw = packed.numpy()
            dim = values.shape[1]
            scale = raw[:, dim:dim + 4].copy().view(np.float32)
            bias = raw[:, dim + 4:dim + 8].copy().view(np.float32)
            return packed, raw[:, :dim] * scale + bias
        if dtype in ("float16", "bfloat16", "float64"):
            stored = weight.to(getattr(torch, dtype))
            return stored, stored.to(torch.float32).numpy()
        return weight, values

    def delivered(self, q: Query) -> np.ndarray:
        """Each lookup's row values as the data path delivered them (through the cache)."""
        if self.store is None:
            return self.values[q.global_rows]
        rows = np.empty((q.global_rows.size, self.max_dim), dtype=np.float32)
        filled = int(np.count_nonzero(~q.hit & (q.slot >= 0)))
        _read_through_cache(self.values, self.store, self.store_row, q.global_rows, q.hit,
                            q.slot, self.saved_at, np.empty(filled, dtype=np.int64),
                            np.empty(filled, dtype=np.int64),
                            np.empty((filled, self.max_dim), dtype=np.float32), rows)
        return rows

    def pooled(self, q: Query) -> np.ndarray:
        """Pooled bags (T*B, max_dim): each unit's partial sums of the rows it was given, of
        the bags it reported to the host (``Query.partial_bags``; the host's own always
        count), combined."""
        rows = self.delivered(q)
        unit = np.ascontiguousarray(q.unit, dtype=np.int64)
        units = int(unit.max()) + 1 if unit.size else 1
        if q.partial_bags or units > 1:
            sent = np.zeros((units, q.batch.offsets.size - 1), dtype=bool)
            for index, bags in q.partial_bags.items():
                sent[index, bags] = True
            sent[0] = True
            rows = np.where(sent[unit, q.bags()][:, None], rows, np.float32(0))
        weights = q.batch.weights
        if weights is None:
            weights = np.ones(rows.shape[0], dtype=np.float32)
        out = np.zeros((q.batch.offsets.size - 1, self.max_dim), dtype=np.float32)
        _pool_bags(rows, weights, q.batch.offsets, unit, units, self.mean, out)
        return out

    def warm(self, q: Query) -> None:
        """Follow a warm-up pass's cache fills in the copy of the cache."""
        self.delivered(q)

    def check(self, q: Query) -> None:
        """Compare the data path's pooled bags with torch's, table by table."""
        batch = q.batch
        pooled = self.pooled(q)
        B = batch.batch_size
        for t, table in enumerate(self.meta.tables):
            lo, hi = batch.offsets[t * B], batch.offsets[(t + 1) * B]
            expected = self.reference(t, batch, lo, hi)
            got = pooled[t * B:(t + 1) * B, :table.dim]
            tolerance = TOLERANCE[table.dtype]
            if not np.allclose(got, expected, rtol=tolerance, atol=tolerance):
                bag = int(np.argmax(np.abs(got - expected).max(axis=1)))
                raise FunctionalMismatch(
                    f"batch {batch.index}, table {t} ({table.dtype}), bag {bag}: simulated "
                    f"pooling {got[bag][:4]}... differs from torch {expected[bag][:4]}...")
        self.checked_bags += batch.offsets.size - 1

    def reference(self, t: int, batch: Batch, lo: int, hi: int) -> np.ndarray:
        """Table ``t``'s pooled bags of ``batch`` (its lookups ``lo:hi``) as torch computes
        them from the stored weights: float32, (T*B rows) x dim."""
        torch = self.torch
        B = batch.batch_size
        indices = torch.from_numpy(batch.indices[lo:hi])
        offsets = torch.from_numpy(batch.offsets[t * B:(t + 1) * B] - lo)
        stored = self.weights[t]
        weights = (None if batch.weights is None
                   else torch.from_numpy(batch.weights[lo:hi]))
        if self.meta.tables[t].dtype == "int8":
            # its sum mode: the quantized op's mean mode returns sums (torch 2.13)
            out = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
                stored, indices, offsets, mode=0, per_sample_weights=weights,
                include_last_offset=False)
            if self.mean:
                lengths = np.diff(batch.offsets[t * B:(t + 1) * B + 1]).astype(np.float32)
                out = out / torch.from_numpy(np.maximum(lengths, 1))[:, None]
        else:
            out = torch.nn.functional.embedding_bag(
                indices, stored, offsets, mode="mean" if self.mean else "sum",
                per_sample_weights=None if weights is None else weights.to(stored.dtype))
        return out.to(torch.float32).numpy()
