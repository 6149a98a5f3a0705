"""Caches in front of memory tiers: replacement policies and compiled lookup kernels.

Every module of this package is imported here, so a new policy file registers itself.
"""

import importlib
import pkgutil

from hwmodels.cache.policy import POLICIES, CachePolicy
from hwmodels.cache.software import SoftwareCache

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["POLICIES", "CachePolicy", "SoftwareCache"]
