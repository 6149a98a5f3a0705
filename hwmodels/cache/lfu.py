"""Least frequently used, ties broken by least recent use.

The score is ``count << STAMP_BITS | stamp``: the access count of the line since it entered the
cache (counts are forgotten on eviction), then recency.
"""

from __future__ import annotations

from numba import njit

from hwmodels.cache.policy import POLICIES, STAMP_BITS, CachePolicy


@njit(cache=True)
def _fill(stamp: int) -> int:
    return (1 << STAMP_BITS) | stamp


@njit(cache=True)
def _hit(old: int, stamp: int) -> int:
    return (((old >> STAMP_BITS) + 1) << STAMP_BITS) | stamp


@POLICIES.register("lfu")
class LFU(CachePolicy):
    """Evicts the line with the fewest hits since it was filled, the least recent among ties."""

    name = "lfu"
    fill_score = _fill
    hit_score = _hit
