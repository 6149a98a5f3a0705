"""``analytic``: closed form per call from bandwidth, row-hit ratio and bank parallelism (numpy).

For each call:

1. Row outcome of each request from its bank's previous row in arrival order (carried across
   calls): hit, miss (bank closed: first touch, a refresh since the last access, or ``closed``
   row policy) or conflict. Counters follow: ACTs = misses + conflicts, PREs = conflicts (open
   policy) or one per request (closed).
2. Service time per request on each bus channel ``c`` (cycles):
   ``S_c = max(column_c, act_c) / (1 - refresh_overhead) / n_c`` where ``column_c`` sums the
   column-command spacing (``tCCD_L`` after a request to the same bank group, ``tCCD_S``
   otherwise, at least a burst) and ``act_c = activates_c x t_act``, with the ACT interval
   ``t_act = 1 / min(ranks x min(1/tRRD_S, 4/tFAW), banks/tRC)`` (the four-activate window and
   bank cycle time bound how fast misses can be served).
3. Each channel is a FIFO server of ``S_c`` per request (busy-until carried across calls):
   ``D_k = (k+1) S_c + max(busy_c, max_{j<=k}(A_j - j S_c))``, and request k completes at
   ``D_k - S_c + L(outcome)``, ``L`` = ``CL + BL/2`` (``CWL`` for writes) ``+ tRCD`` (miss)
   ``+ tRP + tRCD`` (conflict): the unloaded latency of its row outcome after its queueing.

What it ignores: per-bank timing of individual requests (tRAS, tRC between two requests to one
bank, bank conflicts), read/write and rank turnaround, the command bus, and scheduling
(requests finish in arrival order per channel). Refresh is a bandwidth derate, and closes rows
on its schedule; background energy counts a rank active from its first ACT (open policy) or
``tRAS`` per ACT (closed).
"""

from __future__ import annotations

import numpy as np

from hwmodels.dram.model import (
    NEVER,
    DramModel,
    N,
    refresh_schedule,
    refreshes_due,
    scheduled_refreshes,
)
from hwmodels.dram.spec import DramSpec

NONE = -1


class AnalyticDram(DramModel):
    """Closed-form model (see the module docstring)."""

    fidelity = "analytic"

    def __init__(self, spec: DramSpec, path: str = "channel"):
        super().__init__(spec, path)
        layout = self.layout
        self.open_row = np.full(self.banks, NONE, dtype=np.int64)
        self.touched = np.full(self.banks, NEVER, dtype=np.int64)
        self.first_act = np.full(layout.bus_channels * layout.ranks, -1, dtype=np.int64)
        self.busy_until = np.zeros(layout.bus_channels)
        self.last_group = np.full(layout.bus_channels, NONE, dtype=np.int64)
        self.first, self.period, _ = refresh_schedule(spec)
        per_rank_rate = min(1 / spec.tRRD_S, 4 / spec.tFAW)
        self.act_interval = 1 / min(layout.ranks * per_rank_rate,
                                    layout.ranks * spec.banks_per_rank / spec.tRC)

    def outcomes(self, arrival: np.ndarray, bank: np.ndarray, row: np.ndarray) -> np.ndarray:
        """0 hit, 1 miss, 2 conflict per request, from each bank's previous access."""
        order = np.argsort(bank, kind="stable")
        b, r, t = bank[order], row[order], arrival[order]
        first_of_bank = np.ones(b.size, dtype=bool)
        first_of_bank[1:] = b[1:] != b[:-1]
        prev_row = np.where(first_of_bank, self.open_row[b], np.roll(r, 1))
        prev_t = np.where(first_of_bank, self.touched[b], np.roll(t, 1))
        if self.spec.row_policy == "closed":
            prev_row = np.full(b.size, NONE, dtype=np.int64)
        elif self.spec.refresh != "none":   # a refresh since the bank's last access closed it
            first = self.first[b]
            refreshed = (refreshes_due(t, first, self.period)
                         > refreshes_due(prev_t, first, self.period))
            prev_row = np.where(refreshed, NONE, prev_row)
        sorted_outcome = np.where(prev_row == r, 0, np.where(prev_row == NONE, 1, 2))
        last = np.ones(b.size, dtype=bool)
        last[:-1] = b[1:] != b[:-1]
        self.open_row[b[last]] = r[last]
        self.touched[b[last]] = t[last]
        outcome = np.empty_like(sorted_outcome)
        outcome[order] = sorted_outcome
        return outcome

    def _serve(self, arrival: np.ndarray, bank: np.ndarray, row: np.ndarray,
               is_write: np.ndarray, line: np.ndarray | None = None) -> np.ndarray:
        spec = self.spec
        outcome = self.outcomes(arrival, bank, row)
        rank = bank // spec.banks_per_rank
        group = bank // spec.banks_per_group
        activated = outcome > 0
        earliest = np.full(self.first_act.size, np.iinfo(np.int64).max)
        np.minimum.at(earliest, rank[activated], arrival[activated])
        fresh = (self.first_act < 0) & (earliest < np.iinfo(np.int64).max)
        self.first_act[fresh] = earliest[fresh]
        counts = np.bincount(outcome, minlength=3)
        acts = int(counts[1] + counts[2])
        writes = int(is_write.sum())
        for index, value in ((N.ROW_HITS, counts[0]), (N.ROW_MISSES, counts[1]),
                             (N.ROW_CONFLICTS, counts[2]), (N.ACTIVATES, acts),
                             (N.PRECHARGES, arrival.size if spec.row_policy == "closed"
                              else counts[2]),
                             (N.WRITES, writes), (N.READS, arrival.size - writes)):
            self.counters[index] += int(value)

        base = np.where(is_write, spec.CWL, spec.CL) + spec.burst_cycles
        latency = base + np.where(outcome > 0, spec.tRCD, 0) + np.where(outcome == 2,
                                                                       spec.tRP, 0)
        derate = 1 - spec.refresh_overhead
        done = np.zeros(arrival.size, dtype=np.int64)
        order, bounds = self.channel_segments(bank)
        for c in np.flatnonzero(np.diff(bounds)):
            idx = order[bounds[c]:bounds[c + 1]]
            groups = group[idx]
            same = np.empty(idx.size, dtype=bool)
            same[0] = groups[0] == self.last_group[c]
            same[1:] = groups[1:] == groups[:-1]
            if self.path == "bank_group":   # groups' own paths: the busiest group's spacing
                column = np.bincount(groups - groups.min()).max() * spec.tCCD_L
            else:
                column = np.where(same, spec.tCCD_L, spec.tCCD_S).sum()
            service = max(column, activated[idx].sum() * self.act_interval) / derate / idx.size
            k = np.arange(idx.size)
            start = np.maximum(self.busy_until[c],
                               np.maximum.accumulate(arrival[idx] - k * service))
            finish = (k + 1) * service + start
            done[idx] = np.ceil(finish - service + latency[idx] - 1e-9).astype(np.int64)
            self.busy_until[c] = finish[-1]
            self.last_group[c] = groups[-1]
        return done

    def refresh_counts(self, end: int) -> tuple[int, int]:
        return scheduled_refreshes(self.spec, self.first, self.period, end)

    def open_rank_cycles(self, end: int) -> float:
        if self.spec.row_policy == "closed":
            return float(self.counters[N.ACTIVATES] * self.spec.tRAS)
        started = self.first_act[self.first_act >= 0]
        return float(np.maximum(end - started, 0).sum())
