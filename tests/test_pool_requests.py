"""The host's pooling requests from one compiled pass equal the masks-and-concatenations
construction, element for element and in the same order (the order a device tier serves)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.core.units.pool_requests import pool_requests


def by_masks(outputs, output_sizes, slot, hit, local, read, row_bytes, home, base, size, line):
    slotted = slot >= 0
    slot_addr = base + slot[slotted] * size
    if line:
        slot_addr = slot_addr + home[slotted] % line
    filled, read_slot, kept = ~hit[slotted], read[slotted], local & read
    addresses = [outputs, slot_addr[read_slot], slot_addr[filled], home[kept]]
    sizes = [output_sizes, row_bytes[slotted][read_slot], row_bytes[slotted][filled],
             row_bytes[kept]]
    writes = [np.ones(outputs.size, bool), np.zeros(int(read_slot.sum()), bool),
              np.ones(int(filled.sum()), bool), np.zeros(int(kept.sum()), bool)]
    return tuple(np.concatenate(parts) for parts in (addresses, sizes, writes))


@given(st.integers(0, 60), st.integers(0, 5), st.sampled_from([0, 64]),
       st.integers(0, 2**32))
@settings(deadline=None)          # the first example compiles the kernel
def test_pool_requests_equal_the_masked_construction(lookups, bags, line, seed):
    rng = np.random.default_rng(seed)
    slot = np.where(rng.random(lookups) < 0.3, -1, rng.integers(0, 1000, lookups))
    hit = rng.random(lookups) < 0.5
    local = (slot < 0) & (rng.random(lookups) < 0.5)
    read = rng.random(lookups) < 0.8
    row_bytes = rng.integers(1, 512, lookups)
    home = rng.integers(0, 1 << 40, lookups)
    outputs = rng.integers(0, 1 << 30, bags)
    output_sizes = rng.integers(64, 1024, bags)
    args = (outputs, output_sizes, slot, hit, local, read, row_bytes, home, 1 << 33, 320, line)
    for got, expected in zip(pool_requests(*args), by_masks(*args), strict=True):
        np.testing.assert_array_equal(got, expected)
