"""What every DRAM fidelity level shares: the Device interface, cycle conversion, address
decoding into flat bank indices, the timing vector the compiled kernels read, counters and
statistics (with energy), and the data path requests take.

Data paths (``PATHS``): ``channel`` is the host's: every rank of a bus channel shares its data
bus (one burst at a time, ``tRTRS`` between ranks) and its controller's queue and command bus.
``rank`` gives each rank its own (a near-memory unit in the DIMM's buffer chip reads its rank
over a private path: RecNMP); the kernels then schedule each rank as a bus channel of one rank,
so ``tRRD``, ``tFAW`` and refresh still apply per rank. ``bank_group`` also gives each bank
group of a rank its own data path (a unit per bank group: TRiM): bursts of different groups
overlap, those of one group keep ``tCCD_L`` apart, and a rank keeps one command bus, its
activate limits and its refresh. Data on a private path stays on the DIMM, so it costs no
off-DIMM I/O energy (``io_energy_per_bit``).

Flat indices: a request's bank is ``((bus_channel x ranks + rank) x bank_groups + group) x
banks_per_group + bank``; its rank is ``bank // banks_per_rank`` and its bank group ``bank //
banks_per_group``, so a kernel needs one int per request. Times in kernels are int64 cycles of
``tCK``; ``service`` takes and returns seconds, arrivals rounded up to the next cycle.
"""

from __future__ import annotations

from abc import abstractmethod
from enum import IntEnum

import numpy as np

from embsim.errors import InputError
from hwmodels.device import Device
from hwmodels.dram.energy import DramEnergy
from hwmodels.dram.spec import DramSpec


class N(IntEnum):
    """Counter indices (``COUNTERS`` names them in stats)."""

    READS = 0
    WRITES = 1
    ROW_HITS = 2
    ROW_MISSES = 3
    ROW_CONFLICTS = 4
    ACTIVATES = 5
    PRECHARGES = 6
    REFRESHES_ALL_BANK = 7
    REFRESHES_PER_BANK = 8


COUNTERS = tuple(member.name.lower() for member in N)

P = IntEnum("P", [(name, index) for index, name in enumerate((
    "RANKS", "BANKS_PER_RANK", "BANKS", "GROUPS", "QUEUE", "CLOSED", "FRFCFS", "REFRESH",
    "DUAL_BUS", "CL", "CWL", "BURST", "RCD", "RCDWR", "RP", "RAS", "RC", "RRD_S", "RRD_L", "FAW",
    "RTP", "WR_TO_PRE", "RFC", "REFI", "RFCPB", "REFIPB", "CCD_S", "CCD_L", "CCD_L_WR", "WTR_S",
    "RTRS", "ACT_SLOT", "SHARED_BUS", "BANK_QUEUE", "MERGE", "CMD_CYCLES"))])
"""Indices of the int64 parameter vector the kernels read (``kernel_params``)."""
REFRESH_CODE = {"none": 0, "all_bank": 1, "per_bank": 2}
NO_REFRESH, ALL_BANK, PER_BANK = 0, 1, 2
# Column-to-column gaps: gap[(from_kind * 2 + to_kind) * 3 + relation], kinds 0 = RD, 1 = WR;
# relation 0 = same bank group, 1 = other group of the same rank, 2 = other rank.
SAME_GROUP, SAME_RANK, OTHER_RANK = 0, 1, 2
NEVER = np.int64(-(1 << 40))
"""A time long past: the initial "last command" of every resource."""


def kernel_params(spec: DramSpec) -> np.ndarray:
    """The spec as the int64 vector the compiled kernels index with ``P_*``."""
    burst = spec.burst_cycles
    values = {
        P.RANKS: spec.ranks, P.BANKS_PER_RANK: spec.banks_per_rank,
        P.BANKS: spec.banks_per_group, P.GROUPS: spec.bank_groups,
        P.QUEUE: spec.queue_depth, P.CLOSED: int(spec.row_policy == "closed"),
        P.FRFCFS: int(spec.scheduler == "frfcfs"), P.REFRESH: REFRESH_CODE[spec.refresh],
        P.DUAL_BUS: int(spec.standard_data.dual_command_bus),
        P.CL: spec.CL, P.CWL: spec.CWL, P.BURST: burst, P.RCD: spec.tRCD,
        P.RCDWR: spec.timing("tRCDWR"),
        P.RP: spec.tRP, P.RAS: spec.tRAS, P.RC: spec.tRC, P.RRD_S: spec.tRRD_S,
        P.RRD_L: spec.tRRD_L, P.FAW: spec.tFAW, P.RTP: spec.tRTP,
        P.WR_TO_PRE: spec.CWL + burst + spec.tWR, P.RFC: spec.tRFC, P.REFI: spec.tREFI,
        P.RFCPB: spec.tRFCpb or 0, P.REFIPB: spec.tREFIpb or 0, P.CCD_S: spec.tCCD_S,
        P.CCD_L: spec.tCCD_L,
        P.CCD_L_WR: spec.timing("tCCD_L_WR"),
        P.WTR_S: spec.tWTR_S, P.RTRS: spec.tRTRS,
        P.ACT_SLOT: max(spec.tRRD_S, -(-spec.tFAW // 4)),
        P.SHARED_BUS: 1, P.BANK_QUEUE: spec.bank_queue_depth,
        P.MERGE: int(spec.merge_reads),
        P.CMD_CYCLES: 2 if spec.standard_data.two_cycle_commands else 1,
    }
    params = np.zeros(len(P), dtype=np.int64)
    for index, value in values.items():
        params[index] = value
    return params


def queue_capacity(spec: DramSpec) -> int:
    """Most requests a bus channel's controller holds: its queue, or with per-bank command
    queues (``bank_queue_depth`` > 0) its transaction queue plus every bank's command queue."""
    banks = spec.ranks * spec.banks_per_rank
    return spec.queue_depth + spec.bank_queue_depth * banks


PATHS = ("channel", "rank", "bank_group")


def path_layout(spec: DramSpec, path: str) -> DramSpec:
    """The organisation the kernels schedule for a data path: the device itself for
    ``channel``; for the private paths, each rank regrouped as a bus channel of its own (the
    flat bank indices stay the same: ``(bus_channel x ranks + rank) x banks_per_rank + ...``)."""
    if path == "channel":
        return spec
    return spec.model_copy(update={"channels": spec.channels * spec.ranks, "ranks": 1})


def path_bandwidth(spec: DramSpec, path: str) -> float:
    """Peak bytes per second over every data path of the device: the channels' buses, each
    rank's, or each bank group's (one burst per ``tCCD_L``)."""
    if path == "bank_group":
        groups = spec.bus_channels * spec.ranks * spec.bank_groups
        return groups * spec.request_bytes / (spec.tCCD_L * spec.tCK)
    return spec.peak_bandwidth * (spec.ranks if path == "rank" else 1)


def column_gaps(spec: DramSpec) -> np.ndarray:
    """Minimum cycles from one column command to the next, by kinds and relation.

    Same rank: RD->RD tCCD_L/S; WR->WR tCCD_L_WR/tCCD_S; WR->RD ``CWL + BL/2 + tWTR_L/S``
    (write data in, then the write-to-read turnaround); RD->WR ``CL + BL/2 + tRTRS - CWL``
    (read data out, the bus turns around, then write data may start). Other rank: the bus is
    shared, so a burst plus the rank-to-rank switch ``tRTRS`` separates the data.
    """
    burst, rtrs = spec.burst_cycles, spec.tRTRS
    rd_to_wr = spec.CL + burst + rtrs - spec.CWL
    table = {
        (0, 0): (spec.tCCD_L, spec.tCCD_S, burst + rtrs),
        (0, 1): (max(rd_to_wr, spec.tCCD_L), max(rd_to_wr, spec.tCCD_S), rd_to_wr),
        (1, 0): (spec.CWL + burst + spec.tWTR_L, spec.CWL + burst + spec.tWTR_S,
                 spec.CWL + burst + rtrs - spec.CL),
        (1, 1): (spec.timing("tCCD_L_WR"), spec.tCCD_S, burst + rtrs),
    }
    gaps = np.zeros(12, dtype=np.int64)
    for (src, dst), row in table.items():
        gaps[(src * 2 + dst) * 3:(src * 2 + dst) * 3 + 3] = row
    return gaps


def refresh_phase(spec: DramSpec) -> np.ndarray:
    """First due cycle of each rank's refresh; ranks of a channel are staggered evenly."""
    ranks = np.arange(spec.bus_channels * spec.ranks) % spec.ranks
    interval = spec.tREFIpb if spec.refresh == "per_bank" else spec.tREFI
    return (ranks * interval // spec.ranks + interval).astype(np.int64)


def refresh_schedule(spec: DramSpec) -> tuple[np.ndarray, int, int]:
    """Each bank's first refresh due cycle, the period between its refreshes and how long one
    lasts: the schedule ``detailed`` follows (all-bank: the rank's; per-bank: banks in
    rotation, one every tREFIpb)."""
    first_rank = refresh_phase(spec)
    per_rank = spec.banks_per_rank
    if spec.refresh == "per_bank":
        offset = np.arange(per_rank, dtype=np.int64) * spec.tREFIpb
        first = (first_rank[:, None] + offset[None, :]).ravel()
        return first, per_rank * spec.tREFIpb, spec.tRFCpb
    return np.repeat(first_rank, per_rank), spec.tREFI, spec.tRFC


def refreshes_due(t: np.ndarray | int, first: np.ndarray, period: int) -> np.ndarray:
    """How many refreshes of the ``refresh_schedule`` (``first``, ``period``) are due by cycle
    ``t``."""
    return np.where(t < first, 0, (t - first) // period + 1)


def scheduled_refreshes(spec: DramSpec, first: np.ndarray, period: int,
                        end: int) -> tuple[int, int]:
    """(all-bank, per-bank) refreshes due by cycle ``end`` on the ``refresh_schedule``."""
    if spec.refresh == "none":
        return 0, 0
    due = refreshes_due(end, first, period)
    if spec.refresh == "per_bank":
        return 0, int(due.sum())
    return int(due[::spec.banks_per_rank].sum()), 0


class DramModel(Device):
    """A DRAM device at one fidelity level: decoding, conversion, counters and stats."""

    fidelity = ""

    def __init__(self, spec: DramSpec, path: str = "channel"):
        super().__init__(spec, request_bytes=spec.request_bytes, cycle_s=spec.tCK,
                         capacity=spec.capacity, peak_bandwidth=path_bandwidth(spec, path))
        self.path = path
        self.layout = path_layout(spec, path)
        """The organisation the kernels schedule (see ``path_layout``)."""
        self.address_map = spec.address_map
        self.params = kernel_params(self.layout)
        if path == "bank_group":            # each group's bursts on its own data path
            self.params[P.SHARED_BUS] = 0
            self.params[P.CCD_S] = 0
        self.energy_model = DramEnergy.from_spec(spec, off_dimm=path == "channel")
        self.counters = np.zeros(len(COUNTERS), dtype=np.int64)
        self.banks = spec.bus_channels * spec.ranks * spec.banks_per_rank
        self.last_arrival = 0
        self.last_done = 0

    # --- requests ----------------------------------------------------------------------

    def channel_segments(self, bank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Requests grouped by channel, arrival order kept within each: the permutation, and
        where each channel's run of it starts and ends (``bus_channels + 1`` bounds)."""
        layout = self.layout
        channel = bank // (layout.ranks * layout.banks_per_rank)
        order = np.argsort(channel, kind="stable")
        return order, np.searchsorted(channel[order], np.arange(layout.bus_channels + 1))

    def service(self, arrival_s: np.ndarray, addresses: np.ndarray,
                is_write: np.ndarray) -> np.ndarray:
        done = self.service_cycles(self._cycles(arrival_s), addresses, is_write)
        return self._seconds(done)

    def finish(self, now_s: float, addresses: np.ndarray, is_write: np.ndarray) -> float:
        """``service``'s latest completion, with the arrival cycle computed once and only the
        latest completion cycle converted to seconds (the conversion does not decrease, so
        the latest of the converted times is the converted latest)."""
        if addresses.size == 0:
            return super().finish(now_s, addresses, is_write)
        arrival = np.full(addresses.size, self._cycles(now_s), dtype=np.int64)
        done = self.service_cycles(arrival, addresses, is_write)
        return float(self._seconds(done.max()))

    def _cycles(self, seconds: np.ndarray | float) -> np.ndarray:
        """The controller cycle (int64) each time in seconds falls on or before."""
        return np.ceil(np.asarray(seconds, dtype=np.float64) / self.cycle_s - 1e-9).astype(
            np.int64)

    def _seconds(self, done: np.ndarray) -> np.ndarray:
        """Completion times in seconds of completion cycles, the front end's latency added."""
        return done * self.cycle_s + self.spec.frontend_latency

    def _check_arrivals(self, arrival: np.ndarray) -> None:
        """InputError unless ``arrival`` does not decrease, within it and from the last call."""
        if arrival[0] < self.last_arrival or np.any(arrival[1:] < arrival[:-1]):
            raise InputError("arrival times must not decrease (within a call and across "
                             "calls)", field="arrival")

    def service_in_cycles(self, arrival_cycles: np.ndarray, addresses: np.ndarray,
                          is_write: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole controller cycles: completion (int64) and latency of each request."""
        done = self.service_cycles(arrival_cycles, addresses, is_write)
        return done, np.asarray(done - arrival_cycles, dtype=np.float64)

    def service_cycles(self, arrival_cycles: np.ndarray, addresses: np.ndarray,
                       is_write: np.ndarray) -> np.ndarray:
        """Completion cycle of each request (int64), from arrival cycles of ``tCK``: the entry
        point for memory traces stamped in controller cycles. Completion is the end of the
        burst on the data bus (reads: data returned; writes: data written)."""
        arrival = np.ascontiguousarray(arrival_cycles, dtype=np.int64)
        addresses = np.ascontiguousarray(addresses, dtype=np.int64)
        is_write = np.ascontiguousarray(is_write, dtype=np.bool_)
        if not arrival.shape == addresses.shape == is_write.shape or arrival.ndim != 1:
            raise InputError(f"arrival {arrival.shape}, addresses {addresses.shape} and "
                             f"is_write {is_write.shape} must be equal-length 1-D arrays",
                             field="requests")
        if arrival.size == 0:
            return np.zeros(0, dtype=np.int64)
        self._check_arrivals(arrival)
        if addresses.min() < 0:
            raise InputError("addresses must be non-negative", field="addresses")
        bank, row = self.address_map.bank_and_row(addresses)
        line = addresses // self.request_bytes if self.spec.merge_reads else None
        return self._serve_in_order(arrival, bank, row, is_write, line)

    def read_decoded(self, now_s: float, bank: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Completion times (s) of reads that all arrive at ``now_s``, at flat ``bank`` and
        ``row`` indices already decoded (a near-memory unit's bursts, decoded once per row)."""
        if bank.size == 0:
            return np.zeros(0)
        arrival = np.full(bank.size, self._cycles(now_s), dtype=np.int64)
        self._check_arrivals(arrival)
        done = self._serve_in_order(arrival, bank, row, np.zeros(bank.size, dtype=np.bool_))
        return self._seconds(done)

    def _serve_in_order(self, arrival: np.ndarray, bank: np.ndarray, row: np.ndarray,
                        is_write: np.ndarray, line: np.ndarray | None = None) -> np.ndarray:
        """Serve decoded requests whose arrivals are checked; keep the arrival and completion
        bounds for the next call and the stats. ``line``: each request's address in requests
        (given where ``merge_reads`` is set)."""
        done = self._serve(arrival, bank, row, is_write, line)
        self.last_arrival = int(arrival[-1])
        self.last_done = max(self.last_done, int(done.max()))
        return done

    @abstractmethod
    def _serve(self, arrival: np.ndarray, bank: np.ndarray, row: np.ndarray,
               is_write: np.ndarray, line: np.ndarray | None = None) -> np.ndarray:
        """Completion cycles of requests at flat ``bank`` indices (updates ``counters``);
        ``line`` (``merge_reads``) is used by the levels that merge reads."""

    # --- results -----------------------------------------------------------------------

    def unloaded_read_latency_s(self) -> float:
        return self.spec.read_latency_cycles()["hit"] * self.cycle_s + self.spec.frontend_latency

    def refresh_counts(self, end: int) -> tuple[int, int]:
        """(all-bank, per-bank) refresh commands up to cycle ``end``."""
        return int(self.counters[N.REFRESHES_ALL_BANK]), int(self.counters[N.REFRESHES_PER_BANK])

    @abstractmethod
    def open_rank_cycles(self, end: int) -> float:
        """Rank-cycles up to ``end`` during which the rank had a bank open (summed over
        ranks): the active-standby share of the background energy."""

    def stats(self, elapsed_s: float | None = None) -> dict[str, float]:
        end = self.last_done if elapsed_s is None else int(round(elapsed_s / self.cycle_s))
        counts = {name: int(v) for name, v in zip(COUNTERS, self.counters, strict=True)}
        counts["refreshes_all_bank"], counts["refreshes_per_bank"] = self.refresh_counts(end)
        ranks = self.spec.bus_channels * self.spec.ranks
        open_s = min(self.open_rank_cycles(end), ranks * end) * self.cycle_s
        energy = self.energy_model.parts(counts, open_s, ranks * end * self.cycle_s)
        requests = counts["reads"] + counts["writes"]
        return {
            "requests": requests,
            **counts,
            "refreshes": counts["refreshes_all_bank"] + counts["refreshes_per_bank"],
            "bytes_read": counts["reads"] * self.request_bytes,
            "bytes_written": counts["writes"] * self.request_bytes,
            "row_hit_rate": counts["row_hits"] / requests if requests else 0.0,
            "elapsed_s": end * self.cycle_s,
            **energy,
        }


def open_cycles(open_row: np.ndarray, opened_at: np.ndarray, closed_sum: np.ndarray,
                banks_per_rank: int, end: int) -> float:
    """Rank-cycles with a bank open: per rank, the open time of its banks (closed intervals
    ``closed_sum`` plus rows still open until ``end``), capped at ``end``. Summing banks
    over-counts overlapping open rows, hence the cap: an upper bound of the true union."""
    still = np.where(open_row >= 0, np.maximum(end - opened_at, 0), 0)
    per_rank = closed_sum + still.reshape(-1, banks_per_rank).sum(axis=1)
    return float(np.minimum(per_rank, end).sum())
