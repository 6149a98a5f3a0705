"""``fast``: whole requests served in time order from per-bank queues, one compiled pass.

Each bus channel holds a window of up to ``queue_depth`` requests (a controller's queue), kept
as one first-in first-out list per bank; with per-bank command queues (``bank_queue_depth`` >
0) the window is every request the controller holds (``queue_capacity``), the per-bank limit
not enforced. A request joins the window at its arrival, or, when
the window is full, at the column command of the request that leaves it. Each bank plans one
request: its oldest row hit in the data bus's current direction, else its oldest row hit,
else its oldest request (FR-FCFS within a bank; reads and writes are batched because the bus
direction is preferred). The channel serves the planned request whose column command can
issue first (ties: the oldest request), whole: its PRE, ACT, column command and burst are
placed at once. Picks come in column-command order, so the channel's column and data-bus
state only moves forward; it serves its window while the next pick comes before the next
arrival, and a call drains every window before it returns.

Timing of a request: a conflict precharges at ``max(joined, ACT + tRAS, last RD + tRTP or
write recovery)``; an activate waits for ``tRP`` after it and ``tRC`` after the bank's last
ACT, then takes the first free slot of its rank's activate calendar: slots of
``max(tRRD_S, tFAW / 4)`` cycles, one ACT each, the long-run rate tRRD_S and tFAW allow (a
calendar because picks in column order may activate out of time order). The column command
follows ``tRCD`` (``tRCDWR``), ``tCCD_L`` of the bank group, ``tCCD_S`` of the channel, and
the last burst, with ``tRTRS`` at a change of direction or rank (a read after a write also
``tWTR_S``). Picks weigh the same bounds, a miss's also the first free activate slot. As in
``detailed``, after ``ROW_HIT_CAP`` column commands to an open row a queued conflict whose
precharge is due before the next hit's column command closes the row. ``closed`` row policy
precharges after every column command. Refresh is a periodic blackout at the same due cycles
as ``detailed``: an ACT inside ``[due, due + tRFC)`` (``tRFCpb`` per bank) waits for its end,
and a refresh due before an access's column command closes the bank's row, which the access
opens again after it (a row hit too: its column command cannot issue inside the refresh);
an activate whose column command (``tRCD`` later) would reach a due cycle waits for that
refresh to end, also where the activate calendar's first free slot moved it there. A bank's
plan counts that wait (``_after_refresh``), and a picked hit whose column command would fall
after the refresh is planned again as such an activate: a pick that ignored it would move the
channel's column order past the refresh and hold every later request, of any rank, behind
it.

What it ignores (``detailed`` has them): the interleaving of one request's row commands with
other requests' commands after it is picked, the command bus, ``tRRD_L`` and the exact
four-activate window (the calendar spaces ACTs evenly), ``tWTR_L``, and the precharges before
a refresh. Refreshes are counted from elapsed time, not issued.

Speed: one loop body, no per-request allocation; the pick reads a contiguous list of busy
banks (one sort key per bank), and array indices are cast to ``np.uint64`` so that numba
drops its negative-index checks (measured: about 7 % on ``bench_dram``). The per-bank and
per-channel state arrays are column-major (``order="F"``): a bank's fields, or a channel's,
lie together in one or two cache lines instead of one line per field, about 10 % of the
kernel's time on the quickstart's HBM (160 channels, visited in turn by consecutive bursts).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numba import njit

from hwmodels.dram.detailed import ROW_HIT_CAP
from hwmodels.dram.model import (
    NEVER,
    NO_REFRESH,
    DramModel,
    N,
    P,
    open_cycles,
    queue_capacity,
    refresh_schedule,
    scheduled_refreshes,
)
from hwmodels.dram.spec import DramSpec
from hwmodels.int_division import quotient

NONE = -1
INF = np.int64(1 << 62)
SLOT_BITS = 8
SLOT_MASK = (1 << SLOT_BITS) - 1
AGE_BITS = 22
AGE_MASK = (1 << AGE_BITS) - 1
ORDER_BITS = AGE_BITS + SLOT_BITS
LATER = (1 << (63 - ORDER_BITS)) - 1
"""A pick's sort key, one int: the cycles after the channel's earliest column slot (at most
LATER) above ORDER_BITS, then the request index modulo 2**AGE_BITS (ties of age only matter
among requests queued together, far fewer apart), and the bank's slot in its channel's busy
list (SLOT_BITS: up to 256 banks per channel)."""
ACTIVATE_SLOTS = 4096
"""Activate slots per rank in the calendar ring, a power of two (ACTs further ahead wrap onto
old slots)."""
Bank = IntEnum("Bank", "OPEN OPENED ACT PRE RD WR REFRESH STREAK", start=0)
"""Rows of the per-bank state array (REFRESH: the first refresh due after its last column
command; STREAK: column commands since its last ACT)."""
Queue = IntEnum("Queue", "HEAD COUNT KEY POS HIT OTHER CLOSE SLOT RANK GROUP CHANNEL",
                start=0)
"""Rows of the per-bank queue array: where its list starts in its ring (``fifo_*`` rows, a
power of two >= the window long), queued requests, and of the one the bank serves next:
the earliest column command its bank allows, its place in the bank's list, whether it hits
the open row; OTHER: the place of the bank's oldest request that does not (NONE if none or
not needed); CLOSE: whether the open row is to close for that request (``ROW_HIT_CAP``);
SLOT: the bank's place in its channel's list of busy banks; RANK, GROUP, CHANNEL: the bank's
flat rank, bank group and bus channel."""
Slot = IntEnum("Slot", "BANK KEY ORDER TAG", start=0)
"""Rows of the busy-bank list (``per_channel`` slots per channel, the first ``Chan.BUSY`` in
use), what the pick loop reads contiguously: the bank, its planned request's earliest column
command by the bank and its bank group, its age (low bits of its index), and ``TAG`` =
4 x rank + 2 x write + miss (which data-bus turnaround and activate slot it waits for)."""
Rank = IntEnum("Rank", "OPEN_SUM", start=0)
"""Rows of the per-rank state array."""
Group = IntEnum("Group", "COL", start=0)
"""Rows of the per-bank-group state array."""
Chan = IntEnum("Chan", "COL BUS WR_END DIR RANK COUNT BUSY MISSES BEST BEST_T FREED",
               start=0)
"""Rows of the per-channel state array: column and data-bus times, the last burst's direction
and rank, queued requests, banks with queued requests (of which MISSES plan a row miss or
conflict), the cached next pick (bank, column cycle; NONE when stale), and the column command
that last freed a seat of a full window."""


@njit(cache=True, inline="always")
def refreshes_due(t, first, period, inverse):
    """Refreshes due at or before cycle ``t`` when the first is due at ``first`` (``inverse``
    = 1 / ``period``)."""
    return 0 if t < first else quotient(t - first, period, inverse) + 1


@njit(cache=True, inline="always")
def _after_refresh(act, next_due, first, period, inverse, busy_cycles, lead):
    """The first cycle at or after ``act`` at which a bank whose refreshes are due at ``first
    + k x period`` (``next_due``: the first due after its last column command; ``inverse`` =
    1 / ``period``) can activate a row whose column command follows ``lead`` cycles later: an
    ACT inside ``[due, due + busy_cycles)`` waits for the refresh's end, and so does one before
    a due that its column command would reach (the refresh would close the row first)."""
    last = next_due - period
    if act >= next_due:
        last = first + (refreshes_due(act, first, period, inverse) - 1) * period
    if last >= first and act < last + busy_cycles:
        return last + busy_cycles
    if act + lead >= last + period:
        return last + period + busy_cycles
    return act


@njit(cache=True, inline="always")
def _close(bs, rs, b, gr, t, cnt):
    """Precharge bank ``b`` (of flat rank ``gr``) at cycle ``t``."""
    rs[Rank.OPEN_SUM, gr] += max(t - bs[Bank.OPENED, b], 0)
    bs[Bank.OPEN, b] = NONE
    cnt[N.PRECHARGES] += 1


@njit(cache=True, inline="always")
def _free_slot(slots, gr, at, width, inverse):
    """The first activate slot (``width`` cycles, one ACT each; ``inverse`` = 1 / width) of
    rank ``gr`` at or after cycle ``at`` >= 0 that no ACT holds yet."""
    mask = slots.shape[1] - 1
    k = quotient(at, width, inverse)
    while slots[gr, k & mask] == k:
        k += 1
    return k


@njit(cache=True, inline="always")
def _column_floor(col, bus, wr_end, same, w, lat, rtrs, wtr):
    """Earliest column command of a burst of direction ``w`` by the channel: after the last
    column command's ``tCCD_S`` (``col``) and the last burst (``bus``), with ``tRTRS`` unless
    the direction and rank stay the ``same`` (a read after a write also ``tWTR_S``)."""
    if same:
        return max(col, bus - lat)
    floor = max(col, bus + rtrs - lat)
    if w == 0:
        floor = max(floor, wr_end + wtr)
    return floor


@njit(cache=True)
def serve_fast(arrival, bank, row, write, done, p, bs, bq, fifo_req, fifo_at, rs, gs, slots,
               cs, busy, cnt, first, period, busy_cycles):
    """Serve requests (in arrival order) through each channel's window in time order;
    ``first[b]``/``period``/``busy_cycles`` give bank b's refresh due cycles and length. All
    state arrays persist across calls; each call's windows are drained before it returns.
    One loop body: each turn either queues the next arrival, serves one request or closes a
    row (``ROW_HIT_CAP``), then re-plans the bank it touched. ``u*`` names hold indices as
    ``np.uint64`` (see the module docstring)."""
    per_rank = p[P.BANKS_PER_RANK]
    per_group = p[P.BANKS]
    per_channel = p[P.RANKS] * per_rank
    channels = cs.shape[1]
    depth = p[P.QUEUE]
    refresh = p[P.REFRESH] != NO_REFRESH
    cl, cwl, rcd, rcdwr, rp = p[P.CL], p[P.CWL], p[P.RCD], p[P.RCDWR], p[P.RP]
    rtrs, wtr, burst, ccd_s = p[P.RTRS], p[P.WTR_S], p[P.BURST], p[P.CCD_S]
    shared_bus = p[P.SHARED_BUS] == 1
    act_slot, act_size = p[P.ACT_SLOT], slots.shape[1]
    ring = fifo_req.shape[1] - 1
    per_slot = 1.0 / act_slot
    per_period = 1.0 / max(period, 1)
    ranks = p[P.RANKS]
    floors = np.empty(4 * slots.shape[0], dtype=np.int64)
    n = arrival.size
    nxt = 0
    drain = 0
    while True:
        # the channel to act on: the next arrival's, or, at the end, each in turn
        if nxt < n:
            t_next = arrival[nxt]
            b = bank[nxt]
            ub = np.uint64(b)
            c = bq[Queue.CHANNEL, ub]
            uc = np.uint64(c)
        else:
            while drain < channels and cs[Chan.COUNT, drain] == 0:
                drain += 1
            if drain == channels:
                break
            t_next = INF
            c = drain
            uc = np.uint64(c)
        count = cs[Chan.COUNT, uc]
        serve = False
        if count == depth or (count > 0 and t_next > cs[Chan.COL, uc]):
            # (no pick can come before the channel's next column slot ``Chan.COL``)
            if cs[Chan.BEST, uc] == NONE:
                # the bank whose planned request can issue its column command first
                col, bus, wr_end = cs[Chan.COL, uc], cs[Chan.BUS, uc], cs[Chan.WR_END, uc]
                last_dir, last_rank = cs[Chan.DIR, uc], cs[Chan.RANK, uc]
                # earliest column command by tag (rank, direction, miss): the data bus,
                # and for a miss the rank's first free activate slot from there
                other_read = _column_floor(col, bus, wr_end, False, 0, cl, rtrs, wtr)
                other_write = _column_floor(col, bus, wr_end, False, 1, cwl, rtrs, wtr)
                same = _column_floor(col, bus, wr_end, True, last_dir,
                                     cwl if last_dir == 1 else cl, rtrs, wtr)
                base = min(other_read, other_write, same)
                activate = NEVER
                for gr in range(c * ranks, (c + 1) * ranks):
                    if cs[Chan.MISSES, uc] > 0:
                        ready = max(base - rcd, 0)
                        activate = _free_slot(slots, gr, ready, act_slot, per_slot) * act_slot
                    for w in range(2):
                        floor = other_write if w else other_read
                        if w == last_dir and gr == last_rank:
                            floor = same
                        floors[4 * gr + 2 * w] = floor
                        floors[4 * gr + 2 * w + 1] = max(floor,
                                                         activate + (rcdwr if w else rcd))
                # one int per bank orders the picks without branches: cycles after
                # ``base``, then the age, then the slot
                best_key = INF
                start = c * per_channel
                keys = busy[Slot.KEY]
                tags = busy[Slot.TAG]
                orders = busy[Slot.ORDER]
                for s in range(cs[Chan.BUSY, uc]):
                    x = np.uint64(start + s)
                    later = min(max(keys[x], floors[np.uint64(tags[x])]) - base, LATER)
                    best_key = min(best_key, later << ORDER_BITS | orders[x] << SLOT_BITS | s)
                s = start + (best_key & SLOT_MASK)
                cs[Chan.BEST, uc] = busy[Slot.BANK, s]
                cs[Chan.BEST_T, uc] = max(busy[Slot.KEY, s], floors[busy[Slot.TAG, s]])
            serve = cs[Chan.BEST_T, uc] < t_next or count == depth
        switched = False
        b_cap = cs[Chan.BEST, uc] if serve else NONE
        due = bs[Bank.REFRESH, b_cap] if serve else INF
        if serve and bq[Queue.HIT, b_cap] == 1 and bq[Queue.OTHER, b_cap] != NONE and (
                bs[Bank.STREAK, b_cap] >= ROW_HIT_CAP and cs[Chan.BEST_T, uc] > max(
                    fifo_at[b_cap, (bq[Queue.HEAD, b_cap] + bq[Queue.OTHER, b_cap]) & ring],
                    bs[Bank.PRE, b_cap])):
            # past ROW_HIT_CAP hits, the bank's oldest conflict precharges before this hit's
            # column command can issue (as in ``detailed``): the row closes, hits wait
            b = b_cap
            ub = np.uint64(b)
            bq[Queue.CLOSE, ub] = 1
            cs[Chan.BEST, uc] = NONE
        elif serve and refresh and bq[Queue.HIT, b_cap] == 1 and cs[Chan.BEST_T, uc] >= due \
                and min(bs[Bank.RD, b_cap], bs[Bank.WR, b_cap]) < due:
            # the bank's refresh comes due before this hit's column command: it closes the
            # row, so no column command reaches the row from then on and the hit is planned
            # again, as an activate after the refresh (without that, serving it would move
            # the channel's column order past the refresh and hold every later request)
            b = b_cap
            ub = np.uint64(b)
            bs[Bank.RD, ub] = max(bs[Bank.RD, ub], due)
            bs[Bank.WR, ub] = max(bs[Bank.WR, ub], due)
            cs[Chan.BEST, uc] = NONE
        elif not serve:
            # queue the next arrival at its bank; it waits for a seat in a full window
            i = nxt
            ui = np.uint64(i)
            nxt += 1
            k = bq[Queue.COUNT, ub]
            at = (bq[Queue.HEAD, ub] + k) & ring
            uat = np.uint64(at)
            fifo_req[ub, uat] = i
            fifo_at[ub, uat] = max(t_next, cs[Chan.FREED, uc])
            bq[Queue.COUNT, ub] = k + 1
            cs[Chan.COUNT, uc] = count + 1
            if k == 0:
                slot = c * per_channel + cs[Chan.BUSY, uc]
                uslot = np.uint64(slot)
                busy[Slot.BANK, uslot] = b
                busy[Slot.TAG, uslot] = 0        # (not a miss until planned)
                bq[Queue.SLOT, ub] = slot
                cs[Chan.BUSY, uc] += 1
            elif bq[Queue.HIT, ub] == 1 or row[ui] != bs[Bank.OPEN, ub]:
                continue        # the bank's plan stays: its row hit, or its oldest request
            if cs[Chan.BEST, uc] == b:
                cs[Chan.BEST, uc] = NONE
        else:
            # serve bank b's planned request whole, then take it out of its list
            b = cs[Chan.BEST, uc]
            ub = np.uint64(b)
            cs[Chan.BEST, uc] = NONE
            head = bq[Queue.HEAD, ub]
            at = (head + bq[Queue.POS, ub]) & ring
            uat = np.uint64(at)
            i = fifo_req[ub, uat]
            ui = np.uint64(i)
            t = fifo_at[ub, uat]
            while at != head:           # the older requests move up one place
                before = (at - 1) & ring
                fifo_req[ub, uat] = fifo_req[ub, before]
                fifo_at[ub, uat] = fifo_at[ub, before]
                at = before
                uat = np.uint64(at)
            bq[Queue.HEAD, ub] = (head + 1) & ring
            left = bq[Queue.COUNT, ub] - 1
            bq[Queue.COUNT, ub] = left
            cs[Chan.COUNT, uc] = count - 1
            if left == 0:
                last = c * per_channel + cs[Chan.BUSY, uc] - 1
                slot = bq[Queue.SLOT, ub]
                uslot = np.uint64(slot)
                cs[Chan.MISSES, uc] -= busy[Slot.TAG, uslot] & 1
                for r in range(busy.shape[0]):
                    busy[r, uslot] = busy[r, last]
                bq[Queue.SLOT, busy[Slot.BANK, uslot]] = slot
                cs[Chan.BUSY, uc] -= 1
            gr = bq[Queue.RANK, ub]
            ugr = np.uint64(gr)
            gg = bq[Queue.GROUP, ub]
            ugg = np.uint64(gg)
            w = 1 if write[ui] else 0
            latency = cwl if w else cl
            floor = _column_floor(cs[Chan.COL, uc], cs[Chan.BUS, uc], cs[Chan.WR_END, uc],
                                  cs[Chan.DIR, uc] == w and cs[Chan.RANK, uc] == gr, w,
                                  latency, rtrs, wtr)
            due = bs[Bank.REFRESH, ub]
            ready = max(t, bs[Bank.WR, ub] if w else bs[Bank.RD, ub], gs[Group.COL, ugg], floor)
            if refresh and bs[Bank.OPEN, ub] != NONE and (
                    t >= due or (bs[Bank.OPEN, ub] == row[ui] and ready >= due)):
                # the refresh comes due before this column command: it closes the row first,
                # and the row opens again after it
                _close(bs, rs, ub, ugr, due, cnt)
                t = max(t, due)
            if bs[Bank.OPEN, ub] == row[ui]:
                cnt[N.ROW_HITS] += 1
            else:
                act = t
                if bs[Bank.OPEN, ub] != NONE:
                    cnt[N.ROW_CONFLICTS] += 1
                    pre = max(t, bs[Bank.PRE, ub])
                    _close(bs, rs, ub, ugr, pre, cnt)
                    act = pre + rp
                else:
                    cnt[N.ROW_MISSES] += 1
                act = max(act, bs[Bank.ACT, ub])
                while True:
                    # the first free activate slot; where it moves the ACT into a refresh, or
                    # its column command onto a due cycle, after that refresh instead
                    taken = _free_slot(slots, gr, act, act_slot, per_slot)
                    slotted = max(act, taken * act_slot)
                    act = slotted
                    if refresh:
                        act = _after_refresh(slotted, bs[Bank.REFRESH, ub], first[ub], period,
                                             per_period, busy_cycles, rcdwr if w else rcd)
                    if act == slotted:
                        break
                slots[ugr, taken & (act_size - 1)] = taken
                bs[Bank.OPEN, ub] = row[ui]
                bs[Bank.OPENED, ub] = act
                bs[Bank.STREAK, ub] = 0
                bq[Queue.CLOSE, ub] = 0
                bs[Bank.PRE, ub] = act + p[P.RAS]
                bs[Bank.ACT, ub] = act + p[P.RC]
                bs[Bank.RD, ub] = act + rcd
                bs[Bank.WR, ub] = act + rcdwr
                cnt[N.ACTIVATES] += 1
            col = max(t, bs[Bank.WR, ub] if w else bs[Bank.RD, ub], gs[Group.COL, ugg], floor)
            data = col + latency
            cs[Chan.COL, uc] = col + ccd_s
            if shared_bus:
                cs[Chan.BUS, uc] = data + burst
                if w:
                    cs[Chan.WR_END, uc] = data + burst
            switched = cs[Chan.DIR, uc] != w
            cs[Chan.DIR, uc] = w
            cs[Chan.RANK, uc] = gr
            if count == depth:
                cs[Chan.FREED, uc] = col
            gs[Group.COL, ugg] = col + (p[P.CCD_L_WR] if w else p[P.CCD_L])
            for k in range(gg * per_group, (gg + 1) * per_group):
                uk = np.uint64(k)
                if bq[Queue.COUNT, uk] > 0:
                    slot = bq[Queue.SLOT, uk]
                    uslot = np.uint64(slot)
                    busy[Slot.KEY, uslot] = max(bq[Queue.KEY, uk], gs[Group.COL, ugg])
            bs[Bank.PRE, ub] = max(bs[Bank.PRE, ub], col + (p[P.WR_TO_PRE] if w else p[P.RTP]))
            bs[Bank.STREAK, ub] += 1
            if refresh and col >= bs[Bank.REFRESH, ub]:
                bs[Bank.REFRESH, ub] = first[ub] + refreshes_due(col, first[ub], period,
                                                               per_period) * period
            if p[P.CLOSED] == 1:
                _close(bs, rs, ub, ugr, bs[Bank.PRE, ub], cnt)
                bs[Bank.ACT, ub] = max(bs[Bank.ACT, ub], bs[Bank.PRE, ub] + rp)
            done[ui] = data + burst
            cnt[N.WRITES if w else N.READS] += 1
        # re-plan bank b (after a change of data-bus direction every busy bank of the
        # channel): serve its oldest row hit of the bus's direction, else its oldest row
        # hit, else its oldest request; cache the earliest column command its bank and
        # bank group allow that request
        start = c * per_channel
        for q in range(cs[Chan.BUSY, uc] + 1 if switched else 1):
            k = b if q == 0 else busy[Slot.BANK, start + q - 1]
            uk = np.uint64(k)
            count = bq[Queue.COUNT, uk]
            if count == 0 or (q > 0 and k == b):
                continue
            open_row = bs[Bank.OPEN, uk]
            pos = 0
            hit = 0
            other = NONE
            if open_row != NONE:
                head = bq[Queue.HEAD, uk]
                same = NONE
                capped = bs[Bank.STREAK, uk] >= ROW_HIT_CAP      # (OTHER only matters then)
                for j in range(count):
                    ui = np.uint64(fifo_req[uk, np.uint64((head + j) & ring)])
                    if row[ui] != open_row:
                        if other == NONE:
                            other = j
                            if same != NONE:
                                break
                    elif same == NONE and write[ui] == (cs[Chan.DIR, uc] == 1):
                        same = j
                        if not capped or other != NONE:
                            break
                    elif hit == 0:
                        pos = j
                        hit = 1
                if same != NONE:
                    pos = same
                    hit = 1
                if bq[Queue.CLOSE, uk] == 1 and other != NONE:
                    pos = other         # the row closes for the bank's oldest conflict
                    hit = 0
            bq[Queue.OTHER, uk] = other
            at = (bq[Queue.HEAD, uk] + pos) & ring
            uat = np.uint64(at)
            i = fifo_req[uk, uat]
            ui = np.uint64(i)
            t = fifo_at[uk, uat]
            w = 1 if write[ui] else 0
            if hit:
                key = max(t, bs[Bank.WR, uk] if w else bs[Bank.RD, uk])
                if refresh and key >= bs[Bank.REFRESH, uk]:
                    # a refresh closes the row first: the hit waits for it and activates
                    lead = rcdwr if w else rcd
                    key = _after_refresh(max(t, bs[Bank.ACT, uk], bs[Bank.REFRESH, uk]),
                                         bs[Bank.REFRESH, uk], first[uk], period, per_period,
                                         busy_cycles, lead) + lead
            else:
                if open_row != NONE:
                    t = max(t, bs[Bank.PRE, uk]) + rp
                act = max(t, bs[Bank.ACT, uk])
                lead = rcdwr if w else rcd
                if refresh:
                    act = _after_refresh(act, bs[Bank.REFRESH, uk], first[uk], period,
                                         per_period, busy_cycles, lead)
                key = act + lead
            bq[Queue.KEY, uk] = key
            bq[Queue.POS, uk] = pos
            bq[Queue.HIT, uk] = hit
            slot = bq[Queue.SLOT, uk]
            uslot = np.uint64(slot)
            key = max(key, gs[Group.COL, bq[Queue.GROUP, uk]])
            order = i & AGE_MASK
            busy[Slot.KEY, uslot] = key
            busy[Slot.ORDER, uslot] = order
            tag = 4 * bq[Queue.RANK, uk] + 2 * w + 1 - hit
            cs[Chan.MISSES, uc] += (tag & 1) - (busy[Slot.TAG, uslot] & 1)
            busy[Slot.TAG, uslot] = tag
            best = cs[Chan.BEST, uc]
            if best != NONE:
                # a cached pick (and its channel's ``floors``) stays valid unless this bank's
                # new plan goes first (ties: the age, as in the pick loop)
                t = max(key, floors[tag])
                best_t = cs[Chan.BEST_T, uc]
                if t < best_t or (t == best_t
                                  and order < busy[Slot.ORDER, bq[Queue.SLOT, best]]):
                    cs[Chan.BEST, uc] = k
                    cs[Chan.BEST_T, uc] = t


class FastDram(DramModel):
    """Per-request state model served in time order (see the module docstring)."""

    fidelity = "fast"

    def __init__(self, spec: DramSpec, path: str = "channel"):
        super().__init__(spec, path)
        layout = self.layout
        channels, ranks = layout.bus_channels, layout.ranks
        self.bank_state = np.full((len(Bank), self.banks), NEVER, dtype=np.int64, order="F")
        self.bank_state[Bank.OPEN] = NONE
        self.bank_state[Bank.STREAK] = 0
        self.bank_queue = np.zeros((len(Queue), self.banks), dtype=np.int64, order="F")
        self.bank_queue[Queue.KEY] = INF
        flat = np.arange(self.banks, dtype=np.int64)
        self.bank_queue[Queue.RANK] = flat // spec.banks_per_rank
        self.bank_queue[Queue.GROUP] = flat // spec.banks_per_group
        self.bank_queue[Queue.CHANNEL] = flat // (ranks * spec.banks_per_rank)
        window = queue_capacity(self.layout)
        self.params[P.QUEUE] = window
        ring = 1 << (window - 1).bit_length()
        self.fifo_req = np.zeros((self.banks, ring), dtype=np.int64)
        self.fifo_at = np.zeros((self.banks, ring), dtype=np.int64)
        self.rank_state = np.zeros((1, channels * ranks), dtype=np.int64)
        self.group_state = np.full((1, channels * ranks * spec.bank_groups), NEVER,
                                   dtype=np.int64)
        self.slots = np.full((channels * ranks, ACTIVATE_SLOTS), -1, dtype=np.int64)
        self.channel_state = np.full((len(Chan), channels), NEVER, dtype=np.int64, order="F")
        self.channel_state[[Chan.DIR, Chan.RANK, Chan.BEST]] = NONE
        self.channel_state[[Chan.COUNT, Chan.BUSY, Chan.MISSES]] = 0
        self.busy_banks = np.zeros((len(Slot), self.banks), dtype=np.int64)
        self.first, self.period, self.busy = refresh_schedule(spec)
        self.bank_state[Bank.REFRESH] = self.first

    def _serve(self, arrival: np.ndarray, bank: np.ndarray, row: np.ndarray,
               is_write: np.ndarray, line: np.ndarray | None = None) -> np.ndarray:
        done = np.zeros(arrival.size, dtype=np.int64)
        serve_fast(arrival, bank, row, is_write, done, self.params, self.bank_state,
                   self.bank_queue, self.fifo_req, self.fifo_at, self.rank_state,
                   self.group_state, self.slots, self.channel_state, self.busy_banks,
                   self.counters, self.first, self.period, self.busy)
        return done

    def refresh_counts(self, end: int) -> tuple[int, int]:
        return scheduled_refreshes(self.spec, self.first, self.period, end)

    def open_rank_cycles(self, end: int) -> float:
        return open_cycles(self.bank_state[Bank.OPEN], self.bank_state[Bank.OPENED],
                           self.rank_state[Rank.OPEN_SUM], self.spec.banks_per_rank, end)
