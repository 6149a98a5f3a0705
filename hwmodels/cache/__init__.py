"""Caches in front of memory tiers: replacement policies and compiled lookup kernels."""

from hwmodels.cache import lfu, lru  # noqa: F401  (register the policies)
from hwmodels.cache.policy import POLICIES, CachePolicy
from hwmodels.cache.software import SoftwareCache

__all__ = ["POLICIES", "CachePolicy", "SoftwareCache"]
