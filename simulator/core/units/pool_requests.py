"""The memory requests of the host's pooling, built in one compiled pass.

Pooling a query's share issues, in this order, every bag's output write, the reads of the
cache slots it pools from, the writes of the slots it fills, and the reads of the rows it
pools where they are kept in its own tier. Built with numpy that took a score of passes
over the share's arrays (masks, gathers, concatenations), a tenth of the engine's time on
the quickstart; one pass here builds the same arrays in the same order.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def pool_requests(outputs: np.ndarray, output_sizes: np.ndarray, slot: np.ndarray,
                  hit: np.ndarray, local: np.ndarray, read: np.ndarray, row_bytes: np.ndarray,
                  home: np.ndarray, slot_base: int, slot_bytes: int,
                  line: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(addresses, sizes, writes) of the outputs, then of every lookup with a slot that is
    ``read`` (a read) and that missed (a fill, a write), then of every ``local`` lookup that
    is ``read``. A slot's address is ``slot_base + slot * slot_bytes``, plus the row's home
    offset within its ``line`` where ``line`` > 0 (a hardware cache keeps lines)."""
    reads = fills = kept = 0
    for i in range(slot.size):
        if slot[i] >= 0:
            reads += read[i]
            fills += not hit[i]
        kept += local[i] and read[i]
    first = outputs.size
    total = first + reads + fills + kept
    addresses = np.empty(total, dtype=np.int64)
    sizes = np.empty(total, dtype=np.int64)
    writes = np.empty(total, dtype=np.bool_)
    addresses[:first] = outputs
    sizes[:first] = output_sizes
    writes[:first] = True
    at_read, at_fill, at_kept = first, first + reads, first + reads + fills
    for i in range(slot.size):
        if slot[i] >= 0:
            address = slot_base + slot[i] * slot_bytes
            if line > 0:
                address += home[i] % line
            if read[i]:
                addresses[at_read], sizes[at_read], writes[at_read] = address, row_bytes[i], False
                at_read += 1
            if not hit[i]:
                addresses[at_fill], sizes[at_fill], writes[at_fill] = address, row_bytes[i], True
                at_fill += 1
        if local[i] and read[i]:
            addresses[at_kept], sizes[at_kept], writes[at_kept] = home[i], row_bytes[i], False
            at_kept += 1
    return addresses, sizes, writes
