"""Unit kind ``dimm``: a TensorDIMM-style core on each DIMM, with every row striped element-wise
across the DIMMs, so that every DIMM pools a slice of every row.

A row of ``R`` bytes keeps ``R / D`` bytes on each of the ``D`` DIMMs of the tier (all
channels'), laid out contiguously per DIMM: the slice at logical address ``A`` of the tables'
layout sits at ``A / D`` within its DIMM. Each lookup becomes one read per DIMM (a slice smaller
than a burst still reads a burst), each DIMM's core pools its slices and returns one slice of
each bag's sum; the host places the slices side by side (counted as the combine stage's
partial vectors, each ``1 / D`` of a row). A row must split into ``D`` equal slices that
each stay within one DRAM row of their DIMM (checked: a 64 B row over three DIMMs is refused).
A DIMM reads its ranks over their own paths but its core takes at most ``lanes`` elements a
cycle, which with the ``tensordimm`` preset is one rank's rate: the DIMM, not the rank, is the
unit of parallelism, as in TensorDIMM. See ``simulator.core.units.dram_units`` for the shared
model.
"""

from __future__ import annotations

import numpy as np

from embsim.errors import InputError
from hwmodels.dram.model import DramModel
from hwmodels.tier import TABLE_ALIGNMENT
from simulator.core.query import Query
from simulator.core.units import UNITS, UnitSite
from simulator.core.units.dram_units import DRAM_ROW_FIELDS, DramUnitOptions, DramUnits, Pieces


@UNITS.register("dimm")
class DimmUnits(DramUnits):
    """One core per DIMM, rows striped across DIMMs (Kwon et al., "TensorDIMM", MICRO 2019)."""

    kind = "dimm"
    level = "dimm"
    data_path = "rank"

    def _check_rows_stay_in_engines(self, site: UnitSite, tier: str) -> None:
        """Rows are split across the DIMMs by design: each must split into equal slices that
        stay within one DRAM row of their DIMM (checked once the DIMM layout is known)."""

    def __init__(self, name: str, index: int, options: DramUnitOptions, site: UnitSite):
        device = getattr(site.tiers.get(options.tier), "device", None)
        if isinstance(device, DramModel) and device.spec.pseudo_channels > 1:
            raise InputError(f"a dimm unit stripes rows over whole DIMMs; a DIMM of "
                             f"{device.spec.pseudo_channels} sub-channels (pseudo_channels) is "
                             "not modelled: use a rank or bank_group unit, or a device of one "
                             "sub-channel", source=site.source, field=f"system.units.{name}.tier")
        super().__init__(name, index, options, site)
        dram = self.device.spec
        self.dimm_map = dram.model_copy(
            update={"channels": 1, "pseudo_channels": 1, "ranks": self.ranks_per_dimm}
        ).address_map
        span = self.dimm_map.span_below(DRAM_ROW_FIELDS)
        dimms = self.engines
        for row in np.unique(site.row_bytes):
            piece = int(row) // dimms
            if row % dimms or span % piece or (TABLE_ALIGNMENT // dimms) % piece:
                raise InputError(
                    f"rows of {row} B do not stripe over {dimms} DIMMs: each DIMM's slice must "
                    f"be an equal share of the row that tiles the DIMM's DRAM rows ({span} B "
                    f"under mapping {''.join(self.dimm_map.order)})", source=site.source,
                    field=f"system.units.{name}.ranks_per_dimm")
        self.within_dram_rows = True
        self.partial_share = 1.0 / dimms

    def partial_offsets(self, bags: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """DIMM ``k``'s slice of a bag's sum goes ``k`` slices into the output. Every lookup
        reaches all D DIMMs, so every DIMM sends the same bags, DIMM by DIMM: the partials
        come in D equal runs, run ``k`` from DIMM ``k``."""
        return np.arange(bags.size) // (bags.size // self.engines) * sizes

    def dimms_of_engines(self) -> np.ndarray:
        """Each engine is a DIMM."""
        return np.arange(self.engines)

    def elements_per_piece(self, row_elements: np.ndarray) -> np.ndarray:
        """A DIMM adds its slice of each row: ``1 / D`` of the row's elements."""
        return -(-np.asarray(row_elements, dtype=np.int64) // self.engines)

    def cached_bytes(self, row_bytes: np.ndarray) -> np.ndarray:
        """A DIMM's cache keeps its slice of each row."""
        return row_bytes // self.engines

    def pieces(self, q: Query, lookups: np.ndarray | slice) -> Pieces:
        """One slice per DIMM of each row, at ``address / D`` in every DIMM's own layout."""
        dimms = self.engines
        local = q.home_addresses[lookups] // dimms
        bank, row = self.dimm_map.bank_and_row(local)
        return Pieces(lookups, np.zeros(local.size, dtype=np.int64), local,
                      q.row_bytes[lookups] // dimms, bank, row, fan=dimms,
                      bank_stride=self.banks_per_engine)
