"""Multi-level CPU cache hierarchies (L1/L2/LLC) in front of a memory device.

``CacheHierarchy(levels, inclusion)`` serves each request through the levels in one compiled
call, one request at a time, so levels that affect each other stay exact:

- ``nine`` (non-inclusive, non-exclusive): a miss fills every level it passed; evictions are
  each level's own business. Equal to chaining the levels' ``next_level`` streams by hand.
- ``inclusive``: as ``nine``, and a level's eviction also removes the line from every level
  above it (back-invalidation), so each level holds a subset of the one below.
- ``exclusive``: a line lives in at most one level. A first-level miss that hits lower moves
  the line up; lines from memory go to the first level only; each level's victims fill the
  level below (victim caches); only dirty lines leaving the last level are written back.
  Every level must be write-back and write-allocate.

Every level uses the same line size. The requests that reach memory, in order, are in
``memory`` after each call: line reads and write-backs (and written-through stores), as byte
addresses and kinds, ready for a memory device's ``service``.

``hierarchy_from_config`` builds one from a YAML mapping such as::

    inclusion: inclusive
    levels:
      - {name: L1, size: 48 KiB, ways: 12, line: 64, policy: plru}
      - {name: L2, size: 2 MiB, ways: 16, line: 64, policy: lru}
      - {name: LLC, size: 32 MiB, ways: 16, line: 64, policy: srrip}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embsim.errors import InputError
from embsim.limits import MAX_WAYS, count
from embsim.validation import first_problem
from hwmodels.cache import hw_kernels as hk
from hwmodels.cache.hardware import CacheState, HardwareCache, Requests, as_requests
from hwmodels.specs import PositiveSize

INCLUSION = {"nine": hk.NINE, "inclusive": hk.INCLUSIVE, "exclusive": hk.EXCLUSIVE}


class CacheHierarchy:
    """Cache levels, first (closest to the core) to last, with an inclusion policy.

    The levels are adopted with their current contents and counters; from then on they are
    served only through the hierarchy. ``source`` and ``field`` name the configuration in
    errors (a level's fields are ``{field}.levels.{i}.*``).
    """

    def __init__(self, levels: list[HardwareCache], inclusion: str = "nine", *,
                 source: str | None = None, field: str | None = None):
        def where(key: str) -> str:
            return f"{field}.{key}" if field else key

        if not levels:
            raise InputError("a cache hierarchy needs at least one level", source=source,
                             field=where("levels"))
        if inclusion not in INCLUSION:
            raise InputError(f"unknown inclusion {inclusion!r}; expected one of: "
                             f"{', '.join(INCLUSION)}", source=source, field=where("inclusion"))
        names: set[str] = set()
        for index, level in enumerate(levels):
            at = where(f"levels.{index}")
            if level.name in names:
                raise InputError(f"level name {level.name!r} is used twice", source=source,
                                 field=f"{at}.name")
            names.add(level.name)
            if level.line != levels[0].line:
                raise InputError(f"every level needs the first level's line size "
                                 f"({levels[0].line} B), got {level.line} B", source=source,
                                 field=f"{at}.line")
            if inclusion == "exclusive" and len(levels) > 1:
                for key in ("write_back", "write_allocate"):
                    if not getattr(level, key):
                        raise InputError(f"an exclusive hierarchy needs {key}: true",
                                         source=source, field=f"{at}.{key}")
        self.levels = list(levels)
        self.inclusion = inclusion
        self._mode = INCLUSION[inclusion] if len(levels) > 1 else hk.NINE
        self._state = CacheState(self.levels)
        for index, level in enumerate(self.levels):
            level._state, level._index, level._in_hierarchy = self._state, index, True
        self.memory = Requests(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))

    def access(self, addresses: np.ndarray, is_write: np.ndarray | None = None) -> np.ndarray:
        """Serve loads (stores where ``is_write``) at byte ``addresses`` in order.

        Returns the level that served each (int8: 0 = first level, ``len(levels)`` = memory).
        The requests that reached memory are in ``memory`` afterwards.
        """
        return self.access_requests(as_requests(addresses, is_write))

    def access_requests(self, requests: Requests) -> np.ndarray:
        """As ``access``, for requests of any kind (e.g. write-backs from a level above)."""
        served, self.memory = self._state.serve(requests, self._mode)
        return served

    def stats(self) -> dict[str, dict[str, int | float]]:
        """Each level's ``HardwareCache.stats()``, by level name."""
        return {level.name: level.stats() for level in self.levels}


class LevelConfig(BaseModel):
    """One cache level of a hierarchy description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    size: PositiveSize
    ways: count(MAX_WAYS)
    line: PositiveSize = 64.0
    """64 B: the line size of current x86 and Arm server cores."""
    policy: str = "lru"
    write_back: bool = True
    write_allocate: bool = True


class HierarchyConfig(BaseModel):
    """A cache hierarchy description: levels from the core outwards and the inclusion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: Annotated[list[LevelConfig], Field(min_length=1)]
    inclusion: Literal["nine", "inclusive", "exclusive"] = "nine"


def hierarchy_from_config(data: Any, *, source: str | None = None, field: str | None = None,
                          seed: int = 0) -> CacheHierarchy:
    """A ``CacheHierarchy`` from a mapping (loaded YAML), sizes in human units.

    Problems are ``InputError``s naming ``source`` and the dotted field (e.g.
    ``levels.1.size``, under ``field`` when the mapping sits inside a larger file). Level i's
    random generator is seeded with ``seed + i``.
    """
    def where(key: str) -> str:
        return f"{field}.{key}" if field else key

    if not isinstance(data, dict):
        raise InputError(f"expected a mapping with 'levels' and 'inclusion', got {data!r}",
                         source=source, field=field)
    try:
        config = HierarchyConfig.model_validate(data)
    except ValidationError as err:
        loc, detail = first_problem(err)
        raise InputError(detail, source=source, field=where(loc)) from None
    levels = [
        HardwareCache(level.size, level.ways, level.line, level.policy,
                      write_back=level.write_back, write_allocate=level.write_allocate,
                      seed=seed + index, name=level.name, source=source,
                      field=where(f"levels.{index}"))
        for index, level in enumerate(config.levels)
    ]
    return CacheHierarchy(levels, config.inclusion, source=source, field=field)
