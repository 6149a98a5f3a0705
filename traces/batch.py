"""A batch of lookups in FBGEMM's table-batched-embedding (TBE) layout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    """One batch: B samples, each with one bag of rows per table.

    ``indices`` holds every looked-up row (int64), table-major: all bags of table 0, then of
    table 1, and so on. ``offsets`` (int64, length T*B + 1) delimits the bags: bag ``b`` of
    table ``t`` is ``indices[offsets[t*B + b] : offsets[t*B + b + 1]]``. Row ids are local to
    their table. ``ts_ns`` optionally gives each lookup's timestamp, ``weights`` its per-sample
    weight (float32: a weighted bag pools ``weight x row``, as ``per_sample_weights`` does in
    torch's ``embedding_bag``).
    """

    index: int
    indices: np.ndarray
    offsets: np.ndarray
    num_tables: int
    batch_size: int
    ts_ns: np.ndarray | None = None
    weights: np.ndarray | None = None

    @property
    def num_lookups(self) -> int:
        return int(self.indices.size)

    def lengths(self) -> np.ndarray:
        """Pooling factor of every bag, shape (T, B)."""
        return np.diff(self.offsets).reshape(self.num_tables, self.batch_size)

    def table_bounds(self) -> np.ndarray:
        """Start of each table's indices in ``indices`` (length T + 1)."""
        return self.offsets[:: self.batch_size]

    def table_of_lookup(self) -> np.ndarray:
        """The table of each lookup (int64, same length as ``indices``)."""
        counts = np.diff(self.table_bounds())
        return np.repeat(np.arange(self.num_tables, dtype=np.int64), counts)

    def global_rows(self, row_base: np.ndarray) -> np.ndarray:
        """Row ids made unique across tables by adding each table's first global row id."""
        return self.indices + np.repeat(row_base[:-1], np.diff(self.table_bounds()))
