"""Replacement policies as scores: the line with the lowest score is evicted.

A policy is two compiled functions: ``fill_score(stamp)`` gives a newly inserted line its score,
``hit_score(old, stamp)`` updates it on a hit. ``stamp`` is a counter that increases by one per
access. Scores must never decrease on a hit (the fully associative kernel relies on it). Ties
never happen because every score embeds the unique stamp.

Adding a policy is one file: a subclass registered in ``POLICIES`` with its two functions.
"""

from __future__ import annotations

from typing import Any, ClassVar

from embsim.registry import Registry


class CachePolicy:
    """Base of replacement policies; subclasses set the two compiled score functions."""

    name: ClassVar[str]
    fill_score: ClassVar[Any]
    hit_score: ClassVar[Any]


POLICIES: Registry[type[CachePolicy]] = Registry("cache policy")

# Bits of a score below which the access stamp lives; policies that count put counts above it.
STAMP_BITS = 40
