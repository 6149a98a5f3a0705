"""Near-memory pooling engines: the datapath of a unit that sums embedding rows inside memory.

``NmpSpec`` (preset kind ``nmp``, ``hwmodels/presets/nmp/``) describes one engine: a rank-level
unit in a DIMM's buffer chip (RecNMP), a bank-group unit (TRiM), a DIMM-level core
(TensorDIMM) or a pooling engine in a CXL memory expander. The simulator's unit kinds
(``simulator.core.units``) place one engine per rank, bank group, DIMM or expander and use it
through ``NmpTiming``:

- pooling: ``lanes`` elements added per ``clock`` cycle in FP32 (a row of ``d`` elements, of
  whatever stored type, takes ``ceil(d / lanes)`` cycles; an 8-bit row's dequantisation by its scale
  and bias is taken to be fused into the add); the engine streams rows as their data arrives and
  adds ``pipeline_cycles`` once, and ``bag_cycles`` per bag (setting up its accumulator, handing the
  sum on);
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
def datapath_cycles(elements, lanes):
    """Cycles to add a row of ``elements`` elements, ``lanes`` a cycle."""
    return -(-elements // lanes)


@njit(cache=True)
def _datapath_total(elements, lanes):
    """Cycles to add every row of ``elements``."""
    cycles = 0
    for count in elements:
        cycles += datapath_cycles(count, lanes)
    return cycles


class NmpTiming:
    """Seconds and joules of one engine's work, from its spec."""

    def __init__(self, spec: NmpSpec):
        self.spec = spec
        self.cycle_s = 1.0 / spec.clock

    def datapath(self, elements: np.ndarray) -> tuple[int, int]:
        """(datapath cycles, elements) to add rows of ``elements`` elements each into their
        bags' sums."""
        elements = np.asarray(elements, dtype=np.int64)
        return int(_datapath_total(elements, self.spec.lanes)), int(elements.sum())

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
