"""UPMEM processing-in-memory DIMMs: DPUs next to their DRAM banks (preset kind ``upmem``).

A rank of UPMEM DIMM chips holds ``dpus_per_rank`` DRAM Processing Units, each with its own
``mram_bytes`` DRAM bank (MRAM), a ``wram_bytes`` scratchpad (WRAM) and up to 24 hardware
threads (tasklets) on an in-order pipeline at ``clock``. ``UpmemTiming`` turns a DPU's work into
time, following the PrIM characterisation (Gomez-Luna et al., IEEE Access 2022):

- MRAM: each DMA transfer of ``size`` bytes takes ``mram_alpha + mram_beta x size`` cycles, one
  transfer at a time per DPU;
- compute: one instruction retires per cycle once at least ``saturating_tasklets`` tasklets
  keep the pipeline full (``tasklets / saturating_tasklets`` of that with fewer); adding one
  element costs ``add_instructions`` (int32, in hardware) or ``float_add_instructions`` (fp32,
  emulated in software: DPUs have no floating-point unit); DMA and compute overlap (different
  tasklets);
- host transfers: the host writes inputs to (and reads results from) the DPUs of a rank in one
  parallel transfer of equal-size buffers, at ``host_to_dpu_bandwidth`` and
  ``dpu_to_host_bandwidth`` per rank (the asymmetry is real), so a rank's transfer lasts as long
  as its largest buffer times its DPUs. ASSUMPTION: the ranks transfer at once (PrIM measured
  parallel transfers within one rank; the SDK then parallelised only within a rank).

What it ignores: WRAM bank conflicts, instruction memory (IRAM) limits, DMA transfer size limits
beyond one row, and the launch of the DPU program.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from embsim.units import Frequency
from hwmodels.specs import PRESET_KINDS, PositiveBandwidth, PositiveSize, Spec

Count = Annotated[int, Field(gt=0)]


@PRESET_KINDS.register("upmem")
class UpmemSpec(Spec):
    """One rank of UPMEM PIM chips and its DPUs."""

    dpus_per_rank: Count
    mram_bytes: PositiveSize
    wram_bytes: PositiveSize
    clock: Annotated[Frequency, Field(gt=0)]
    hardware_threads: Count
    saturating_tasklets: Count
    add_instructions: Count
    float_add_instructions: Count
    mram_alpha: Annotated[float, Field(ge=0)]
    mram_beta: Annotated[float, Field(gt=0)]
    host_to_dpu_bandwidth: PositiveBandwidth
    dpu_to_host_bandwidth: PositiveBandwidth

    def derived(self) -> dict[str, float]:
        """Figures derived from the parameters, for ``presets show``."""
        return {"mram_bandwidth": self.clock / self.mram_beta,
                "rank_mram_bytes": self.dpus_per_rank * self.mram_bytes}


class UpmemTiming:
    """Seconds of a DPU's work and of the host's transfers, from the spec."""

    def __init__(self, spec: UpmemSpec, tasklets: int, element_type: str):
        self.spec = spec
        self.cycle_s = 1.0 / spec.clock
        self.per_cycle = min(tasklets, spec.saturating_tasklets) / spec.saturating_tasklets
        self.add = (spec.add_instructions if element_type == "int32"
                    else spec.float_add_instructions)

    def mram_s(self, transfers: np.ndarray, transfer_bytes: np.ndarray) -> np.ndarray:
        """Per DPU: its ``transfers`` DMA transfers of ``transfer_bytes`` bytes in all."""
        s = self.spec
        return (transfers * s.mram_alpha + transfer_bytes * s.mram_beta) * self.cycle_s

    def compute_s(self, elements: np.ndarray) -> np.ndarray:
        """Per DPU: adding ``elements`` elements into their bags' sums."""
        return elements * self.add / self.per_cycle * self.cycle_s

    def transfer_s(self, per_dpu_bytes: np.ndarray, to_dpus: bool) -> float:
        """A parallel transfer to (or from) every rank: each rank moves its largest buffer for
        each of its DPUs; ranks move at once."""
        s = self.spec
        ranks = per_dpu_bytes.reshape(-1, s.dpus_per_rank)
        bandwidth = s.host_to_dpu_bandwidth if to_dpus else s.dpu_to_host_bandwidth
        return float((ranks.max(axis=1) * s.dpus_per_rank).max()) / bandwidth
