"""Which row each slot of a row cache holds and whether training has dirtied it.

A row cache in training is write-back: the update stage writes a cached row's new weights into
its slot (the slot becomes dirty) and a dirty row goes back to its home tier only when a fill
evicts it. The caches themselves (``hwmodels.cache.row_cache``) report hits and slots; this
tracker follows their fills to know the victims.
"""

from __future__ import annotations

import numpy as np


class WriteBackRows:
    """Slot contents and dirty flags of one row cache, as its fills and updates change them."""

    def __init__(self, slots: int, preloaded: tuple[np.ndarray, np.ndarray]):
        """``preloaded``: (slots, global rows) the cache holds before the run."""
        self.dirty = np.zeros(slots, dtype=bool)
        self.slot_row = np.full(slots, -1, dtype=np.int64)
        filled, rows = preloaded
        self.slot_row[filled] = rows

    def fill(self, keys: np.ndarray, hit: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Follow one lookup's fills (``keys`` looked up, their ``hit`` and ``slot``); returns
        the dirty rows they evicted, which must be written back home."""
        filling = ~hit & (slot >= 0)
        filled = slot[filling]
        first = np.unique(filled)
        victims = self.slot_row[first]
        evicted = victims[self.dirty[first] & (victims >= 0)]
        self.dirty[first] = False
        last = filled.size - 1 - np.unique(filled[::-1], return_index=True)[1]
        self.slot_row[filled[last]] = keys[filling][last]
        return evicted

    def holds(self, slots: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Whether each slot (>= 0) still holds its row: a concurrent query may have evicted
        it since it was looked up."""
        return self.slot_row[np.maximum(slots, 0)] == rows

    def mark_dirty(self, slots: np.ndarray) -> None:
        """The update wrote new weights into these slots."""
        self.dirty[slots] = True
