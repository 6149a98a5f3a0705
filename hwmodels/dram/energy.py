"""DRAM energy per command and background power, from IDD currents or per-access figures.

With ``VDD`` and IDD currents (mA per device) the energies follow Micron's power note
(TN-41-01, "Calculating Memory System Power for DDR3"), per rank of ``devices_per_rank``
devices, currents in A and times in s:

- activate + precharge: ``VDD x (IDD0 x tRC - IDD3N x tRAS - IDD2N x (tRC - tRAS))``
- read burst: ``VDD x (IDD4R - IDD3N) x BL/2 x tCK``; write burst with ``IDD4W``
- all-bank refresh: ``VDD x (IDD5 - IDD3N) x tRFC``; a per-bank refresh refreshes one bank's
  share of the rows, so it costs the all-bank energy / banks per rank (ASSUMPTION: the same
  charge per row whichever command refreshes it)
- background: ``VDD x IDD3N`` while a bank of the rank is open (active standby), ``VDD x IDD2N``
  otherwise (precharge standby). Models report the open time per rank.

With per-access figures: a burst costs ``read/write_energy_per_bit x request bits``, an ACT
``activate_energy``, a REF ``refresh_energy`` (per-bank: / banks per rank) and each rank draws
``background_power`` whether open or not. Parameters left out cost nothing.

In either form, a burst that crosses the channel to the host also costs ``io_energy_per_bit x
request bits`` (the DQ drivers and termination off the DIMM); a burst a near-memory unit reads
over a private path stays on the DIMM and does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.dram.spec import DramSpec

MILLI = 1e-3


@dataclass(frozen=True)
class DramEnergy:
    """Joules per command and watts of background power, per rank."""

    activate_j: float
    read_j: float
    write_j: float
    refresh_j: float
    refresh_per_bank_j: float
    active_standby_w: float
    precharge_standby_w: float
    io_j: float = 0.0

    @classmethod
    def from_spec(cls, spec: DramSpec, off_dimm: bool = True) -> DramEnergy:
        """The energies of ``spec``; ``off_dimm``: whether bursts cross the channel's DQ."""
        io = spec.io_energy_per_bit * spec.request_bytes * 8 if off_dimm else 0.0
        tck = spec.tCK
        if spec.VDD is not None:
            scale = spec.VDD * MILLI * spec.devices_per_rank   # mA per device -> W per rank
            act = scale * tck * (spec.IDD0 * spec.tRC - spec.IDD3N * spec.tRAS
                                 - spec.IDD2N * (spec.tRC - spec.tRAS))
            burst = spec.burst_cycles * tck
            refresh = scale * (spec.IDD5 - spec.IDD3N) * spec.tRFC * tck
            return cls(act, scale * (spec.IDD4R - spec.IDD3N) * burst,
                       scale * (spec.IDD4W - spec.IDD3N) * burst, refresh,
                       refresh / spec.banks_per_rank, scale * spec.IDD3N,
                       scale * spec.IDD2N, io)
        bits = spec.request_bytes * 8
        refresh = spec.refresh_energy or 0.0
        background = spec.background_power or 0.0
        return cls(spec.activate_energy or 0.0, (spec.read_energy_per_bit or 0.0) * bits,
                   (spec.write_energy_per_bit or 0.0) * bits, refresh,
                   refresh / spec.banks_per_rank, background, background, io)

    def parts(self, counts: dict[str, float], open_s: float, rank_s: float) -> dict[str, float]:
        """Energy by kind from command counts and time: ``open_s`` rank-seconds with a bank
        open out of ``rank_s`` rank-seconds in all (ranks x elapsed)."""
        parts = {
            "energy_act_j": counts["activates"] * self.activate_j,
            "energy_rd_j": counts["reads"] * self.read_j,
            "energy_wr_j": counts["writes"] * self.write_j,
            "energy_ref_j": (counts["refreshes_all_bank"] * self.refresh_j
                             + counts["refreshes_per_bank"] * self.refresh_per_bank_j),
            "energy_bg_j": (open_s * self.active_standby_w
                            + max(rank_s - open_s, 0.0) * self.precharge_standby_w),
        }
        if self.io_j:
            parts["energy_io_j"] = (counts["reads"] + counts["writes"]) * self.io_j
        return {"energy_j": sum(parts.values()), **parts}
