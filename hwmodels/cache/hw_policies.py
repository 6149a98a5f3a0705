"""Replacement policies of hardware caches, by name, as the numbers the compiled kernel applies.

Every policy first fills an invalid way of the set (the lowest-numbered one), as hardware does;
the policy decides only among valid lines. A policy belongs to one of four families, each a
branch of ``hw_kernels``; within a family it is data, so a new policy of an existing family is
one new file registering a ``HardwarePolicy`` subclass in ``HW_POLICIES``.

- ``SCORE``: every line keeps an int64 score updated by the four numbers of
  ``hwmodels.cache.policy`` (fill base, hit keep mask, hit add, restamp) and the lowest score
  is the victim. LRU, FIFO and LFU are score policies.
- ``RANDOM``: a uniformly random way from a seeded splitmix64 generator (one per cache).
- ``PLRU``: tree pseudo-LRU, ``ways - 1`` bits per set.
- ``RRIP``: re-reference interval prediction (Jaleel et al., ISCA 2010) with ``rrpv_bits``-bit
  RRPVs: a hit sets the RRPV to 0; the victim is the first way whose RRPV is the maximum, all
  ways of the set being aged (incremented) until one is; a fill inserts at ``max - 1`` once in
  ``near_one_in`` fills (drawn from the cache's generator) and at ``max`` otherwise.

Write-backs arriving from an upper level carry no reuse information: on a hit they only set the
dirty bit and leave the replacement state alone (as in ChampSim's LRU).
"""

from __future__ import annotations

from typing import ClassVar

from embsim.errors import InputError
from embsim.registry import Registry
from hwmodels.cache.lfu import LFU
from hwmodels.cache.lru import LRU
from hwmodels.cache.policy import CachePolicy

SCORE, RANDOM, PLRU, RRIP = 0, 1, 2, 3
"""Policy families: the branch of the compiled kernel that applies a policy."""

MAX_PLRU_WAYS = 64
"""The PLRU tree of a set lives in one int64 (bits 1 .. ways-1)."""


class HardwarePolicy:
    """Base of hardware replacement policies: a family and the numbers its kernel branch uses."""

    name: ClassVar[str]
    family: ClassVar[int]
    score_rule: ClassVar[tuple[int, int, int, int]] = (0, 0, 0, 0)
    rrpv_bits: ClassVar[int] = 0
    near_one_in: ClassVar[int] = 1

    @classmethod
    def check_ways(cls, ways: int, *, source: str | None, field: str | None) -> None:
        """Raise ``InputError`` if the policy cannot run with ``ways`` ways per set."""


HW_POLICIES: Registry[type[HardwarePolicy]] = Registry("hardware cache policy")


def _rule(policy: type[CachePolicy]) -> tuple[int, int, int, int]:
    return policy.fill_base, policy.hit_keep, policy.hit_add, int(policy.hit_restamp)


@HW_POLICIES.register("lru")
class LRUPolicy(HardwarePolicy):
    """Least recently used: the score is the stamp of the line's last demand access."""

    name = "lru"
    family = SCORE
    score_rule = _rule(LRU)


@HW_POLICIES.register("fifo")
class FIFOPolicy(HardwarePolicy):
    """First in, first out: the score is the fill stamp, which hits leave unchanged."""

    name = "fifo"
    family = SCORE
    score_rule = (0, -1, 0, 0)


@HW_POLICIES.register("lfu")
class LFUPolicy(HardwarePolicy):
    """Least frequently used, ties to the least recently used.

    The count is the line's demand accesses since it was filled: counts do not age while the
    line stays, and are forgotten when it is evicted (as the software cache's LFU).
    """

    name = "lfu"
    family = SCORE
    score_rule = _rule(LFU)


@HW_POLICIES.register("random")
class RandomPolicy(HardwarePolicy):
    """A uniformly random valid way, from the cache's seeded generator (deterministic)."""

    name = "random"
    family = RANDOM


@HW_POLICIES.register("plru")
class TreePLRUPolicy(HardwarePolicy):
    """Tree pseudo-LRU: each access points the bits on its path away from it; the victim is
    found by following the bits from the root. Needs a power-of-two number of ways."""

    name = "plru"
    family = PLRU

    @classmethod
    def check_ways(cls, ways: int, *, source: str | None, field: str | None) -> None:
        if ways & (ways - 1) or ways > MAX_PLRU_WAYS:
            raise InputError(f"plru needs a power-of-two number of ways up to {MAX_PLRU_WAYS}, "
                             f"got {ways}", source=source, field=field)


@HW_POLICIES.register("srrip")
class SRRIPPolicy(HardwarePolicy):
    """Static RRIP with hit priority: 2-bit RRPVs, every fill inserted at ``max - 1``."""

    name = "srrip"
    family = RRIP
    rrpv_bits = 2
    near_one_in = 1


@HW_POLICIES.register("brrip")
class BRRIPPolicy(HardwarePolicy):
    """Bimodal RRIP: 2-bit RRPVs, fills inserted at ``max - 1`` with probability 1/32
    (epsilon), at ``max`` otherwise."""

    name = "brrip"
    family = RRIP
    rrpv_bits = 2
    near_one_in = 32
