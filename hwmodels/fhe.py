"""FHE engines: how fast a processor runs CKKS operations (preset kind ``fhe``,
``hwmodels/presets/fhe/``).

An engine turns the modular operations of each CKKS operation (``simulator.core.fhe.ckks``)
into seconds, with one cost per operation kind:

- a **measured** engine (a CPU calibrated by ``embsim calibrate --backend fhe-cpu``, a GPU
  library from its paper's timings) gives ``<op>_time``, seconds per modular operation of that
  kind, fitted over ring dimensions and levels;
- a **designed** engine (an accelerator from its paper) gives ``clock`` and
  ``modular_multipliers``; every operation kind then runs at ``multipliers x clock`` modular
  operations per second, divided by ``utilization`` (the share of its peak the paper's own
  bootstrapping figure implies, or 1).

``threads`` independent operations run at once at ``parallel_efficiency`` each (a multi-core
CPU; 1 for engines whose single operation already fills the chip). ``scratchpad`` is the
on-chip memory that keeps ciphertexts, keys and encoded tables resident (a CPU's last-level
cache, an accelerator's register file): what fits stays there, the rest streams from the memory
tiers on every use. ``word_bits`` is the stored width of one residue. ``bootstrap_time`` is
one bootstrapping at ``bootstrap_ring_dim`` (scaled by ``N log N`` to other ring dimensions):
the lookup itself never bootstraps, only results that must keep more levels than remain.

What it ignores: the overlap of independent operations inside one engine beyond ``threads``,
and a fitted CPU's caches except through ``scratchpad`` (the fit already includes them).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from embsim.units import Frequency, Time
from hwmodels.specs import PRESET_KINDS, NonNegativeTime, PositiveSize, Spec

SERVER_OPS = ("add", "mul_plain", "mul", "relinearize", "rescale", "rotate")
CLIENT_OPS = ("encode", "encrypt", "decrypt", "decode")
OPS = SERVER_OPS + CLIENT_OPS
"""Every CKKS operation an engine prices (``simulator.core.fhe.ckks`` counts their work)."""

PositiveTime = Annotated[Time, Field(gt=0)]
PerOp = Annotated[PositiveTime | None, Field(default=None)]


@PRESET_KINDS.register("fhe")
class FheSpec(Spec):
    """One engine's CKKS speed, on-chip memory and bootstrapping cost."""

    clock: Annotated[Frequency | None, Field(gt=0)] = None
    modular_multipliers: Annotated[int | None, Field(gt=0)] = None
    utilization: Annotated[float, Field(gt=0, le=1)] = 1.0
    add_time: PerOp
    mul_plain_time: PerOp
    mul_time: PerOp
    relinearize_time: PerOp
    rescale_time: PerOp
    rotate_time: PerOp
    encode_time: PerOp
    encrypt_time: PerOp
    decrypt_time: PerOp
    decode_time: PerOp
    threads: Annotated[int, Field(gt=0)] = 1
    parallel_efficiency: Annotated[float, Field(gt=0, le=1)] = 1.0
    scratchpad: Annotated[PositiveSize | None, Field()] = None
    word_bits: Annotated[int, Field(ge=16, le=64)] = 64
    bootstrap_time: NonNegativeTime | None = None
    bootstrap_ring_dim: Annotated[int | None, Field(gt=0)] = None

    @model_validator(mode="after")
    def _speed_given(self) -> FheSpec:
        missing = [op for op in OPS if getattr(self, f"{op}_time") is None]
        if missing and (self.clock is None or self.modular_multipliers is None):
            raise ValueError(f"give clock and modular_multipliers, or a time per modular "
                             f"operation for every operation (missing: "
                             f"{', '.join(f'{op}_time' for op in missing)})")
        if (self.bootstrap_time is None) != (self.bootstrap_ring_dim is None):
            raise ValueError("give bootstrap_time and bootstrap_ring_dim together")
        return self

    def op_time(self, op: str) -> float:
        """Seconds per modular operation of ``op``."""
        given = getattr(self, f"{op}_time")
        if given is not None:
            return given
        return 1.0 / (self.modular_multipliers * self.clock * self.utilization)

    def derived(self) -> dict[str, float]:
        """Figures derived from the parameters, for ``presets show``."""
        return {"rotate_modops_per_second": 1.0 / self.op_time("rotate"),
                "mul_plain_modops_per_second": 1.0 / self.op_time("mul_plain")}
