"""Static hot-row pinning, kind ``pinned``.

The ``slots`` most frequent rows of a profile of the trace's first ``profile_batches`` batches
(the whole trace when None) are placed in the fast tier before the run, in descending order of
frequency (slot 0 the hottest; equal counts: lower row id first); rows never seen in the
profile are not pinned. A pinned row always hits; every other row is read from the backing
tier (slot -1) and never cached, so there are no fills and no evictions. This is the static
placement of hot rows by profiled frequency used by software-defined-memory tiering studies and
by "static" baselines of GPU embedding cache comparisons.

Counters: ``pinned_rows`` (rows placed), ``unpinned_keys`` (keys read from the backing tier).
"""

from __future__ import annotations

import numpy as np

from embsim.limits import MAX_BATCHES, count
from hwmodels.cache.row_cache import (
    ROW_CACHES,
    UNCACHED,
    CacheOptions,
    RowCache,
    require_frequency,
)


class PinnedOptions(CacheOptions):
    """``profile_batches``: leading batches of the trace that give the frequency profile
    (None: the whole trace, an oracle placement)."""

    profile_batches: count(MAX_BATCHES) | None = None


@ROW_CACHES.register("pinned")
class PinnedCache(RowCache):
    """The top rows of a frequency profile, pinned; see the module docstring."""

    options_model = PinnedOptions
    needs_profile = True

    def __init__(self, options: PinnedOptions, *, slots: int, table_rows: np.ndarray,
                 frequency: np.ndarray | None = None, seed: int = 0):
        super().__init__()
        frequency = require_frequency(frequency, int(np.sum(table_rows)), "pinned")
        self.slots = int(slots)
        hottest = np.argsort(-frequency, kind="stable")[:self.slots]
        hottest = hottest[frequency[hottest] > 0]
        self.slot_of_row = np.full(frequency.size, UNCACHED, dtype=np.int64)
        self.slot_of_row[hottest] = np.arange(hottest.size)
        self.pinned_rows = int(hottest.size)
        self.unpinned_keys = 0
        self._preloaded = (np.arange(hottest.size, dtype=np.int64), hottest.astype(np.int64))

    @classmethod
    def memory_bytes(cls, options: CacheOptions, slots: int, table_rows: np.ndarray) -> int:
        """A slot per row of the key space, plus the negated profile and its ranking while
        the hottest rows are picked."""
        return 24 * int(np.sum(table_rows))

    def preloaded(self) -> tuple[np.ndarray, np.ndarray]:
        return self._preloaded

    def _serve(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        slot = self.slot_of_row[keys]
        hit = slot != UNCACHED
        self.unpinned_keys += keys.size - int(np.count_nonzero(hit))
        return hit, slot

    def counters(self) -> dict[str, int]:
        return {"pinned_rows": self.pinned_rows, "unpinned_keys": self.unpinned_keys}
