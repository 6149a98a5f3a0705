"""DRAM standards as data: what each one has beyond the common timing set, and the relations
between timing parameters that every speed bin of every standard satisfies.

A ``Standard`` names its optional timing extras (each defaulting to a common parameter when a
preset leaves it out), the burst lengths it defines, whether it has per-bank refresh, whether
row and column commands travel on separate command buses and whether ACT, RD and WR take two
cycles of it. Adding a standard is one more entry in
``STANDARDS``; the models read only these fields.

Relations (``RELATIONS``, checked by ``DramSpec``), all in clock cycles ``tCK``:

- ``tRAS >= tRCD``: a row stays open at least until it can be read.
- ``tRC >= tRAS + tRP``: a row cycle is the row open (tRAS) then precharged (tRP).
- ``tCCD_S >= burst_length / 2``: one burst occupies the data bus BL/2 cycles (double data
  rate), so column commands cannot come closer.
- ``tCCD_L >= tCCD_S``, ``tRRD_L >= tRRD_S``, ``tWTR_L >= tWTR_S``: the same bank group is never
  faster than a different one.
- ``tFAW >= 4 * tRRD_S``: the four-activate window holds at least four spaced activates.
- ``tREFI > tRFC``: a refresh ends before the next is due.
- ``tRFCpb <= tRFC`` (where a standard has per-bank refresh; per-bank refreshes of different
  banks may overlap, so ``tREFIpb`` may be shorter than ``tRFCpb``).
- ``tCCD_L_WR >= tCCD_L`` (DDR5: writes to one bank group are spaced at least like reads).
"""

from __future__ import annotations

from dataclasses import dataclass

from embsim.registry import Registry


@dataclass(frozen=True)
class Standard:
    """What one DRAM standard adds to the common timing set."""

    name: str
    burst_lengths: tuple[int, ...]
    extras: tuple[str, ...]
    """Optional timing parameters of this standard (``EXTRA_TIMINGS`` gives their defaults)."""
    per_bank_refresh: bool
    """Has a per-bank (or same-bank) refresh command: ``tRFCpb`` and ``tREFIpb`` apply."""
    dual_command_bus: bool
    """Row (ACT/PRE/REF) and column (RD/WR) commands issue on separate buses, one per cycle
    each (HBM); otherwise one command per cycle in all."""
    two_cycle_commands: bool = False
    """ACT, RD and WR hold the command bus for two cycles (DDR5, JESD79-5: their address bits
    take two beats of its 14-bit CA bus); PRE and REF take one."""


@dataclass(frozen=True)
class Relation:
    """``lhs >= sum(factor * term)`` (``>`` when ``strict``); skipped when a term is unset."""

    lhs: str
    terms: tuple[tuple[str, float], ...]
    strict: bool = False
    why: str = ""

    def holds(self, values: dict[str, float | None]) -> bool | None:
        """Whether the relation holds; None when one of its parameters is not given."""
        names = [self.lhs, *(name for name, _ in self.terms)]
        if any(values.get(name) is None for name in names):
            return None
        bound = sum(factor * values[name] for name, factor in self.terms)
        return values[self.lhs] > bound if self.strict else values[self.lhs] >= bound

    def describe(self) -> str:
        rhs = " + ".join(name if factor == 1 else f"{factor:g}*{name}"
                         for name, factor in self.terms)
        return f"{self.lhs} {'>' if self.strict else '>='} {rhs}"


STANDARDS: Registry[Standard] = Registry("DRAM standard")

for _standard in (
    Standard("DDR4", burst_lengths=(8,), extras=(), per_bank_refresh=False,
             dual_command_bus=False),
    Standard("DDR5", burst_lengths=(16, 32), extras=("tCCD_L_WR",),
             per_bank_refresh=True, dual_command_bus=False, two_cycle_commands=True),
    Standard("HBM2e", burst_lengths=(2, 4), extras=("tRCDWR",),
             per_bank_refresh=True, dual_command_bus=True),
    Standard("HBM3", burst_lengths=(8,), extras=("tRCDWR",),
             per_bank_refresh=True, dual_command_bus=True),
    Standard("HBM3e", burst_lengths=(8,), extras=("tRCDWR",),
             per_bank_refresh=True, dual_command_bus=True),
):
    STANDARDS.register(_standard.name)(_standard)

EXTRA_TIMINGS: dict[str, str] = {"tCCD_L_WR": "tCCD_L", "tRCDWR": "tRCD"}
"""Every extra any standard declares (fields of ``DramSpec``) -> the common parameter it equals
when a spec leaves it out (and in standards without it): DDR5's write-to-write delay in one
bank group, HBM's activate-to-write delay (``tRCD`` being activate-to-read)."""

RELATIONS: tuple[Relation, ...] = (
    Relation("tRAS", (("tRCD", 1),), why="a row stays open at least until it can be read"),
    Relation("tRC", (("tRAS", 1), ("tRP", 1)), why="a row cycle is tRAS open then tRP"),
    Relation("tCCD_S", (("burst_length", 0.5),), why="a burst holds the data bus BL/2 cycles"),
    Relation("tCCD_L", (("tCCD_S", 1),), why="the same bank group is never faster"),
    Relation("tRRD_L", (("tRRD_S", 1),), why="the same bank group is never faster"),
    Relation("tWTR_L", (("tWTR_S", 1),), why="the same bank group is never faster"),
    Relation("tFAW", (("tRRD_S", 4),), why="the window holds four spaced activates"),
    Relation("tREFI", (("tRFC", 1),), strict=True, why="a refresh ends before the next is due"),
    Relation("tRFC", (("tRFCpb", 1),), why="refreshing one bank is not slower than all"),
    Relation("tCCD_L_WR", (("tCCD_L", 1),), why="same-group writes are spaced at least tCCD_L"),
)
