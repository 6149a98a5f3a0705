"""Least frequently used, ties broken by least recent use.

The score is ``count << STAMP_BITS | stamp``: the access count of the line since it entered the
cache (counts are forgotten on eviction), then recency.
"""

from __future__ import annotations

from hwmodels.cache.policy import HIGH_MASK, POLICIES, STAMP_BITS, CachePolicy


@POLICIES.register("lfu")
class LFU(CachePolicy):
    """Evicts the line with the fewest accesses since it was filled, the least recent of ties."""

    name = "lfu"
    fill_base = 1 << STAMP_BITS
    hit_keep = HIGH_MASK
    hit_add = 1 << STAMP_BITS
