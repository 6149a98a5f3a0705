"""Unit kind ``bank_group``: a TRiM-style reduction engine per bank group.

Each engine reads its bank group over a private path (bursts of different groups overlap;
one group's keep ``tCCD_L`` apart; ``tRRD``, ``tFAW``, refresh and the command bus stay per
rank), so a rank pools with the parallelism of its bank groups. With ``replicated_rows: N``
the host keeps copies of the N most-read rows (by a profile of the trace's first
``profile_batches`` batches) in every bank group, and sends each lookup of a copied row to the
engine with the fewest lookups of the query so far (TRiM's hot-entry replication against load
imbalance). The copies live in the top DRAM rows of every bank, which the tables then may not
use. See ``simulator.core.units.dram_units`` for the shared model; the engine's datapath is an
``nmp`` preset (``trim``).

What it ignores beyond the shared model: how TRiM widens the command interface (the preset's
instruction rate stands for it) and the bank-level variant (TRiM-B).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from hwmodels.dram.model import DramModel
from simulator.core.query import Query
from simulator.core.units import UNITS, UnitSite
from simulator.core.units.balancing import balance
from simulator.core.units.dram_units import DramUnitOptions, DramUnits, Pieces


class BankGroupOptions(DramUnitOptions):
    """``replicated_rows``: hot rows copied into every bank group; ``profile_batches``: the
    leading batches whose reads rank them (all when not given)."""

    replicated_rows: int = Field(default=0, ge=0)
    profile_batches: int | None = Field(default=None, gt=0)


@UNITS.register("bank_group")
class BankGroupUnits(DramUnits):
    """One engine per bank group (Park et al., "TRiM", MICRO 2021)."""

    kind = "bank_group"
    level = "bank_group"
    data_path = "bank_group"
    options_model = BankGroupOptions
    engine_fields = ("ch", "ra", "bg")

    def __init__(self, name: str, index: int, options: BankGroupOptions, site: UnitSite):
        super().__init__(name, index, options, site)
        self.replica = np.full(int(site.table_rows.sum()), -1, dtype=np.int64)
        if options.replicated_rows:
            # before a run (checking the config) there is no profile: any rows will do
            reads = (site.profile(options.profile_batches) if site.profile is not None
                     else np.zeros(self.replica.size, dtype=np.int64))
            hottest = np.argsort(-reads, kind="stable")
            self.replica[hottest[:options.replicated_rows]] = np.arange(
                min(options.replicated_rows, hottest.size))

    @classmethod
    def reserved_bytes(cls, options: Any, tier: Any, row_bytes: np.ndarray) -> int:
        """The top DRAM rows of every bank, which hold the copies of the hot rows."""
        device = getattr(tier, "device", None)
        if not options.replicated_rows or not isinstance(device, DramModel):
            return 0
        spec = device.spec
        rows = -(-options.replicated_rows // (spec.banks_per_group
                                              * copies_per_dram_row(device, row_bytes)))
        return rows * spec.row_bytes * device.banks

    def pieces(self, q: Query, lookups: np.ndarray | slice) -> Pieces:
        piece = super().pieces(q, lookups)
        copy = self.replica[q.global_rows[lookups]]
        hot = np.flatnonzero(copy >= 0)
        if hot.size == 0:
            return piece
        loads = np.bincount(piece.engine[copy < 0], minlength=self.engines)
        piece.engine[hot] = balance(loads, hot.size)
        self._place_copies(piece, hot, copy[hot])
        return piece

    def _place_copies(self, piece: Pieces, hot: np.ndarray, copy: np.ndarray) -> None:
        """Read each hot lookup's copy in its engine's bank group (top rows of its banks)."""
        spec = self.device.spec
        per_dram_row = copies_per_dram_row(self.device, self.row_bytes)
        bursts = spec.columns // spec.burst_length // per_dram_row   # per copy
        groups = spec.bank_groups
        engine = piece.engine[hot]
        flat_rank = engine // groups
        piece.address[hot] = self.device.address_map.encode(
            channel=flat_rank // spec.ranks, rank=flat_rank % spec.ranks,
            bank_group=engine % groups, bank=copy % spec.banks_per_group,
            row=spec.rows - 1 - copy // (spec.banks_per_group * per_dram_row),
            column=(copy // spec.banks_per_group) % per_dram_row * bursts)
        piece.bank[hot], piece.row[hot] = self.device.address_map.bank_and_row(
            piece.address[hot])


def copies_per_dram_row(device: DramModel, row_bytes: np.ndarray) -> int:
    """Copies of the widest row (in whole bursts) that one DRAM row holds."""
    slot = -(-int(row_bytes.max()) // device.request_bytes) * device.request_bytes
    return max(device.spec.row_bytes // slot, 1)

