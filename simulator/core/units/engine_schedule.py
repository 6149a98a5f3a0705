"""One query's timing on the engines of an in-DRAM unit, in one compiled pass
(``simulator.core.units.dram_units`` describes the model; this is its arithmetic).

Each lookup of the query becomes ``fan`` pieces, on engines ``engine + k`` (k < fan): one for a rank
or bank-group unit, one slice per DIMM for a DIMM unit. Given each lookup's first engine, bag, piece
size and the elements a piece holds, whether each piece hit its engine's cache and how many bursts
it read, and when the DRAM returned each burst (lookup by lookup, piece by piece), it places the
instructions on each channel's command path (one per lookup and channel: the engines of a channel
all see its command bus), finds when each engine's first and last piece is ready (data and
instruction both arrived), pools each engine's pieces from there, and collects the (DIMM, bag)
partial vectors to send with their bytes (one piece's size each: a DIMM's sum of a bag is as large
as the pieces it adds). The channels' and engines' busy times persist across queries in the arrays
passed in. Written as one loop because the same steps as numpy calls (a sort per channel, scatter
minima and maxima, presence masks) cost more than the DRAM model's own pass.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numba import njit

from hwmodels.nmp import datapath_cycles

Param = IntEnum("Param", "INSTRUCTION_S HIT_S CYCLE_S PIPELINE_CYCLES BAG_CYCLES LANES",
                start=0)
"""Entries of the timing array: one instruction's time on a command path, a cache hit's,
one engine cycle, the engine's pipeline depth, its cycles per bag and the elements it adds per
cycle."""


@njit(cache=True)
def schedule_query(now, engine, fan, bag, size, elements, hit, bursts, finish, command_free,
                   engine_free, timing, channel_of, dimm_of, bags):
    """Serve one query's pieces; updates ``command_free`` and ``engine_free``.

    ``engine``, ``bag``, ``size`` and ``elements`` (of one piece) are per lookup, in bag order (as a
    query's lookups come); ``hit`` and ``bursts`` per lookup and piece (``fan`` columns);
    ``channel_of`` and ``dimm_of`` map engines to their channel and DIMM (tables, not divisions, in
    the loop). Returns (when the last engine is done, the longest engine's datapath time, the most
    instructions one channel carried, each engine's pieces, the elements added, the bag of each
    (DIMM, bag) partial vector, by DIMM then bag, and their bytes).

    An engine adds each piece once it is ready: it is done at the later of its last piece's
    readiness plus that piece's cycles, a bag's cycles and the pipeline's depth, and its
    first piece's readiness (or when it was free) plus all its work."""
    n_engines = engine_free.size
    step, hit_s, cycle_s = (timing[Param.INSTRUCTION_S], timing[Param.HIT_S],
                            timing[Param.CYCLE_S])
    lanes = np.int64(timing[Param.LANES])
    first = np.full(n_engines, np.inf)
    last = np.zeros(n_engines)
    tail = np.zeros(n_engines)                  # cycles of the piece that is ready last
    work = np.zeros(n_engines)
    pieces = np.zeros(n_engines, dtype=np.int64)
    sent = np.zeros(command_free.size, dtype=np.int64)
    start = np.maximum(command_free, now)
    engine_bag = np.full(n_engines, -1)          # the bag each engine pools now
    dimms = dimm_of.max() + 1
    dimm_bag = np.full(dimms, -1)
    dimm_bags = np.zeros(dimms * bags, dtype=np.bool_)
    payload = 0
    bag_cycles = timing[Param.BAG_CYCLES]
    added = 0
    burst = 0
    last_elements = -1
    cycles = 0
    for i in range(engine.size):
        b = bag[i]
        if i and b < bag[i - 1]:
            raise ValueError("lookups must come in bag order")
        if elements[i] != last_elements:            # rows of one table share a shape
            last_elements = elements[i]
            cycles = datapath_cycles(last_elements, lanes)
        channel = -1
        arrived = 0.0
        for k in range(fan):
            e = engine[i] + k
            if channel_of[e] != channel:
                channel = channel_of[e]
                sent[channel] += 1
                arrived = start[channel] + sent[channel] * step
            ready = arrived + hit_s if hit[i, k] else arrived
            for _ in range(bursts[i, k]):
                ready = max(ready, finish[burst])
                burst += 1
            first[e] = min(first[e], ready)
            if ready >= last[e]:
                last[e] = ready
                tail[e] = cycles
            pieces[e] += 1
            work[e] += cycles
            if engine_bag[e] != b:
                engine_bag[e] = b
                work[e] += bag_cycles
                d = dimm_of[e]
                if dimm_bag[d] != b:
                    dimm_bag[d] = b
                    dimm_bags[d * bags + b] = True
                    payload += size[i]
        added += fan * elements[i]
    busy = sent > 0
    command_free[busy] = start[busy] + sent[busy] * step
    done = now
    longest = 0.0
    pipeline = timing[Param.PIPELINE_CYCLES]
    for e in range(n_engines):
        if pieces[e] == 0:
            continue
        span = (work[e] + pipeline) * cycle_s
        free = max(last[e] + (tail[e] + bag_cycles + pipeline) * cycle_s,
                   max(first[e], engine_free[e]) + span)
        engine_free[e] = free
        done = max(done, free)
        longest = max(longest, span)
    partials = np.flatnonzero(dimm_bags) % bags
    return done, longest, sent.max(), pieces, added, partials, payload


def burst_coordinates(bank: np.ndarray, row: np.ndarray, fan: int, bank_stride: int,
                      size: np.ndarray, unit: int,
                      hit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The reads of pieces that each lie within one DRAM row: the flat bank and row of every
    burst the cache-missing pieces read (lookup by lookup, piece by piece), each piece's
    bursts (0 for a hit) and the bytes the missing pieces ask for. Lookup ``i``'s piece
    ``k`` reads ``ceil(size[i] / unit)`` bursts at bank ``bank[i] + k * bank_stride``.
    (The arrays are made here, not in the compiled loops: numba's own allocations of this
    size cost more than the loops.)"""
    bursts = np.zeros((bank.size, fan), dtype=np.int64)
    total, requested = _count_bursts(size, unit, hit, bursts)
    burst_bank = np.empty(total, dtype=np.int64)
    burst_row = np.empty(total, dtype=np.int64)
    _place_bursts(bank, row, bank_stride, bursts, burst_bank, burst_row)
    return burst_bank, burst_row, bursts, requested


@njit(cache=True)
def _count_bursts(size, unit, hit, bursts):
    """Fill ``bursts`` (lookup by piece); returns (all bursts, bytes the misses ask for)."""
    total = 0
    requested = 0
    for i in range(size.size):
        per_piece = -(-size[i] // unit)
        for k in range(hit.shape[1]):
            if not hit[i, k]:
                bursts[i, k] = per_piece
                total += per_piece
                requested += size[i]
    return total, requested


@njit(cache=True)
def _place_bursts(bank, row, bank_stride, bursts, burst_bank, burst_row):
    """Each burst's bank and row, lookup by lookup, piece by piece."""
    j = 0
    for i in range(bank.size):
        for k in range(bursts.shape[1]):
            for _ in range(bursts[i, k]):
                burst_bank[j] = bank[i] + k * bank_stride
                burst_row[j] = row[i]
                j += 1
