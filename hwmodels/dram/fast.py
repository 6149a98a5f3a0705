"""``fast``: per-request bank, row-buffer and data-bus state, one compiled pass in arrival order.

Each request, in arrival order, finds its bank's row open (hit), closed (miss) or holding
another row (conflict). A conflict precharges at ``max(arrival, ACT + tRAS, last RD + tRTP or
write recovery)``; an activate waits for ``tRP`` after it and ``tRC`` after the bank's last
ACT, then takes the first free slot of its rank's activate calendar: slots of
``max(tRRD_S, tFAW / 4)`` cycles, one ACT each, the long-run ACT rate that tRRD_S and tFAW
allow. (A calendar rather than a last-ACT time because requests taken in arrival order may
activate out of time order, as a controller's queue allows.) The column command follows
``tRCD`` (``tRCDWR``) and ``tCCD_L`` of the bank group; its burst then takes the channel's data
bus: the earliest idle gap that fits it, among the gaps left by the last ``queue_depth``
requests (the reordering a queue of that depth permits), or else the end of the bus
schedule, after ``tCCD_S``, with ``tRTRS`` at a change of direction or rank (a read after a
write also ``tWTR_S``). ``closed`` row policy precharges after every column command. Refresh
is a periodic blackout at the same due cycles as ``detailed``: an ACT inside ``[due, due +
tRFC)`` (``tRFCpb`` per bank) waits for its end, and a refresh between two accesses to a bank
closes its row.

What it ignores (``detailed`` has them): the scheduler (requests keep arrival order per bank),
the command bus, ``tRRD_L`` and the exact four-activate window (the calendar spaces ACTs
evenly), turnaround and ``tCCD`` for bursts placed in an idle gap, ``tWTR_L``, and the
precharges before a refresh. Refreshes are counted from elapsed time, not issued.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numba import njit

from hwmodels.dram.model import (
    NEVER,
    NO_REFRESH,
    DramModel,
    N,
    P,
    open_cycles,
    refresh_schedule,
    scheduled_refreshes,
)
from hwmodels.dram.spec import DramSpec

NONE = -1
ACTIVATE_SLOTS = 4096
"""Activate slots per rank in the calendar ring (ACTs further ahead wrap onto old slots)."""
Bank = IntEnum("Bank", "OPEN OPENED ACT PRE RD WR TOUCH", start=0)
"""Rows of the per-bank state array."""
Rank = IntEnum("Rank", "OPEN_SUM", start=0)
"""Rows of the per-rank state array."""
Group = IntEnum("Group", "COL", start=0)
"""Rows of the per-bank-group state array."""
Chan = IntEnum("Chan", "COL BUS WR_END DIR RANK SEEN", start=0)
"""Rows of the per-channel state array."""
Gap = IntEnum("Gap", "START END BORN COUNT", start=0)
"""Rows of the idle-gap array: ``queue_depth`` slots per channel; COUNT lives in slot 0."""


@njit(cache=True, inline="always")
def refreshes_due(t, first, period):
    """Refreshes due at or before cycle ``t`` when the first is due at ``first``."""
    return 0 if t < first else (t - first) // period + 1


@njit(cache=True, inline="always")
def _close(bs, rs, b, t, per_rank, cnt):
    rs[Rank.OPEN_SUM, b // per_rank] += max(t - bs[Bank.OPENED, b], 0)
    bs[Bank.OPEN, b] = NONE
    cnt[N.PRECHARGES] += 1


@njit(cache=True, inline="always")
def _fill_gap(holes, c, ready, useful, born_after, burst, depth):
    """Start of the earliest burst at or after ``ready`` that fits an idle gap of channel
    ``c``'s data bus (-1 if none), splitting that gap. Gaps ending before ``useful`` (no later
    request can reach them) or left by requests more than a queue depth ago are dropped."""
    base = c * depth
    best = -1
    best_k = -1
    k = 0
    count = holes[Gap.COUNT, base]
    while k < count:
        at = base + k
        if holes[Gap.END, at] < useful or holes[Gap.BORN, at] < born_after:
            count -= 1
            for row in range(3):
                holes[row, at] = holes[row, base + count]
            continue
        start = max(holes[Gap.START, at], ready)
        if start + burst <= holes[Gap.END, at] and (best < 0 or start < best):
            best = start
            best_k = at
        k += 1
    holes[Gap.COUNT, base] = count
    if best >= 0:
        end = holes[Gap.END, best_k]
        holes[Gap.END, best_k] = best
        if holes[Gap.END, best_k] - holes[Gap.START, best_k] < burst:
            holes[Gap.START, best_k] = best + burst
            holes[Gap.END, best_k] = end
        elif end - best - burst >= burst:
            _add_gap(holes, c, best + burst, end, holes[Gap.BORN, best_k], depth)
    return best


@njit(cache=True, inline="always")
def _activate_slot(slots, gr, at, width):
    """Cycle of an ACT of rank ``gr`` wanted at ``at``: in the first activate slot (``width``
    cycles, one ACT each) from there that no ACT of the rank holds yet. A calendar rather than
    a last-ACT time, because requests in arrival order may activate out of time order."""
    size = slots.shape[1]
    k = at // width
    while slots[gr, k % size] == k:
        k += 1
    slots[gr, k % size] = k
    return max(at, k * width)


@njit(cache=True, inline="always")
def _add_gap(holes, c, start, end, born, depth):
    """Record an idle gap [start, end) of channel ``c``'s data bus (dropped when full)."""
    base = c * depth
    count = holes[Gap.COUNT, base]
    if count < depth:
        holes[Gap.START, base + count] = start
        holes[Gap.END, base + count] = end
        holes[Gap.BORN, base + count] = born
        holes[Gap.COUNT, base] = count + 1


@njit(cache=True)
def serve_fast(arrival, bank, row, write, done, p, bs, rs, gs, slots, cs, holes, cnt, first,
               period, busy):
    """Serve requests in arrival order; ``first[b]``/``period``/``busy`` give bank b's refresh
    due cycles and length. All state arrays persist across calls."""
    per_rank = p[P.BANKS_PER_RANK]
    ranks = p[P.RANKS]
    refresh = p[P.REFRESH] != NO_REFRESH
    for i in range(arrival.size):
        t = arrival[i]
        b = bank[i]
        gr = b // per_rank
        gg = b // p[P.BANKS]
        c = gr // ranks
        w = 1 if write[i] else 0
        if refresh and bs[Bank.OPEN, b] != NONE:
            then = refreshes_due(bs[Bank.TOUCH, b], first[b], period)
            if refreshes_due(t, first[b], period) > then:
                _close(bs, rs, b, first[b] + then * period, per_rank, cnt)
        if bs[Bank.OPEN, b] == row[i]:
            cnt[N.ROW_HITS] += 1
        else:
            act = t
            if bs[Bank.OPEN, b] != NONE:
                cnt[N.ROW_CONFLICTS] += 1
                pre = max(t, bs[Bank.PRE, b])
                _close(bs, rs, b, pre, per_rank, cnt)
                act = pre + p[P.RP]
            else:
                cnt[N.ROW_MISSES] += 1
            act = max(act, bs[Bank.ACT, b])
            if refresh:
                k = refreshes_due(act, first[b], period)
                if k > 0 and act < first[b] + (k - 1) * period + busy:
                    act = first[b] + (k - 1) * period + busy
            act = _activate_slot(slots, gr, act, p[P.ACT_SLOT])
            bs[Bank.OPEN, b] = row[i]
            bs[Bank.OPENED, b] = act
            bs[Bank.PRE, b] = act + p[P.RAS]
            bs[Bank.ACT, b] = act + p[P.RC]
            bs[Bank.RD, b] = act + p[P.RCD]
            bs[Bank.WR, b] = act + p[P.RCDWR]
            cnt[N.ACTIVATES] += 1
        latency = p[P.CWL] if w else p[P.CL]
        ready = max(t, bs[Bank.WR, b] if w else bs[Bank.RD, b], gs[Group.COL, gg]) + latency
        seen = cs[Chan.SEEN, c]
        cs[Chan.SEEN, c] = seen + 1
        data = _fill_gap(holes, c, ready, t + min(p[P.CL], p[P.CWL]), seen - p[P.QUEUE],
                         p[P.BURST], p[P.QUEUE])
        if data < 0:
            data = max(ready, cs[Chan.COL, c] + latency, cs[Chan.BUS, c])
            if cs[Chan.DIR, c] != w or cs[Chan.RANK, c] != gr:
                data = max(data, cs[Chan.BUS, c] + p[P.RTRS])
                if w == 0:
                    data = max(data, cs[Chan.WR_END, c] + p[P.WTR_S] + latency)
            if data - cs[Chan.BUS, c] >= p[P.BURST]:
                _add_gap(holes, c, cs[Chan.BUS, c], data, seen, p[P.QUEUE])
            cs[Chan.BUS, c] = data + p[P.BURST]
            if w:
                cs[Chan.WR_END, c] = data + p[P.BURST]
            cs[Chan.DIR, c] = w
            cs[Chan.RANK, c] = gr
        col = data - latency
        cs[Chan.COL, c] = max(cs[Chan.COL, c], col + p[P.CCD_S])
        gs[Group.COL, gg] = col + (p[P.CCD_L_WR] if w else p[P.CCD_L])
        bs[Bank.PRE, b] = max(bs[Bank.PRE, b], col + (p[P.WR_TO_PRE] if w else p[P.RTP]))
        bs[Bank.TOUCH, b] = col
        if p[P.CLOSED] == 1:
            _close(bs, rs, b, bs[Bank.PRE, b], per_rank, cnt)
            bs[Bank.ACT, b] = max(bs[Bank.ACT, b], bs[Bank.PRE, b] + p[P.RP])
        done[i] = data + p[P.BURST]
        cnt[N.WRITES if w else N.READS] += 1


class FastDram(DramModel):
    """Per-request state model in arrival order (see the module docstring)."""

    fidelity = "fast"

    def __init__(self, spec: DramSpec):
        super().__init__(spec)
        channels, ranks = spec.bus_channels, spec.ranks
        self.bank_state = np.full((7, self.banks), NEVER, dtype=np.int64)
        self.bank_state[Bank.OPEN] = NONE
        self.rank_state = np.zeros((1, channels * ranks), dtype=np.int64)
        self.group_state = np.full((1, channels * ranks * spec.bank_groups), NEVER,
                                   dtype=np.int64)
        self.slots = np.full((channels * ranks, ACTIVATE_SLOTS), -1, dtype=np.int64)
        self.channel_state = np.full((6, channels), NEVER, dtype=np.int64)
        self.channel_state[[Chan.DIR, Chan.RANK]] = NONE
        self.channel_state[Chan.SEEN] = 0
        self.gaps = np.zeros((4, channels * spec.queue_depth), dtype=np.int64)
        self.first, self.period, self.busy = refresh_schedule(spec)

    def _serve(self, arrival: np.ndarray, bank: np.ndarray, row: np.ndarray,
               is_write: np.ndarray) -> np.ndarray:
        done = np.zeros(arrival.size, dtype=np.int64)
        serve_fast(arrival, bank, row, is_write, done, self.params, self.bank_state,
                   self.rank_state, self.group_state, self.slots, self.channel_state,
                   self.gaps, self.counters, self.first, self.period, self.busy)
        return done

    def refresh_counts(self, end: int) -> tuple[int, int]:
        return scheduled_refreshes(self.spec, self.first, self.period, end)

    def open_rank_cycles(self, end: int) -> float:
        return open_cycles(self.bank_state[Bank.OPEN], self.bank_state[Bank.OPENED],
                           self.rank_state[Rank.OPEN_SUM], self.spec.banks_per_rank, end)
