"""A point-to-point link (PCIe, NVLink, CXL): serialisation time plus latency.

The link's contention (one transfer at a time per direction) is a shared resource owned by the
simulator's engine; this model gives the times and counts the bytes.
"""

from __future__ import annotations

from hwmodels.specs import LinkSpec


class Link:
    """Byte counter and timing of one link direction (device to compute)."""

    def __init__(self, spec: LinkSpec):
        self.spec = spec
        self.bytes = 0

    def transfer_time(self, nbytes: int) -> float:
        """Time the link is occupied serialising ``nbytes`` (latency excluded)."""
        return nbytes / self.spec.bandwidth

    def record(self, nbytes: int) -> None:
        self.bytes += nbytes

    @property
    def energy_j(self) -> float:
        return self.bytes * 8 * self.spec.energy_per_bit
