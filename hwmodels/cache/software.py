"""A software-managed cache of embedding rows in front of a memory tier.

The cache holds ``slots`` rows (a slot fits the widest row), organised as ``slots / ways`` sets
of ``ways`` lines, or fully associative when ``ways`` is None. Keys are global row ids in
``[0, key_space)``. Lookups go through compiled kernels; the class keeps the state and counts.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from embsim.errors import InputError
from embsim.limits import MAX_WAYS, count
from hwmodels.cache import kernels
from hwmodels.cache.policies import score_policy
from hwmodels.cache.row_cache import ROW_CACHES, CacheOptions, RowCache


class SoftwareCache:
    """Set-associative or fully associative row cache with a replacement policy by name."""

    def __init__(self, slots: int, ways: int | None, policy: str, key_space: int):
        if slots <= 0:
            raise InputError(f"cache must hold at least one row, got {slots} slots",
                             field="system.cache")
        self.policy = score_policy(policy, field="system.cache.policy")
        self.rule = np.array(self.policy.score_rule, dtype=np.int64)
        self.fully_associative = ways is None or ways >= slots
        self.ways = slots if self.fully_associative else int(ways)
        self.num_sets = 1 if self.fully_associative else -(-slots // self.ways)
        self.slots = self.num_sets * self.ways
        self.tags = np.full(self.slots, kernels.EMPTY, dtype=np.int64)
        self.scores = np.zeros(self.slots, dtype=np.int64)
        if self.fully_associative:
            self.slot_of_key = np.full(key_space, kernels.EMPTY, dtype=np.int64)
            self.heap = np.zeros(self.slots, dtype=np.int64)
            self.pos = np.zeros(self.slots, dtype=np.int64)
            self.used = 0
        self.stamp = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Look up ``keys`` in order, filling misses; returns (hit flags, slot of each key)."""
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        hit = np.empty(keys.size, dtype=np.bool_)
        slot = np.empty(keys.size, dtype=np.int64)
        if self.fully_associative:
            evicted, self.stamp, self.used = kernels.lookup_fully_associative(
                keys, self.tags, self.scores, self.slot_of_key, self.heap, self.pos, self.used,
                self.stamp, self.rule, hit, slot)
        else:
            evicted, self.stamp = kernels.lookup_set_associative(
                keys, self.tags, self.scores, self.num_sets, self.ways, self.stamp, self.rule,
                hit, slot)
        hits = int(np.count_nonzero(hit))
        self.hits += hits
        self.misses += keys.size - hits
        self.evictions += evicted
        return hit, slot

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class SoftwareOptions(CacheOptions):
    """``ways``: lines per set (``full``: fully associative); ``policy``: a score policy of
    ``hwmodels.cache.policies`` (lru, fifo, lfu)."""

    ways: count(MAX_WAYS) | Literal["full"] = 32
    policy: str = "lru"


@ROW_CACHES.register("software")
class SoftwareRowCache(RowCache):
    """``SoftwareCache`` behind the row-cache interface (kind ``software``)."""

    options_model = SoftwareOptions

    def __init__(self, options: SoftwareOptions, *, slots: int, table_rows: np.ndarray,
                 frequency: np.ndarray | None = None, seed: int = 0):
        super().__init__()
        ways = None if options.ways == "full" else options.ways
        self.cache = SoftwareCache(slots, ways, options.policy, int(np.sum(table_rows)))
        self.slots = self.cache.slots

    @classmethod
    def memory_bytes(cls, options: CacheOptions, slots: int, table_rows: np.ndarray) -> int:
        """Tags and scores per slot (sets rounded up to whole sets of ``ways``); fully
        associative adds a heap and its positions per slot and a slot per row of the key
        space."""
        assert isinstance(options, SoftwareOptions)
        ways = None if options.ways == "full" else int(options.ways)
        if ways is None or ways >= slots:
            return 32 * int(slots) + 8 * int(np.sum(table_rows))
        return 16 * -(-int(slots) // ways) * ways

    def _serve(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        evicted_before = self.cache.evictions
        hit, slot = self.cache.lookup(keys)
        self.evictions += self.cache.evictions - evicted_before
        return hit, slot
