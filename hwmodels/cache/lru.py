"""Least recently used: the score is the stamp of the last access."""

from __future__ import annotations

from numba import njit

from hwmodels.cache.policy import POLICIES, CachePolicy


@njit(cache=True)
def _fill(stamp: int) -> int:
    return stamp


@njit(cache=True)
def _hit(old: int, stamp: int) -> int:
    return stamp


@POLICIES.register("lru")
class LRU(CachePolicy):
    """Evicts the line whose last access is oldest."""

    name = "lru"
    fill_score = _fill
    hit_score = _hit
