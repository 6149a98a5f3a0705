"""Compiled kernel of set-associative hardware caches: one call serves a whole request array.

The state of every level of a hierarchy lives in flat arrays (a single cache is a hierarchy of
one level) that persist across calls:

- ``tags[slot]``: the line number held by the slot (``EMPTY`` when invalid); a level's slots
  start at ``table[level, LINE_BASE]``, set ``s`` at ``LINE_BASE + s * ways``.
- ``meta[slot]``: the policy's per-line state (a score, or an RRPV); ``dirty[slot]``.
- ``setbits[set]``: the PLRU tree of each set (global set index ``SET_BASE + s``).
- ``clocks[level]``: the stamp counter of score policies; ``rng[level]``: splitmix64 state.
- ``counters[level, ...]``: the statistics (columns ``COUNTERS``).

``table`` holds each level's geometry and policy numbers, ``rules`` the four score numbers of
``hwmodels.cache.policies``. A request is a line number with a kind: ``READ`` (a load, or a fill
from the level above), ``WRITE`` (a store to part of a line: a write-allocate miss fetches the
line), ``WRITEBACK`` (a whole dirty line from above: installed without a fetch; a hit leaves
the replacement state alone). Exclusive hierarchies add two internal kinds below the first
level: ``FETCH`` (look the line up; a hit moves it, with its dirty bit, to the first level) and
``INSERT`` (a victim pushed down from the level above, with its dirty bit).

Each request is served depth first from a small stack: what a level sends down (at most a
victim, a fetch and a written-through store, in the order below) is served, with everything it
causes further down, before the next. A miss in a non-inclusive (``NINE``) or ``INCLUSIVE``
hierarchy first writes back its dirty victim, then reads the line; an inclusive level's
eviction first removes the line from every level above (a dirty copy there makes the victim
dirty). An ``EXCLUSIVE`` first-level miss first fetches the line from below, then pushes its
victim (clean or dirty) into the second level, whose victim goes to the third, and so on; a
dirty line leaving the last level is written back to memory, a clean one dropped.

The per-level policy branches are written out in ``serve``'s loop rather than in helpers that
take the state arrays: numba cannot drop the reference counting of arrays passed into inlined
helpers that branch, and it would cost more than the cache logic itself.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hwmodels.cache.kernels import fill_score, hit_score
from hwmodels.cache.policies import PLRU, RANDOM, RRIP, SCORE

EMPTY = -1
READ, WRITE, WRITEBACK, FETCH, INSERT = 0, 1, 2, 3, 4
NINE, INCLUSIVE, EXCLUSIVE = 0, 1, 2

# columns of ``table``
LINE_BASE, SET_BASE, NUM_SETS, SET_MASK, WAYS, FAMILY = 0, 1, 2, 3, 4, 5
WRITE_BACK, WRITE_ALLOCATE, RRPV_MAX, NEAR_ONE_IN = 6, 7, 8, 9
TABLE_COLUMNS = 10

# columns of ``counters``
COUNTERS = ("read_hits", "read_misses", "write_hits", "write_misses", "evictions",
            "writebacks", "fills", "invalidations")
READ_HITS, READ_MISSES, WRITE_HITS, WRITE_MISSES, EVICTIONS = 0, 1, 2, 3, 4
WRITEBACKS, FILLS, INVALIDATIONS = 5, 6, 7


def requests_bound(levels: int) -> int:
    """Most memory requests one request can cause: a level sends at most three requests down
    per request it serves (a victim, a fetch and a written-through store)."""
    return 3**levels


@njit(cache=True, inline="always")
def _random(rng, level):
    """The next splitmix64 output of the level's generator (uint64)."""
    state = rng[level] + np.uint64(0x9E3779B97F4A7C15)
    rng[level] = state
    z = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _set_index(table, level, line):
    """The set of ``line`` within its level: low bits when the sets are a power of two."""
    mask = table[level, SET_MASK]
    if mask >= 0:
        return line & mask
    return line % table[level, NUM_SETS]


@njit(cache=True, inline="always")
def _find(values, base, ways, wanted):
    """The first slot of the set starting at ``base`` whose value is ``wanted``, or EMPTY."""
    for slot in range(base, base + ways):
        if values[slot] == wanted:
            return slot
    return EMPTY


@njit(cache=True, inline="always")
def _plru_touch(bits, way, ways):
    """Point every node on the path to ``way`` away from it (node i's bit is bit i)."""
    node = way + ways
    while node > 1:
        parent = node >> 1
        if node & 1:
            bits &= ~(np.int64(1) << parent)
        else:
            bits |= np.int64(1) << parent
        node = parent
    return bits


@njit(cache=True, inline="always")
def _plru_victim(bits, ways):
    """Follow the bits from the root: 0 goes left, 1 goes right."""
    node = 1
    while node < ways:
        node = 2 * node + ((bits >> node) & 1)
    return node - ways




@njit(cache=True, inline="always")
def _score_victim(tags, meta, base, ways):
    """The first invalid way, else the lowest score."""
    victim = base
    for slot in range(base, base + ways):
        if tags[slot] == EMPTY:
            return slot
        if meta[slot] < meta[victim]:
            victim = slot
    return victim


@njit(cache=True, inline="always")
def _rrip_victim(meta, base, ways, far):
    """Age the set until a way predicts a distant re-reference (RRPV ``far``); the first one."""
    oldest = meta[base]
    for slot in range(base + 1, base + ways):
        oldest = max(oldest, meta[slot])
    for slot in range(base, base + ways):
        meta[slot] += far - oldest
    return _find(meta, base, ways, far)


@njit(cache=True, inline="always")
def _count_access(counters, level, kind, hit):
    if kind in (READ, FETCH):
        counters[level, READ_HITS if hit else READ_MISSES] += 1
    else:
        counters[level, WRITE_HITS if hit else WRITE_MISSES] += 1


@njit(cache=True, inline="always")
def _back_invalidate(table, tags, dirty, counters, level, line):
    """Remove ``line`` from every level above ``level``; True if any copy was dirty."""
    was_dirty = False
    for upper in range(level):
        ways = table[upper, WAYS]
        base = table[upper, LINE_BASE] + _set_index(table, upper, line) * ways
        slot = _find(tags, base, ways, line)
        if slot != EMPTY:
            tags[slot] = EMPTY
            counters[upper, INVALIDATIONS] += 1
            was_dirty |= dirty[slot]
            dirty[slot] = False
    return was_dirty


@njit(cache=True, inline="always")
def _push(stack, depth, level, line, kind, demand, extra):
    """Put a request on ``stack`` at ``depth``; returns the new depth. ``demand`` marks the
    request the caller waits for, ``extra`` is a FETCH's first-level slot or an INSERT's dirty
    bit."""
    stack[depth, 0], stack[depth, 1], stack[depth, 2] = level, line, kind
    stack[depth, 3], stack[depth, 4] = demand, extra
    return depth + 1


@njit(cache=True, inline="always")
def _to_memory(out_addr, out_kind, out_origin, used, address, kind, extra, origin):
    """Append what a request that left the last level asks of memory, with the index of the
    request that caused it; returns the new count."""
    if kind == INSERT and not extra:
        return used  # a clean victim of an exclusive hierarchy is dropped
    out_addr[used] = address
    out_origin[used] = origin
    if kind == FETCH:
        out_kind[used] = READ
    elif kind == INSERT:
        out_kind[used] = WRITEBACK
    else:
        out_kind[used] = kind
    return used + 1


@njit(cache=True)
def serve(addresses, kinds, start, shift, inclusion, table, rules, tags, meta, dirty, setbits,
          clocks, rng, counters, served_out, out_addr, out_kind, out_origin, bound):
    """Serve requests ``start..`` in order until done or fewer than ``bound`` (the most one
    request can cause, ``requests_bound``) free entries remain in ``out_addr``.

    Writes the level that served each request (``levels`` = memory) to ``served_out`` and the
    requests that reach memory, in order, to ``out_addr`` (byte addresses of lines),
    ``out_kind`` and ``out_origin`` (the index of the request that caused each).
    Returns (index of the first request not served, memory requests written).
    """
    levels = table.shape[0]
    stack = np.empty((3 * levels + 3, 5), dtype=np.int64)  # depth first: <= 2 siblings/level
    pending = np.empty((3, 5), dtype=np.int64)
    used = 0
    i = start
    while i < addresses.size and used + bound <= out_addr.size:
        served = levels
        depth = _push(stack, 0, 0, addresses[i] >> shift, kinds[i], 1, 0)
        while depth:
            depth -= 1
            level, line, kind = stack[depth, 0], stack[depth, 1], stack[depth, 2]
            demand, extra = stack[depth, 3], stack[depth, 4]
            if level == levels:
                used = _to_memory(out_addr, out_kind, out_origin, used, line << shift, kind,
                                  extra, i)
                continue
            ways = table[level, WAYS]
            set_index = _set_index(table, level, line)
            base = table[level, LINE_BASE] + set_index * ways
            gset = table[level, SET_BASE] + set_index
            family = table[level, FAMILY]
            write_back = table[level, WRITE_BACK] != 0
            stores = kind in (WRITE, WRITEBACK)
            children = 0
            slot = EMPTY
            if kind != INSERT:
                slot = _find(tags, base, ways, line)
                _count_access(counters, level, kind, slot != EMPTY)
            if slot != EMPTY and kind == FETCH:
                # exclusive: the line moves up to the first level, with its dirty bit
                served = level if demand else served
                dirty[extra] |= dirty[slot]
                tags[slot] = EMPTY
                dirty[slot] = False
                counters[level, INVALIDATIONS] += 1
            elif slot != EMPTY:
                served = level if demand else served
                if kind != WRITEBACK:
                    if family == SCORE:
                        clocks[level] += 1
                        meta[slot] = hit_score(rules[level], meta[slot], clocks[level])
                    elif family == PLRU:
                        setbits[gset] = _plru_touch(setbits[gset], slot - base, ways)
                    elif family == RRIP:
                        meta[slot] = 0
                if stores and write_back:
                    dirty[slot] = True
                elif stores:
                    children = _push(pending, children, level + 1, line, kind, 0, 0)
            elif kind == FETCH:
                children = _push(pending, children, level + 1, line, FETCH, demand, extra)
            elif stores and table[level, WRITE_ALLOCATE] == 0:
                children = _push(pending, children, level + 1, line, kind, demand, 0)
            else:
                # allocate: a READ, WRITE or WRITEBACK miss, or an INSERT
                if family == SCORE:
                    slot = _score_victim(tags, meta, base, ways)
                else:
                    slot = _find(tags, base, ways, EMPTY)
                if slot == EMPTY:
                    if family == RANDOM:
                        slot = base + np.int64(_random(rng, level) % np.uint64(ways))
                    elif family == PLRU:
                        slot = base + _plru_victim(setbits[gset], ways)
                    else:
                        slot = _rrip_victim(meta, base, ways, table[level, RRPV_MAX])
                fetch = kind in (READ, WRITE)
                if fetch and inclusion == EXCLUSIVE:
                    children = _push(pending, children, level + 1, line, FETCH, demand, slot)
                victim = tags[slot]
                if victim != EMPTY:
                    counters[level, EVICTIONS] += 1
                    was_dirty = dirty[slot]
                    if inclusion == INCLUSIVE:
                        was_dirty |= _back_invalidate(table, tags, dirty, counters, level,
                                                      victim)
                    if was_dirty:
                        counters[level, WRITEBACKS] += 1
                    if inclusion == EXCLUSIVE:
                        children = _push(pending, children, level + 1, victim, INSERT, 0,
                                         was_dirty)
                    elif was_dirty:
                        children = _push(pending, children, level + 1, victim, WRITEBACK, 0, 0)
                if fetch and inclusion != EXCLUSIVE:
                    children = _push(pending, children, level + 1, line, READ, demand, 0)
                tags[slot] = line
                dirty[slot] = extra != 0 if kind == INSERT else stores and write_back
                counters[level, FILLS] += 1
                if family == SCORE:
                    clocks[level] += 1
                    meta[slot] = fill_score(rules[level], clocks[level])
                elif family == PLRU:
                    setbits[gset] = _plru_touch(setbits[gset], slot - base, ways)
                elif family == RRIP:
                    near_one_in = table[level, NEAR_ONE_IN]
                    near = near_one_in == 1 or \
                        _random(rng, level) % np.uint64(near_one_in) == np.uint64(0)
                    meta[slot] = table[level, RRPV_MAX] - 1 if near else table[level, RRPV_MAX]
                if stores and not write_back:
                    children = _push(pending, children, level + 1, line, kind, 0, 0)
            for child in range(children - 1, -1, -1):
                depth = _push(stack, depth, pending[child, 0], pending[child, 1],
                              pending[child, 2], pending[child, 3], pending[child, 4])
        served_out[i] = served
        i += 1
    return i, used
