"""The interface of row caches: the caches of embedding rows the engine filters a query through.

A kind of row cache is a class registered in ``ROW_CACHES`` under its YAML name, with

- ``options_model``: a pydantic model of its own options (unknown keys rejected), validated from
  the ``system.cache`` extras by ``parse_options``;
- ``needs_profile``: whether it needs ``frequency`` (accesses per global row from a profile of
  the trace). Such kinds have an option ``profile_batches`` (how many leading batches of the
  trace to profile; None: the whole trace);
- a constructor ``Kind(options, *, slots, table_rows, frequency, seed)``: ``slots`` is the
  capacity asked for in rows (a kind may round it; ``cache.slots`` is what it holds),
  ``table_rows`` the rows of each table (global row ids run table after table), ``seed`` the
  run's seed for kinds that draw random numbers.

``lookup(keys)`` serves one batch (all tables' global row ids, in order, repeats allowed) and
returns per key ``hit`` and ``slot``. The rule shared by every kind: ``hit[i]`` is False exactly
when key ``i`` is read from the backing tier: the first occurrence of a row the cache fills in
this batch (later occurrences of it hit), or every occurrence of a row served uncached (then
``slot[i] == -1``). ``hits + misses`` counts the keys looked up; ``counters()`` adds each
kind's own published statistics.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, ValidationError

from embsim.errors import InputError
from embsim.registry import Registry, submodules
from embsim.validation import first_problem

UNCACHED = -1  # slot of a key served from the backing tier without being cached


class CacheOptions(BaseModel):
    """Base of every kind's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class RowCache(ABC):
    """A cache of embedding rows looked up one batch at a time; keeps the running totals."""

    options_model: ClassVar[type[CacheOptions]]
    needs_profile: ClassVar[bool] = False

    slots: int

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Serve one batch of global row ids; returns (hit flags, slot of each key or -1)."""
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        if keys.size == 0:
            return np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.int64)
        hit, slot = self._serve(keys)
        hits = int(np.count_nonzero(hit))
        self.hits += hits
        self.misses += keys.size - hits
        return hit, slot

    @abstractmethod
    def _serve(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Serve a non-empty batch, updating the state and ``evictions``."""

    @classmethod
    def own_load_factor(cls, options: CacheOptions) -> float | None:
        """The share of all rows the kind's own options size it to (HugeCTR's ``fraction``),
        which then stands in for ``size``/``load_factor``; None when they do not."""
        return None

    @staticmethod
    def slots_for_load_factor(load_factor: float, total_rows: int) -> int:
        """Rows to ask for when the size is given as a fraction of all rows."""
        return max(1, int(np.ceil(load_factor * total_rows)))

    @classmethod
    def memory_bytes(cls, options: CacheOptions, slots: int, table_rows: np.ndarray) -> int:
        """Host bytes the kind's arrays take for ``slots`` rows over tables of ``table_rows``
        rows, at their peak while it is built or serves a batch, worked out without building
        it (the memory estimate before a run). Each kind gives its own arrays; this default
        is generous: 32 B per slot and 16 B per row of the key space."""
        return 32 * int(slots) + 16 * int(np.sum(table_rows))

    def counters(self) -> dict[str, int]:
        """The kind's own statistics (running totals), named as its published source names them."""
        return {}

    def preloaded(self) -> tuple[np.ndarray, np.ndarray]:
        """(slots, global rows) the cache held before its first lookup; none by default."""
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


ROW_CACHES: Registry[type[RowCache]] = Registry("row cache kind",
                                                 load=submodules("hwmodels.cache"))


def parse_options(kind: str, extras: dict[str, Any], *, source: str | None = None,
                  field: str = "system.cache") -> CacheOptions:
    """Validate ``extras`` (the kind's keys of the cache's section ``field``) against the
    kind's options."""
    cls = ROW_CACHES.get(kind, source=source, field=f"{field}.kind")
    try:
        return cls.options_model.model_validate(extras)
    except ValidationError as exc:
        known = ", ".join(cls.options_model.model_fields) or "none"
        where, message = first_problem(
            exc, f"unknown key for cache kind {kind!r} (its options: {known})")
        raise InputError(message, source=source, field=f"{field}.{where or 'kind'}") from None


def build_row_cache(kind: str, extras: dict[str, Any], *, slots: int, table_rows: np.ndarray,
                    frequency: np.ndarray | None = None, seed: int = 0,
                    source: str | None = None, field: str = "system.cache") -> RowCache:
    """Validate the options of ``kind`` and build the cache (``field``: its section)."""
    options = parse_options(kind, extras, source=source, field=field)
    cls = ROW_CACHES.get(kind, source=source, field=f"{field}.kind")
    if slots <= 0:
        raise InputError(f"cache must hold at least one row, got {slots} slots",
                         source=source, field=field)
    return cls(options, slots=slots, table_rows=np.asarray(table_rows, dtype=np.int64),
               frequency=frequency, seed=seed)


def require_frequency(frequency: np.ndarray | None, key_space: int, kind: str) -> np.ndarray:
    """The profile a kind needs, checked to cover every global row."""
    if frequency is None or len(frequency) != key_space:
        got = "none" if frequency is None else f"{len(frequency)} rows"
        raise ValueError(f"cache kind {kind!r} needs a frequency profile of all {key_space} "
                         f"rows, got {got}")
    return np.asarray(frequency, dtype=np.int64)


@njit(cache=True)
def _distinct_in_order(keys, position):
    """Distinct keys in first-occurrence order: (index of each one's first occurrence, distinct
    index of every key, count of each). ``position`` (all -1, one entry per key of the key
    space) is scratch, left all -1 again."""
    n = keys.size
    first = np.empty(n, dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    m = 0
    for i in range(n):
        j = position[keys[i]]
        if j < 0:
            j = m
            position[keys[i]] = m
            first[m] = i
            m += 1
        inverse[i] = j
        counts[j] += 1
    for j in range(m):
        position[keys[first[j]]] = -1
    return first[:m], inverse, counts[:m]


class BatchUniques:
    """``unique_keys`` in linear time for keys of a known key space (scratch kept here)."""

    BYTES_PER_KEY = 8
    """Its scratch, per row of the key space (for ``RowCache.memory_bytes``)."""

    def __init__(self, key_space: int):
        self.position = np.full(key_space, -1, dtype=np.int64)

    def __call__(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray]:
        """Distinct keys ascending, the position of each one's first occurrence, the inverse
        map (distinct index of every key) and each one's count in the batch: what
        ``np.unique`` returns, sorting only the distinct keys."""
        first, inverse, counts = _distinct_in_order(keys, self.position)
        order = np.argsort(keys[first], kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return keys[first][order], first[order], rank[inverse], counts[order]


def per_key(unique_slot: np.ndarray, was_cached: np.ndarray, first: np.ndarray,
            inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand per-distinct-row outcomes to per-key (hit, slot) by the rule of this module.

    ``unique_slot`` is where each distinct row is served from (-1: uncached), ``was_cached``
    whether it was in the cache before the batch.
    """
    slot = unique_slot[inverse]
    hit = slot >= 0
    filled = np.flatnonzero(~was_cached & (unique_slot >= 0))
    hit[first[filled]] = False
    return hit, slot
