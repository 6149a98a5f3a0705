"""Unit kind ``rank``: a RecNMP-style pooling engine in each DIMM's buffer chip, one per rank.

Each engine reads its rank over a rank-private data path (the channel's shared data bus and
the rank-to-rank turnaround are not in its way; ``tRRD``, ``tFAW`` and refresh still apply per
rank), optionally keeps a RankCache (any row cache kind) with host-side hot-entry profiling,
and gets its instructions over the channel's command path. The DIMM's buffer chip adds its
ranks' partial sums and returns one vector per bag over the channel. See
``simulator.core.units.dram_units`` for the shared model and what it ignores; the engine's
datapath is an ``nmp`` preset (``recnmp``).
"""

from __future__ import annotations

from simulator.core.units import UNITS
from simulator.core.units.dram_units import DramUnits


@UNITS.register("rank")
class RankUnits(DramUnits):
    """One engine per rank (Ke et al., "RecNMP", ISCA 2020)."""

    kind = "rank"
    level = "rank"
    data_path = "rank"
