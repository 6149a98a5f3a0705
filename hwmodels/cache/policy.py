"""Replacement policies as scores: the line with the lowest score is evicted.

A policy is data, not code, so that the compiled kernels stay cacheable: every line keeps an
int64 score whose low ``STAMP_BITS`` bits hold an access stamp (a counter that increases by one
per access, so no two scores tie) and whose high bits are the policy's own.

- On a fill: ``score = fill_base | stamp``.
- On a hit: ``score = (score & hit_keep) + hit_add``, then, if ``hit_restamp``, the stamp bits
  are replaced by the current stamp.

Scores must never decrease on a hit (the fully associative kernel relies on it). Adding a
policy is one file: a ``CachePolicy`` subclass with these four values, registered in
``POLICIES``.
"""

from __future__ import annotations

from typing import ClassVar

from embsim.registry import Registry

STAMP_BITS = 40
STAMP_MASK = (1 << STAMP_BITS) - 1
HIGH_MASK = ~STAMP_MASK


class CachePolicy:
    """Base of replacement policies: the four numbers the kernels apply."""

    name: ClassVar[str]
    fill_base: ClassVar[int] = 0
    hit_keep: ClassVar[int] = 0
    hit_add: ClassVar[int] = 0
    hit_restamp: ClassVar[bool] = True


POLICIES: Registry[type[CachePolicy]] = Registry("cache policy")
