"""Near-memory pooling engines: the datapath of a unit that sums embedding rows inside memory.

``NmpSpec`` (preset kind ``nmp``, ``hwmodels/presets/nmp/``) describes one engine: a rank-level
unit in a DIMM's buffer chip (RecNMP), a bank-group unit (TRiM), a DIMM-level core
(TensorDIMM) or a pooling engine in a CXL memory expander. The simulator's unit kinds
(``simulator.core.units``) place one engine per rank, bank group, DIMM or expander and use it
through ``NmpTiming``:

- pooling: ``lanes`` FP32 elements added per ``clock`` cycle, so a row of ``d`` elements takes
  ``ceil(d / lanes)`` cycles; the engine streams rows as their data arrives and adds
  ``pipeline_cycles`` once, and ``bag_cycles`` per bag (setting up its accumulator, handing
  the sum on);
- instructions: the host sends one instruction of ``instruction_bits`` per lookup over the
  memory channel's command path, ``instructions_per_cycle`` per cycle of the channel's clock
  (RecNMP packs eight 79-bit instructions into one 4-cycle burst slot of the C/A and DQ pins);
- energy: ``add_energy`` per FP32 add (``multiply_energy`` per multiply of weighted pooling),
  ``cache_access_energy`` per access of the engine's row cache.

What it ignores: the engine's instruction decode and queueing beyond the transport rate, and
any stall of the datapath other than waiting for data.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from numba import njit
from pydantic import Field

from embsim.units import Frequency
from hwmodels.specs import PRESET_KINDS, NonNegativeEnergy, Spec

Count = Annotated[int, Field(gt=0)]
Cycles = Annotated[int, Field(ge=0)]


@PRESET_KINDS.register("nmp")
class NmpSpec(Spec):
    """One near-memory pooling engine: datapath, cache timing, instruction transport, energy."""

    clock: Annotated[Frequency, Field(gt=0)]
    lanes: Count
    pipeline_cycles: Cycles = 0
    bag_cycles: Cycles = 0
    cache_hit_cycles: Cycles = 1
    instruction_bits: Count
    instructions_per_cycle: Annotated[float, Field(gt=0)]
    add_energy: NonNegativeEnergy = 0.0
    multiply_energy: NonNegativeEnergy = 0.0
    cache_access_energy: NonNegativeEnergy = 0.0

    def derived(self) -> dict[str, float]:
        """Figures derived from the parameters, for ``presets show``."""
        return {"pooling_bandwidth": self.lanes * 4 * self.clock}


@njit(cache=True)
def elements_of(row_bytes, element_bytes):
    """Elements in a row of ``row_bytes`` (a partial element counts)."""
    return -(-row_bytes // element_bytes)


@njit(cache=True)
def datapath_cycles(row_bytes, element_bytes, lanes):
    """Cycles to add a row of ``row_bytes``, ``lanes`` elements a cycle."""
    return -(-elements_of(row_bytes, element_bytes) // lanes)


@njit(cache=True)
def _datapath_totals(row_bytes, element_bytes, lanes):
    """(cycles, elements) to add every row of ``row_bytes``."""
    cycles = 0
    elements = 0
    for size in row_bytes:
        cycles += datapath_cycles(size, element_bytes, lanes)
        elements += elements_of(size, element_bytes)
    return cycles, elements


class NmpTiming:
    """Seconds and joules of one engine's work, from its spec."""

    def __init__(self, spec: NmpSpec, element_bytes: int = 4):
        self.spec = spec
        self.cycle_s = 1.0 / spec.clock
        self.element_bytes = element_bytes

    def datapath(self, row_bytes: np.ndarray) -> tuple[int, int]:
        """(datapath cycles, elements) to add rows of ``row_bytes`` into their bags' sums."""
        cycles, elements = _datapath_totals(np.asarray(row_bytes, dtype=np.int64),
                                            self.element_bytes, self.spec.lanes)
        return int(cycles), int(elements)

    def pooling_s(self, cycles: int, bags: int, hits: int) -> float:
        """Time to pool rows taking ``cycles`` datapath cycles into ``bags`` sums when the data
        keeps up: those cycles, the per-bag cycles, the cache hits' reads and the pipeline."""
        s = self.spec
        total = cycles + bags * s.bag_cycles + hits * s.cache_hit_cycles + s.pipeline_cycles
        return total * self.cycle_s

    def instruction_s(self, count: int, command_cycle_s: float) -> float:
        """Time for ``count`` instructions over a channel whose clock period is
        ``command_cycle_s``."""
        return count / self.spec.instructions_per_cycle * command_cycle_s

    def energy_j(self, elements: int, weighted: bool, cache_accesses: int) -> float:
        """Adds (and multiplies) of ``elements`` elements, and the cache's accesses."""
        s = self.spec
        return (elements * (s.add_energy + (s.multiply_energy if weighted else 0.0))
                + cache_accesses * s.cache_access_energy)
