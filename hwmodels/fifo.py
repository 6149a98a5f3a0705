"""A single server that takes requests one at a time in arrival order, in closed form.

The analytic fidelity levels of the SCM and SSD models reduce a device (or one DIMM of it) to
such a server: request k starts at ``max(arrival[k], start[k-1] + service[k-1])``. Unrolled,
``start[k] = offset[k] + max(busy_until, max_{j<=k}(arrival[j] - offset[j]))`` with
``offset[k]`` the service of the earlier requests of the call, so it is one numpy expression.
"""

from __future__ import annotations

import numpy as np


def fifo_starts(arrival_s: np.ndarray, service_s: np.ndarray,
                busy_until_s: float) -> np.ndarray:
    """Start time of each request on a server busy until ``busy_until_s`` (arrivals sorted)."""
    offsets = np.cumsum(service_s) - service_s
    return offsets + np.maximum(np.maximum.accumulate(arrival_s - offsets), busy_until_s)
