"""LRU miss-ratio curves in one pass, from stack distances (Mattson et al., 1970).

The stack distance of an access is the number of distinct other keys touched since the
previous access to the same key; a fully associative LRU cache of C entries hits exactly the
accesses with distance < C, so one pass gives the hit rate at every capacity. Distances come
from a Fenwick (binary indexed) tree over access positions holding a 1 at each key's most
recent access: the distance is the number of 1s after that position. When the positions run
out the live markers are renumbered 0..U-1 in order (compaction), so the tree stays O(U) for U
distinct keys, however long the trace. Keys index a dense ``last access`` array, so memory is
8 bytes per possible key plus O(U).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numba import njit

from traces.batch import Batch
from traces.schema import TraceMeta

MIN_POSITIONS = 1 << 16


@njit(cache=True)
def _fenwick_add(tree: np.ndarray, position: int, delta: int) -> None:
    i = position + 1
    while i < tree.size:
        tree[i] += delta
        i += i & -i


@njit(cache=True)
def _fenwick_prefix(tree: np.ndarray, count: int) -> int:
    """Sum of the markers at positions [0, count)."""
    total = 0
    i = count
    while i > 0:
        total += tree[i]
        i -= i & -i
    return total


@njit(cache=True)
def _fenwick_fill(tree: np.ndarray, ones: int) -> None:
    """Rebuild ``tree`` in O(size) with markers at positions [0, ones) and nowhere else."""
    tree[:] = 0
    tree[1: ones + 1] = 1
    for i in range(1, tree.size):
        parent = i + (i & -i)
        if parent < tree.size:
            tree[parent] += tree[i]


@njit(cache=True)
def _access(keys: np.ndarray, last: np.ndarray, tree: np.ndarray, key_at: np.ndarray,
            now: int, histogram: np.ndarray) -> int:
    """Record ``keys`` at positions now, now+1, ...; returns the count of first accesses."""
    cold = 0
    for i in range(keys.size):
        key = keys[i]
        previous = last[key]
        if previous < 0:
            cold += 1
        else:
            distance = _fenwick_prefix(tree, now) - _fenwick_prefix(tree, previous + 1)
            histogram[distance] += 1
            _fenwick_add(tree, previous, -1)
        _fenwick_add(tree, now, 1)
        last[key] = now
        key_at[now] = key
        now += 1
    return cold


@njit(cache=True)
def _compact(last: np.ndarray, key_at: np.ndarray, now: int) -> int:
    """Renumber the live markers 0..U-1 in access order; returns U."""
    live = 0
    for position in range(now):
        key = key_at[position]
        if last[key] == position:
            key_at[live] = key
            last[key] = live
            live += 1
    return live


class StackDistanceMRC:
    """Streaming LRU stack-distance histogram over integer keys in ``[0, key_space)``.

    ``histogram[d]`` counts accesses at stack distance d; ``cold`` counts first accesses, which
    miss at every capacity. ``min_positions`` is the initial position space of the Fenwick
    tree (compaction happens each time it fills; small values exercise compaction in tests).
    """

    def __init__(self, key_space: int, *, min_positions: int = MIN_POSITIONS):
        self.key_space = int(key_space)
        self.accesses = 0
        self.cold = 0
        self._last = np.full(self.key_space, -1, dtype=np.int64)
        self._histogram = np.zeros(0, dtype=np.int64)
        self._now = 0
        self._resize_positions(max(1, min_positions), live=0)

    @property
    def unique_keys(self) -> int:
        return self.cold

    @property
    def histogram(self) -> np.ndarray:
        """Accesses per stack distance, index d = distance (length = largest distance + 1)."""
        nonzero = np.flatnonzero(self._histogram)
        return self._histogram[: nonzero[-1] + 1 if nonzero.size else 0].copy()

    def update(self, keys: np.ndarray) -> None:
        """Record ``keys`` as the next accesses, in order."""
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        if keys.size == 0:
            return
        if keys.min() < 0 or keys.max() >= self.key_space:
            raise ValueError(f"keys must lie in [0, {self.key_space})")
        self._grow_histogram(min(self.cold + keys.size, self.key_space))
        done = 0
        while done < keys.size:
            if self._now == self._key_at.size:
                self._make_room()
            step = min(keys.size - done, self._key_at.size - self._now)
            self.cold += _access(keys[done: done + step], self._last, self._tree,
                                 self._key_at, self._now, self._histogram)
            self._now += step
            done += step
        self.accesses += keys.size

    def hit_rates(self, capacities: np.ndarray) -> np.ndarray:
        """Hit rate of a fully associative LRU cache of each capacity (in keys)."""
        capacities = np.asarray(capacities, dtype=np.int64)
        if self.accesses == 0:
            return np.zeros(capacities.shape)
        hits_within = np.concatenate([[0], np.cumsum(self._histogram)])
        index = np.clip(capacities, 0, self._histogram.size)
        return hits_within[index] / self.accesses

    def _grow_histogram(self, needed: int) -> None:
        """Room for every distance possible so far: less than the distinct keys seen."""
        if needed > self._histogram.size:
            grown = np.zeros(min(max(needed, 2 * self._histogram.size), self.key_space),
                             dtype=np.int64)
            grown[: self._histogram.size] = self._histogram
            self._histogram = grown

    def _make_room(self) -> None:
        """Compact the markers; grow the position space if it would stay over half full."""
        live = _compact(self._last, self._key_at, self._now)
        size = self._key_at.size
        if live > size // 2:
            self._resize_positions(4 * live, live)
        else:
            _fenwick_fill(self._tree, live)
        self._now = live

    def _resize_positions(self, size: int, live: int) -> None:
        key_at = np.zeros(size, dtype=np.int64)
        if live:
            key_at[:live] = self._key_at[:live]
        self._key_at = key_at
        self._tree = np.zeros(size + 1, dtype=np.int64)
        _fenwick_fill(self._tree, live)


def default_capacities(unique_rows: int, points: int = 20) -> np.ndarray:
    """About ``points`` log-spaced capacities from 1 row to ``unique_rows``."""
    if unique_rows <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.geomspace(1, unique_rows, points).round().astype(np.int64))


def lru_mrc(meta: TraceMeta, batches: Iterable[Batch],
            capacities: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Capacities (rows) and LRU hit rates over all tables' rows, as one shared cache.

    Keys are global row ids (``Batch.global_rows``), accessed batch after batch in
    ``indices`` order. Without ``capacities``, about 20 log-spaced sizes up to the number of
    distinct rows are used.
    """
    mrc = StackDistanceMRC(meta.total_rows)
    row_base = meta.row_base
    for batch in batches:
        mrc.update(batch.global_rows(row_base))
    if capacities is None:
        capacities = default_capacities(mrc.unique_keys)
    capacities = np.asarray(capacities, dtype=np.int64)
    return capacities, mrc.hit_rates(capacities)
