"""``detailed``: a command-level DRAM controller and device, one compiled kernel.

Each bus channel (channel x pseudo-channel) has a controller with a queue of ``queue_depth``
requests (Ramulator 2's generic controller: one request buffer), or, with ``bank_queue_depth``
> 0, DRAMsim3's structure (``queue_structure = PER_BANK``): a transaction queue of
``queue_depth`` in front of a command queue of ``bank_queue_depth`` per bank. A request moves
into its bank's queue at once when there is room, else waits in the transaction queue and
the oldest waiting one moves when its bank's queue frees a slot; the scheduler sees only
requests in bank queues. A request the controller cannot take (its queue, or transaction
queue, full) waits outside in arrival order; ``admitted`` records when each was taken in
(DRAMsim3 counts its latency from there, ``memtrace`` from the trace's stamp). With
``merge_reads`` a read of an address that a queued read also reads takes no place in the queue
and returns with that read (DRAMsim3's ``Controller::AddTransaction``); it counts as a read and
a row hit. Requests decoded without an address (``read_decoded``) are not merged.

The controller issues ACT, PRE, RD, WR, REF (all-bank) and REFpb (per-bank) commands, each at the
first cycle every timing constraint allows:

- bank: ACT->RD tRCD, ACT->WR tRCDWR, ACT->PRE tRAS, ACT->ACT tRC, PRE->ACT tRP, RD->PRE tRTP,
  WR->PRE CWL + BL/2 + tWR (write recovery);
- bank group / rank: ACT->ACT tRRD_L / tRRD_S, at most four ACTs in tFAW; column commands by
  ``model.column_gaps`` (tCCD_L/S, tCCD_L_WR, write-to-read tWTR_L/S, read-to-write
  turnaround, rank-to-rank switch tRTRS);
- refresh: every tREFI (ranks of a channel staggered) the rank is precharged and refreshed, and
  it takes no other command until REF + tRFC; per-bank refresh does the same to one bank every
  tREFIpb, banks in rotation; REF->ACT is tRFC / tRFCpb;
- command bus: one command per cycle (HBM: one row and one column command per cycle; DDR5's
  ACT, RD and WR hold it for two cycles).

Scheduling: at each step the controller takes the command (of any queued request, or of a due
refresh) that can issue earliest; ties go to refresh, then (FR-FCFS) row-hit column commands,
then the ACT of a request whose own PRE closed its bank, then the oldest request. ``fcfs``
drops these preferences: commands issue oldest-first among the ready ones, which keeps bank
parallelism. As in DRAMsim3's command queue, a request's PRE waits while queued requests
still hit the bank's open row, until ``ROW_HIT_CAP`` column commands have gone to that row
since its ACT (refresh precharges do not wait): an activated row is not closed before the
request that opened it has read it, and row hits cannot starve a conflict. ``closed`` row
policy precharges a bank after a column command unless another queued request hits the same
row (RDA/WRA). Time jumps from one event to the next (command, arrival, refresh due), never
cycle by cycle. A step costs little per queued request: each caches its next command and the
cycle its own bank allows it, re-planned only when a command changes that bank (or refreshes
its rank), and the rank, bank-group and command-bus bounds come from one small table per step
(``_bounds``).

What it ignores: power-down and self-refresh modes, refresh postponing, write queues and
read/write draining modes (reads and writes share one queue in arrival order), the additive
latency, ODT, data bus inversion and error correction, bank-group-level command timing of
DDR5 same-bank refresh (per-bank refresh refreshes one bank), and scheduling across calls:
each call's requests are drained before it returns (timing state carries over; the queue
does not). Refreshes are issued (and counted) on a channel as its requests advance its
time; a channel that gets no requests issues none. A request completes at the end of its
burst (reads: data at the controller; writes: data written).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numba import njit

from hwmodels.dram.model import (
    ALL_BANK,
    NEVER,
    NO_REFRESH,
    OTHER_RANK,
    PER_BANK,
    SAME_GROUP,
    SAME_RANK,
    DramModel,
    N,
    P,
    column_gaps,
    open_cycles,
    queue_capacity,
    refresh_phase,
)
from hwmodels.dram.spec import DramSpec

ACT, PRE, RD, WR, REF, REFPB = range(6)
COMMANDS = ("ACT", "PRE", "RD", "WR", "REF", "REFpb")
"""Command codes of the trace: row ``(cycle, command, rank, bank_group, bank, row)``."""
NONE = -1
INF = np.int64(1 << 62)
Bank = IntEnum("Bank", "OPEN OPENED ACT PRE RD WR HITS STREAK QUEUED", start=0)
"""Rows of the per-bank state array; HITS: queued requests that hit the open row, STREAK:
column commands since the last ACT, QUEUED: requests in the bank's command queue."""
ROW_HIT_CAP = 4
"""Column commands after an ACT beyond which a PRE may close a row that queued requests still
hit (DRAMsim3's command queue uses 4), so that row hits cannot starve a conflict."""
Rank = IntEnum("Rank", "ACT RD WR FAW_POS DUE PTR OPEN_SUM", start=0)
"""Rows of the per-rank state array."""
Group = IntEnum("Group", "ACT RD WR", start=0)
"""Rows of the per-bank-group state array."""
Chan = IntEnum("Chan", "NOW ROW_BUS COL_BUS", start=0)
"""Rows of the per-channel state array."""
Where = IntEnum("Where", "RANK GROUP INDEX", start=0)
"""Rows of the per-bank position array: flat rank, flat bank group, bank index in its rank."""
Q = IntEnum("Q", "REQ FLAG BANK RANK GROUP SEQ T CMD KEY ACTIVE", start=0)
"""Rows of the queue array: request index, flag, flat bank and rank, bank group within the
channel, arrival sequence (the age for ties), the cached plan: its next command, the
earliest cycle its bank allows it and its ``_bounds`` table index, and whether the scheduler
sees it (1: in its bank's command queue; 0: waiting in the transaction queue for room
there)."""
# request flags: which row command the request needed
NEEDED_NOTHING, NEEDED_ACT, NEEDED_PRE = 0, 1, 2


@njit(cache=True, inline="always")
def _record(trace, trace_n, t, cmd, bank, row):
    """Append one command (cycle, code, flat bank, row) to the trace when it has room (test
    mode); ``command_trace`` decodes the bank."""
    k = trace_n[0]
    if k < trace.shape[0]:
        trace[k, 0] = t
        trace[k, 1] = cmd
        trace[k, 2] = bank
        trace[k, 5] = row
        trace_n[0] = k + 1


@njit(cache=True, inline="always")
def _use_bus(cs, c, t, is_column, p, cycles=1):
    """Occupy the command bus from cycle ``t`` for ``cycles`` cycles."""
    last = t + cycles - 1
    if p[P.DUAL_BUS] == 0 or not is_column:
        cs[Chan.ROW_BUS, c] = last
    if p[P.DUAL_BUS] == 0 or is_column:
        cs[Chan.COL_BUS, c] = last


@njit(cache=True, inline="always")
def _precharge(bs, rs, wb, b, t, p, cnt):
    bs[Bank.ACT, b] = max(bs[Bank.ACT, b], t + p[P.RP])
    rs[Rank.OPEN_SUM, wb[Where.RANK, b]] += max(t - bs[Bank.OPENED, b], 0)
    bs[Bank.OPEN, b] = NONE
    cnt[N.PRECHARGES] += 1


@njit(cache=True, inline="always")
def _activate(bs, rs, gs, faw, wb, b, row, t, p, cnt):
    gr = wb[Where.RANK, b]
    gg = wb[Where.GROUP, b]
    bs[Bank.OPEN, b] = row
    bs[Bank.OPENED, b] = t
    bs[Bank.STREAK, b] = 0
    bs[Bank.PRE, b] = max(bs[Bank.PRE, b], t + p[P.RAS])
    bs[Bank.ACT, b] = max(bs[Bank.ACT, b], t + p[P.RC])
    bs[Bank.RD, b] = max(bs[Bank.RD, b], t + p[P.RCD])
    bs[Bank.WR, b] = max(bs[Bank.WR, b], t + p[P.RCDWR])
    rs[Rank.ACT, gr] = max(rs[Rank.ACT, gr], t + p[P.RRD_S])
    gs[Group.ACT, gg] = max(gs[Group.ACT, gg], t + p[P.RRD_L])
    pos = rs[Rank.FAW_POS, gr]
    faw[gr * 4 + pos] = t
    rs[Rank.FAW_POS, gr] = (pos + 1) % 4
    cnt[N.ACTIVATES] += 1


@njit(cache=True, inline="always")
def _column(bs, rs, gs, gap, wb, b, write, t, c, p):
    """Constraints a RD (write=0) or WR (write=1) at ``t`` puts on later column commands."""
    ranks = p[P.RANKS]
    gr = wb[Where.RANK, b]
    gg = wb[Where.GROUP, b]
    for r in range(c * ranks, (c + 1) * ranks):
        relation = SAME_RANK if r == gr else OTHER_RANK
        rs[Rank.RD, r] = max(rs[Rank.RD, r], t + gap[(write * 2) * 3 + relation])
        rs[Rank.WR, r] = max(rs[Rank.WR, r], t + gap[(write * 2 + 1) * 3 + relation])
    gs[Group.RD, gg] = max(gs[Group.RD, gg], t + gap[(write * 2) * 3 + SAME_GROUP])
    gs[Group.WR, gg] = max(gs[Group.WR, gg], t + gap[(write * 2 + 1) * 3 + SAME_GROUP])
    bs[Bank.PRE, b] = max(bs[Bank.PRE, b], t + (p[P.WR_TO_PRE] if write else p[P.RTP]))
    bs[Bank.STREAK, b] += 1


@njit(cache=True, inline="always")
def _bank_command(bs, b, row, write):
    """(earliest cycle by bank ``b``'s own timing, command) of the next command a request for
    ``row`` at ``b`` needs: RD/WR on a row hit, ACT to a closed bank, else PRE."""
    open_row = bs[Bank.OPEN, b]
    if open_row == row:
        if write:
            return bs[Bank.WR, b], WR
        return bs[Bank.RD, b], RD
    if open_row == NONE:
        return bs[Bank.ACT, b], ACT
    return bs[Bank.PRE, b], PRE


@njit(cache=True, inline="always")
def _bounds(table, rs, gs, faw, c, lb_row, lb_col, p):
    """Fill ``table[cmd * width + k]``: the earliest cycle the rank, bank group ``k`` of
    channel ``c`` (``width`` groups) and the command bus allow ``cmd`` (column gaps,
    tRRD_S/L, tFAW; a PRE only the bus), shared by every queued request there."""
    groups = p[P.GROUPS]
    width = p[P.RANKS] * groups
    for k in range(width):
        gg = c * width + k
        gr = gg // groups
        table[ACT * width + k] = max(rs[Rank.ACT, gr], gs[Group.ACT, gg],
                                     faw[gr * 4 + rs[Rank.FAW_POS, gr]] + p[P.FAW], lb_row)
        table[PRE * width + k] = lb_row
        table[RD * width + k] = max(rs[Rank.RD, gr], gs[Group.RD, gg], lb_col)
        table[WR * width + k] = max(rs[Rank.WR, gr], gs[Group.WR, gg], lb_col)


@njit(cache=True, inline="always")
def _refresh_command(bs, rs, gr, lb_row, p):
    """(earliest cycle, command, bank) that advances the due refresh of rank ``gr``."""
    per_rank = p[P.BANKS_PER_RANK]
    if p[P.REFRESH] == PER_BANK:
        b = gr * per_rank + rs[Rank.PTR, gr]
        if bs[Bank.OPEN, b] != NONE:
            return max(bs[Bank.PRE, b], lb_row), PRE, b
        return max(bs[Bank.ACT, b], lb_row), REFPB, b
    best_pre = INF
    best_bank = NONE
    ready = lb_row
    for b in range(gr * per_rank, (gr + 1) * per_rank):
        if bs[Bank.OPEN, b] != NONE:
            if bs[Bank.PRE, b] < best_pre:
                best_pre = bs[Bank.PRE, b]
                best_bank = b
        else:
            ready = max(ready, bs[Bank.ACT, b])
    if best_bank != NONE:
        return max(best_pre, lb_row), PRE, best_bank
    return ready, REF, gr * per_rank


@njit(cache=True, inline="always")
def _refresh(bs, rs, gr, b, t, kind, p, cnt):
    """Issue REF (all banks of rank ``gr``) or REFpb (bank ``b``) at ``t``."""
    per_rank = p[P.BANKS_PER_RANK]
    if kind == REF:
        for k in range(gr * per_rank, (gr + 1) * per_rank):
            bs[Bank.ACT, k] = max(bs[Bank.ACT, k], t + p[P.RFC])
        rs[Rank.DUE, gr] += p[P.REFI]
        cnt[N.REFRESHES_ALL_BANK] += 1
    else:
        bs[Bank.ACT, b] = max(bs[Bank.ACT, b], t + p[P.RFCPB])
        rs[Rank.PTR, gr] = (rs[Rank.PTR, gr] + 1) % per_rank
        rs[Rank.DUE, gr] += p[P.REFIPB]
        cnt[N.REFRESHES_PER_BANK] += 1


@njit(cache=True, inline="always")
def _skip_idle_refreshes(bs, rs, cs, c, until, p, cnt):
    """Refreshes due before ``until`` on an idle channel, in closed form: where a rank's banks
    are all closed and ready, each REF issues exactly at its due cycle."""
    per_rank = p[P.BANKS_PER_RANK]
    ranks = p[P.RANKS]
    per_bank = p[P.REFRESH] == PER_BANK
    interval = p[P.REFIPB] if per_bank else p[P.REFI]
    busy = p[P.RFCPB] if per_bank else p[P.RFC]
    for gr in range(c * ranks, (c + 1) * ranks):
        due = rs[Rank.DUE, gr]
        if due >= until or due <= max(cs[Chan.ROW_BUS, c], cs[Chan.NOW, c]):
            continue
        ready = True
        for b in range(gr * per_rank, (gr + 1) * per_rank):
            if bs[Bank.OPEN, b] != NONE or bs[Bank.ACT, b] > due:
                ready = False
                break
        if not ready:
            continue
        count = (until - 1 - due) // interval + 1
        last = due + (count - 1) * interval
        if per_bank:
            for k in range(min(count, per_rank)):
                b = gr * per_rank + (rs[Rank.PTR, gr] + count - 1 - k) % per_rank
                bs[Bank.ACT, b] = max(bs[Bank.ACT, b], last - k * interval + busy)
            rs[Rank.PTR, gr] = (rs[Rank.PTR, gr] + count) % per_rank
            cnt[N.REFRESHES_PER_BANK] += count
        else:
            for b in range(gr * per_rank, (gr + 1) * per_rank):
                bs[Bank.ACT, b] = max(bs[Bank.ACT, b], last + busy)
            cnt[N.REFRESHES_ALL_BANK] += count
        rs[Rank.DUE, gr] = last + interval
        cs[Chan.ROW_BUS, c] = max(cs[Chan.ROW_BUS, c], last)


@njit(cache=True, inline="always")
def _plan(queue, j, bs, row, write, width):
    """Cache entry ``j``'s next command and the earliest cycle its bank allows it; the scan
    adds the rank, bank-group and command-bus bounds (``_bounds``, at ``Q.KEY``), which
    change with every command."""
    i = queue[Q.REQ, j]
    t, cmd = _bank_command(bs, queue[Q.BANK, j], row[i], write[i])
    queue[Q.T, j] = t
    queue[Q.CMD, j] = cmd
    queue[Q.KEY, j] = cmd * width + queue[Q.GROUP, j]


@njit(cache=True, inline="always")
def _replan(queue, n, bank, rank, bs, row, write, width):
    """Re-plan the entries at ``bank`` or of ``rank`` after a command changed their bank
    state, and recount ``bank``'s queued row hits; the other entries' cached plans stay
    exact (a refresh leaves the banks of ``rank`` closed: no hits)."""
    hits = 0
    for j in range(n):
        if queue[Q.BANK, j] == bank or queue[Q.RANK, j] == rank:
            _plan(queue, j, bs, row, write, width)
            if queue[Q.BANK, j] == bank and queue[Q.CMD, j] >= RD and queue[Q.ACTIVE, j]:
                hits += 1
    bs[Bank.HITS, bank] = hits


@njit(cache=True, inline="always")
def _drop(queue, j, n):
    """Remove entry ``j`` of ``n`` (the last takes its place; ``Q.SEQ`` keeps the age)."""
    for r in range(queue.shape[0]):
        queue[r, j] = queue[r, n - 1]


@njit(cache=True, inline="always")
def _promote(queue, n, bank, bs):
    """Move the oldest request waiting in the transaction queue for ``bank`` into the bank's
    command queue (its plan is made by the ``_replan`` that follows); 1 if one moved."""
    best = NONE
    for j in range(n):
        if queue[Q.ACTIVE, j] == 0 and queue[Q.BANK, j] == bank and (
                best == NONE or queue[Q.SEQ, j] < queue[Q.SEQ, best]):
            best = j
    if best == NONE:
        return 0
    queue[Q.ACTIVE, best] = 1
    bs[Bank.QUEUED, bank] += 1
    return 1


@njit(cache=True)
def serve_detailed(order, segments, arrival, bank, row, write, line, done, admitted, merged, p,
                   gap, wb, bs, rs, gs, faw, cs, cnt, trace, trace_n, queue, table):
    """Serve requests ``order[segments[c]:segments[c+1]]`` (arrival order) of each channel c;
    write each request's completion cycle to ``done`` and the cycle the controller took it
    into its queue to ``admitted``. With ``merge_reads`` a read of a ``line`` that a queued
    read also reads takes no queue slot and returns with it: ``merged`` names that read
    (else -1); it counts as a read and a row hit. All state arrays persist; ``queue``
    holds each queued request's cached plan (rows ``Q``), re-planned only when a command
    changes its bank; ``table`` is scratch for ``_bounds``."""
    ranks = p[P.RANKS]
    depth = p[P.QUEUE]
    bank_depth = p[P.BANK_QUEUE]
    merge = p[P.MERGE] == 1 and line.size > 0     # decoded reads carry no address
    refresh = p[P.REFRESH]
    hit_first = p[P.FRFCFS] == 1
    tracing = trace.shape[0] > 0
    width = ranks * p[P.GROUPS]
    for c in range(segments.size - 1):
        start, end = segments[c], segments[c + 1]
        now = cs[Chan.NOW, c]
        n = 0
        waiting = 0     # requests in the transaction queue (per-bank command queues only)
        nxt = start
        while nxt < end or n > 0:
            while nxt < end and (waiting if bank_depth else n) < depth \
                    and arrival[order[nxt]] <= now:
                i = order[nxt]
                if merge and not write[i]:
                    for j in range(n):
                        r = queue[Q.REQ, j]
                        if not write[r] and line[r] == line[i]:
                            merged[i] = r
                            break
                    if merged[i] != NONE:
                        admitted[i] = now
                        cnt[N.READS] += 1
                        cnt[N.ROW_HITS] += 1
                        nxt += 1
                        continue
                active = 1
                if bank_depth:
                    if bs[Bank.QUEUED, bank[i]] < bank_depth:
                        bs[Bank.QUEUED, bank[i]] += 1
                    else:
                        active = 0
                        waiting += 1
                queue[Q.ACTIVE, n] = active
                queue[Q.REQ, n] = i
                admitted[i] = now
                queue[Q.FLAG, n] = NEEDED_NOTHING
                queue[Q.BANK, n] = bank[i]
                queue[Q.RANK, n] = wb[Where.RANK, bank[i]]
                queue[Q.GROUP, n] = wb[Where.GROUP, bank[i]] - c * width
                queue[Q.SEQ, n] = nxt
                _plan(queue, n, bs, row, write, width)
                if queue[Q.CMD, n] >= RD and active:
                    bs[Bank.HITS, bank[i]] += 1
                n += 1
                nxt += 1
            room = (waiting if bank_depth else n) < depth
            t_arrival = arrival[order[nxt]] if nxt < end and room else INF
            if n == 0 and refresh != NO_REFRESH and not tracing:
                cs[Chan.NOW, c] = now
                _skip_idle_refreshes(bs, rs, cs, c, t_arrival, p, cnt)
            lb_row = max(now, cs[Chan.ROW_BUS, c] + 1)
            lb_col = max(now, cs[Chan.COL_BUS, c] + 1)
            best_t = INF
            best_cmd = NONE
            best_j = NONE
            best_bank = NONE
            best_prio = 4
            best_seq = INF
            t_due = INF
            refreshing = False
            if refresh != NO_REFRESH:
                for gr in range(c * ranks, (c + 1) * ranks):
                    due = rs[Rank.DUE, gr]
                    if due > now:
                        t_due = min(t_due, due)
                        continue
                    refreshing = True
                    t, cmd, b = _refresh_command(bs, rs, gr, lb_row, p)
                    if t < best_t:
                        best_t, best_cmd, best_bank, best_prio, best_j = t, cmd, b, 0, NONE
            _bounds(table, rs, gs, faw, c, lb_row, lb_col, p)
            for j in range(n):
                if queue[Q.ACTIVE, j] == 0:
                    continue   # not yet in its bank's command queue
                b = queue[Q.BANK, j]
                gr = queue[Q.RANK, j]
                if refreshing and rs[Rank.DUE, gr] <= now and (
                        refresh == ALL_BANK or wb[Where.INDEX, b] == rs[Rank.PTR, gr]):
                    continue   # its rank (bank) is being refreshed
                key = queue[Q.KEY, j]
                if (queue[Q.CMD, j] == PRE and bs[Bank.HITS, b] > 0
                        and bs[Bank.STREAK, b] < ROW_HIT_CAP):
                    continue   # its PRE would close a row that queued requests still hit
                t = max(queue[Q.T, j], table[key])
                prio = 1
                if hit_first and key < RD * width:
                    # row commands after column commands, first the ACT of a request whose
                    # PRE closed its bank (not an older request's, to reopen the same row)
                    prio = 2 if queue[Q.CMD, j] == ACT and queue[Q.FLAG, j] == NEEDED_PRE \
                        else 3
                seq = queue[Q.SEQ, j]
                if t < best_t or (t == best_t and (prio < best_prio or (
                        prio == best_prio and seq < best_seq))):
                    best_t, best_bank, best_prio, best_j = t, b, prio, j
                    best_cmd = queue[Q.CMD, j]
                    best_seq = seq
            t_next = min(t_arrival, t_due)
            if t_next < best_t:
                now = t_next
                continue
            now = best_t
            b = best_bank
            gr = wb[Where.RANK, b]
            if best_cmd in (REF, REFPB):
                _refresh(bs, rs, gr, b, now, best_cmd, p, cnt)
                _use_bus(cs, c, now, False, p)
                if tracing:
                    _record(trace, trace_n, now, best_cmd, b, NONE)
                _replan(queue, n, b, gr if best_cmd == REF else NONE, bs, row, write, width)
                continue
            if tracing:
                _record(trace, trace_n, now, best_cmd, b,
                        row[queue[Q.REQ, best_j]] if best_j != NONE else bs[Bank.OPEN, b])
            if best_cmd == PRE:
                _precharge(bs, rs, wb, b, now, p, cnt)
                _use_bus(cs, c, now, False, p)
                if best_j != NONE:
                    queue[Q.FLAG, best_j] = NEEDED_PRE
                _replan(queue, n, b, NONE, bs, row, write, width)
                continue
            i = queue[Q.REQ, best_j]
            if best_cmd == ACT:
                _activate(bs, rs, gs, faw, wb, b, row[i], now, p, cnt)
                _use_bus(cs, c, now, False, p, p[P.CMD_CYCLES])
                if queue[Q.FLAG, best_j] == NEEDED_NOTHING:
                    queue[Q.FLAG, best_j] = NEEDED_ACT
                _replan(queue, n, b, NONE, bs, row, write, width)
                continue
            is_write = 1 if write[i] else 0
            _column(bs, rs, gs, gap, wb, b, is_write, now, c, p)
            _use_bus(cs, c, now, True, p, p[P.CMD_CYCLES])
            done[i] = now + (p[P.CWL] if is_write else p[P.CL]) + p[P.BURST]
            cnt[N.WRITES if is_write else N.READS] += 1
            outcome = queue[Q.FLAG, best_j]
            cnt[N.ROW_CONFLICTS if outcome == NEEDED_PRE else
                N.ROW_MISSES if outcome == NEEDED_ACT else N.ROW_HITS] += 1
            _drop(queue, best_j, n)
            n -= 1
            if bank_depth:
                bs[Bank.QUEUED, b] -= 1
                waiting -= _promote(queue, n, b, bs)
            if p[P.CLOSED] == 1:
                wanted = False
                for j in range(n):
                    if queue[Q.BANK, j] == b and row[queue[Q.REQ, j]] == row[i]:
                        wanted = True
                        break
                if not wanted:
                    _precharge(bs, rs, wb, b, bs[Bank.PRE, b], p, cnt)
            _replan(queue, n, b, NONE, bs, row, write, width)
        cs[Chan.NOW, c] = now


class DetailedDram(DramModel):
    """Command-level model; ``trace_commands`` > 0 records that many commands (tests)."""

    fidelity = "detailed"

    def __init__(self, spec: DramSpec, path: str = "channel", *, trace_commands: int = 0):
        super().__init__(spec, path)
        layout = self.layout
        channels, ranks = layout.bus_channels, layout.ranks
        self.gaps = column_gaps(layout)
        if path == "bank_group":    # other groups of the rank: their own data paths
            self.gaps[SAME_RANK::3] = 0
        flat = np.arange(self.banks, dtype=np.int64)
        self.where = np.stack([flat // spec.banks_per_rank, flat // spec.banks_per_group,
                               flat % spec.banks_per_rank])
        self.bank_state = np.full((len(Bank), self.banks), NEVER, dtype=np.int64)
        self.bank_state[Bank.OPEN] = NONE
        self.bank_state[[Bank.HITS, Bank.STREAK, Bank.QUEUED]] = 0
        self.rank_state = np.full((len(Rank), channels * ranks), NEVER, dtype=np.int64)
        self.rank_state[[Rank.FAW_POS, Rank.PTR, Rank.OPEN_SUM]] = 0
        self.rank_state[Rank.DUE] = refresh_phase(spec)
        self.group_state = np.full((len(Group), channels * ranks * spec.bank_groups), NEVER,
                                   dtype=np.int64)
        self.faw = np.full(channels * ranks * 4, NEVER, dtype=np.int64)
        self.channel_state = np.full((len(Chan), channels), NEVER, dtype=np.int64)
        self.channel_state[Chan.NOW] = 0
        self.trace = np.zeros((trace_commands, 6), dtype=np.int64)
        self.trace_n = np.zeros(1, dtype=np.int64)
        self.queue = np.zeros((len(Q), queue_capacity(layout)), dtype=np.int64)
        self.table = np.zeros(4 * ranks * spec.bank_groups, dtype=np.int64)

    def _serve(self, arrival: np.ndarray, bank: np.ndarray, row: np.ndarray,
               is_write: np.ndarray, line: np.ndarray | None = None) -> np.ndarray:
        order, segments = self.channel_segments(bank)
        done = np.zeros(arrival.size, dtype=np.int64)
        self.admitted = np.zeros(arrival.size, dtype=np.int64)
        merged = np.full(arrival.size, NONE, dtype=np.int64)
        if line is None:
            line = np.zeros(0, dtype=np.int64)
        serve_detailed(order, segments, arrival, bank, row, is_write, line, done,
                       self.admitted, merged, self.params, self.gaps, self.where,
                       self.bank_state, self.rank_state, self.group_state, self.faw,
                       self.channel_state, self.counters, self.trace, self.trace_n,
                       self.queue, self.table)
        late = merged >= 0
        done[late] = done[merged[late]]
        return done

    def command_trace(self) -> np.ndarray:
        """Commands recorded so far: rows of (cycle, command code, rank within its channel,
        bank group, bank, row); ``COMMANDS`` names the codes."""
        trace = self.trace[:self.trace_n[0]].copy()
        spec, flat = self.spec, trace[:, 2].copy()
        trace[:, 2] = (flat // spec.banks_per_rank) % spec.ranks
        trace[:, 3] = (flat // spec.banks_per_group) % spec.bank_groups
        trace[:, 4] = flat % spec.banks_per_group
        return trace

    def open_rank_cycles(self, end: int) -> float:
        return open_cycles(self.bank_state[Bank.OPEN], self.bank_state[Bank.OPENED],
                           self.rank_state[Rank.OPEN_SUM], self.spec.banks_per_rank, end)
