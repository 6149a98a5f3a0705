"""Replacement policies, by name: one registry for software row caches and hardware caches.

A policy is data, not code, so that the compiled kernels stay cacheable. It belongs to one of
four families, each a branch of the hardware kernels (``hw_kernels``); within a family it is
numbers, so a new policy of an existing family is one class registered in ``POLICIES``.

- ``SCORE``: every line keeps an int64 score whose low ``STAMP_BITS`` bits hold an access stamp
  (a counter that increases by one per access, so no two scores tie) and whose high bits are
  the policy's own; the lowest score is the victim. On a fill ``score = fill_base | stamp``; on
  a hit ``score = (score & hit_keep) + hit_add``, then, if ``restamp``, the stamp bits are
  replaced by the current stamp. Scores never decrease on a hit (the fully associative kernel
  relies on it). LRU, FIFO and LFU are score policies, and the only ones the software row cache
  (``hwmodels.cache.software``) runs.
- ``RANDOM``: a uniformly random way from a seeded splitmix64 generator (one per cache).
- ``PLRU``: tree pseudo-LRU, ``ways - 1`` bits per set.
- ``RRIP``: re-reference interval prediction (Jaleel et al., ISCA 2010) with ``rrpv_bits``-bit
  RRPVs: a hit sets the RRPV to 0; the victim is the first way whose RRPV is the maximum, all
  ways of the set being aged (incremented) until one is; a fill inserts at ``max - 1`` once in
  ``near_one_in`` fills (drawn from the cache's generator) and at ``max`` otherwise.

In hardware caches every policy first fills an invalid way of the set (the lowest-numbered
one); the policy decides only among valid lines. Write-backs arriving from an upper level carry
no reuse information: on a hit they only set the dirty bit and leave the replacement state
alone (as in ChampSim's LRU).
"""

from __future__ import annotations

from typing import ClassVar

from embsim.errors import InputError
from embsim.registry import Registry

STAMP_BITS = 40
STAMP_MASK = (1 << STAMP_BITS) - 1
HIGH_MASK = ~STAMP_MASK

SCORE, RANDOM, PLRU, RRIP = 0, 1, 2, 3
"""Policy families: the branch of the compiled kernel that applies a policy."""

MAX_PLRU_WAYS = 64
"""The PLRU tree of a set lives in one int64 (bits 1 .. ways-1)."""


class ReplacementPolicy:
    """Base of replacement policies: a family and the numbers its kernel branch uses."""

    name: ClassVar[str]
    family: ClassVar[int]
    score_rule: ClassVar[tuple[int, int, int, int]] = (0, 0, 0, 0)
    """(fill_base, hit_keep, hit_add, restamp) of a score policy."""
    rrpv_bits: ClassVar[int] = 0
    near_one_in: ClassVar[int] = 1

    @classmethod
    def check_ways(cls, ways: int, *, source: str | None, field: str | None) -> None:
        """Raise ``InputError`` if the policy cannot run with ``ways`` ways per set."""


POLICIES: Registry[type[ReplacementPolicy]] = Registry("cache policy")


def score_policy(name: str, *, source: str | None = None,
                 field: str | None = None) -> type[ReplacementPolicy]:
    """The score policy called ``name`` (what a software row cache runs)."""
    scored = [p for p in POLICIES.names() if POLICIES.get(p).family == SCORE]
    if name not in scored:
        raise InputError(f"unknown cache policy {name!r}; expected one of: {', '.join(scored)}",
                         source=source, field=field)
    return POLICIES.get(name)


@POLICIES.register("lru")
class LRU(ReplacementPolicy):
    """Least recently used: every access restamps the line, the oldest stamp is evicted."""

    name = "lru"
    family = SCORE
    score_rule = (0, 0, 0, 1)


@POLICIES.register("fifo")
class FIFO(ReplacementPolicy):
    """First in, first out: the score is the fill stamp, which hits leave unchanged."""

    name = "fifo"
    family = SCORE
    score_rule = (0, -1, 0, 0)


@POLICIES.register("lfu")
class LFU(ReplacementPolicy):
    """Least frequently used, ties to the least recently used: the score is ``count <<
    STAMP_BITS | stamp``, the count being the line's accesses since it was filled (counts do
    not age while the line stays and are forgotten when it is evicted)."""

    name = "lfu"
    family = SCORE
    score_rule = (1 << STAMP_BITS, HIGH_MASK, 1 << STAMP_BITS, 1)


@POLICIES.register("random")
class Random(ReplacementPolicy):
    """A uniformly random valid way, from the cache's seeded generator (deterministic)."""

    name = "random"
    family = RANDOM


@POLICIES.register("plru")
class TreePLRU(ReplacementPolicy):
    """Tree pseudo-LRU: each access points the bits on its path away from it; the victim is
    found by following the bits from the root. Needs a power-of-two number of ways."""

    name = "plru"
    family = PLRU

    @classmethod
    def check_ways(cls, ways: int, *, source: str | None, field: str | None) -> None:
        if ways & (ways - 1) or ways > MAX_PLRU_WAYS:
            raise InputError(f"plru needs a power-of-two number of ways up to {MAX_PLRU_WAYS}, "
                             f"got {ways}", source=source, field=field)


@POLICIES.register("srrip")
class SRRIP(ReplacementPolicy):
    """Static RRIP with hit priority: 2-bit RRPVs, every fill inserted at ``max - 1``."""

    name = "srrip"
    family = RRIP
    rrpv_bits = 2
    near_one_in = 1


@POLICIES.register("brrip")
class BRRIP(ReplacementPolicy):
    """Bimodal RRIP: 2-bit RRPVs, fills inserted at ``max - 1`` with probability 1/32
    (epsilon), at ``max`` otherwise."""

    name = "brrip"
    family = RRIP
    rrpv_bits = 2
    near_one_in = 32
