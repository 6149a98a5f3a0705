"""Sharing lookups between engines: the pairs an engine touches, and giving lookups that any
of several engines can serve to the least loaded ones."""

from __future__ import annotations

import numpy as np


def distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values of small non-negative ``values``, in order, from a presence mask
    (faster than sorting)."""
    seen = np.zeros(int(values.max()) + 1 if values.size else 0, dtype=bool)
    seen[values] = True
    return np.flatnonzero(seen)


def bag_starts(bags: np.ndarray) -> np.ndarray:
    """Where each bag's run of lookups starts in ``bags`` (lookups come in bag order)."""
    return np.flatnonzero(np.diff(bags, prepend=-1))


def distinct_pairs(first: np.ndarray, second: np.ndarray, span: int) -> np.ndarray:
    """The distinct values of ``first * span + second`` (``0 <= second < span``), in order:
    each (engine, bag) pair once."""
    return distinct(first * span + second)


def balance(loads: np.ndarray, items: int) -> np.ndarray:
    """Engines for ``items`` more lookups, each to the engine with the fewest so far (ties:
    the lower engine): water-filling the ``loads``. Returns one engine index per item."""
    order = np.argsort(loads, kind="stable")
    levels = loads[order]
    # raising the k least loaded engines to the (k+1)-th's level costs room[k-1] items
    room = np.concatenate([(levels[1:] - levels[:-1]) * np.arange(1, levels.size), [np.inf]])
    spent = np.concatenate([[0], np.cumsum(room)])
    k = int(np.searchsorted(spent, items, side="right"))
    left = items - int(spent[k - 1])
    base = np.maximum(levels[k - 1] - levels[:k], 0).astype(np.int64)
    extra = np.full(k, left // k, dtype=np.int64)
    extra[: left % k] += 1
    counts = np.zeros(levels.size, dtype=np.int64)
    counts[:k] = base + extra
    return np.repeat(order, counts)
