"""Caches: row caches in front of memory tiers (``row_cache`` and its kinds), hardware caches
and hierarchies, replacement policies (``policies``) and their compiled kernels.

Row cache kinds register themselves in ``row_cache.ROW_CACHES``; its first lookup imports every
module of this package, so a new kind is one new module.
"""
