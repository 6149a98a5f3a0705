"""Least recently used: the score is the stamp of the last access."""

from __future__ import annotations

from hwmodels.cache.policy import POLICIES, CachePolicy


@POLICIES.register("lru")
class LRU(CachePolicy):
    """Evicts the line whose last access is oldest: every access restamps the line."""

    name = "lru"
