"""Compiled lookup kernels over flat cache state, one call per batch of keys.

State lives in arrays owned by ``SoftwareCache`` and persists across calls. Each kernel walks
the keys in order, so a key repeated within one call hits after its first access. It writes,
per key, whether it hit and the slot (line) that now holds it, and returns the number of
evictions. Policies come in as the four numbers of ``policy.py`` (``rule``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hwmodels.cache.policies import STAMP_MASK
from hwmodels.prefetch import prefetch

EMPTY = -1
PREFETCH_AHEAD = 16
"""Keys ahead whose set the set-associative kernel prefetches: enough to cover a miss to DRAM
at this kernel's 50-80 ns per key (docs/benchmarks.md, 2026-12-06)."""


@njit(cache=True, inline="always")
def fill_score(rule, stamp):
    """Score of a line filled at ``stamp`` (``rule`` = fill_base, hit_keep, hit_add, restamp)."""
    return rule[0] | stamp


@njit(cache=True, inline="always")
def hit_score(rule, old, stamp):
    """Score of a line hit at ``stamp``."""
    score = (old & rule[1]) + rule[2]
    if rule[3]:
        score = (score & ~STAMP_MASK) | stamp
    return score


@njit(cache=True, inline="always")
def set_of(key: int, num_sets: int) -> int:
    """Set index from a multiplicative hash, so strided row ids spread over the sets."""
    mixed = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return int((mixed >> np.uint64(24)) % np.uint64(num_sets))


@njit(cache=True, inline="always")
def _prefetch_set(tags, scores, base, ways):
    """Prefetch every cache line of a set's tags and scores."""
    for line in range(base, base + ways, 8):                    # 8 int64 per 64 B line
        prefetch(tags, line)
        prefetch(scores, line)
    prefetch(tags, base + ways - 1)
    prefetch(scores, base + ways - 1)


@njit(cache=True, inline="always")
def _victim(tags, scores, base, ways):
    """The set's first empty line, else its first line of the lowest score."""
    for line in range(base, base + ways):
        if tags[line] == EMPTY:
            return line
    victim = base
    lowest = scores[base]
    for line in range(base + 1, base + ways):
        if scores[line] < lowest:
            lowest = scores[line]
            victim = line
    return victim


@njit(cache=True)
def lookup_set_associative(keys, tags, scores, num_sets, ways, stamp, rule, hit_out, slot_out):
    """Set-associative lookup: scan the key's set; on a miss fill an empty or lowest-score way."""
    evictions = 0
    for i in range(keys.size):
        if i + PREFETCH_AHEAD < keys.size:
            _prefetch_set(tags, scores, set_of(keys[i + PREFETCH_AHEAD], num_sets) * ways, ways)
        key = keys[i]
        base = set_of(key, num_sets) * ways
        found = -1
        for line in range(base, base + ways):
            if tags[line] == key:
                found = line
                break
        stamp += 1
        if found >= 0:
            scores[found] = hit_score(rule, scores[found], stamp)
            hit_out[i] = True
            slot_out[i] = found
            continue
        victim = _victim(tags, scores, base, ways)
        if tags[victim] != EMPTY:
            evictions += 1
        tags[victim] = key
        scores[victim] = fill_score(rule, stamp)
        hit_out[i] = False
        slot_out[i] = victim
    return evictions, stamp


@njit(cache=True, inline="always")
def _sift_down(heap, pos, scores, at, size):
    while True:
        left = 2 * at + 1
        if left >= size:
            return
        child = left
        right = left + 1
        if right < size and scores[heap[right]] < scores[heap[left]]:
            child = right
        if scores[heap[child]] >= scores[heap[at]]:
            return
        heap[at], heap[child] = heap[child], heap[at]
        pos[heap[at]] = at
        pos[heap[child]] = child
        at = child


@njit(cache=True, inline="always")
def _sift_up(heap, pos, scores, at):
    while at > 0:
        parent = (at - 1) // 2
        if scores[heap[parent]] <= scores[heap[at]]:
            return
        heap[at], heap[parent] = heap[parent], heap[at]
        pos[heap[at]] = at
        pos[heap[parent]] = parent
        at = parent


@njit(cache=True)
def lookup_fully_associative(keys, tags, scores, slot_of_key, heap, pos, used, stamp, rule,
                             hit_out, slot_out):
    """Fully associative lookup in O(log capacity): a min-heap of slots ordered by score.

    ``slot_of_key`` maps every key of the key space to its slot (or EMPTY); ``used`` is how
    many slots are filled. Returns (evictions, stamp, used).
    """
    capacity = tags.size
    evictions = 0
    for i in range(keys.size):
        key = keys[i]
        slot = slot_of_key[key]
        if slot != EMPTY:
            scores[slot] = hit_score(rule, scores[slot], stamp)
            _sift_down(heap, pos, scores, pos[slot], used)
            hit_out[i] = True
        else:
            if used < capacity:
                slot = used
                heap[used] = slot
                pos[slot] = used
                used += 1
                tags[slot] = key
                scores[slot] = fill_score(rule, stamp)
                _sift_up(heap, pos, scores, pos[slot])
            else:
                slot = heap[0]
                slot_of_key[tags[slot]] = EMPTY
                evictions += 1
                tags[slot] = key
                scores[slot] = fill_score(rule, stamp)
                _sift_down(heap, pos, scores, 0, used)
            slot_of_key[key] = slot
            hit_out[i] = False
        slot_out[i] = slot
        stamp += 1
    return evictions, stamp, used
