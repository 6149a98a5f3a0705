"""``DramSpec``: one DRAM/HBM device (organisation, timing, currents, controller), validated.

Parameter names are shared with the preset files (``hwmodels/presets/dram/``). Timings are in
clock cycles of ``tCK`` (ints); ``tCK`` and ``frontend_latency`` are times ("0.625 ns").
Validation checks the standard's relations (``standards.RELATIONS``), the extras each standard
allows, the mapping string, the organisation (whole bursts per row, whole devices per rank,
a capacity that fits 62-bit addresses) and that the energy parameters come in one complete form:
either ``VDD`` with all six IDD currents, or per-access energies.

Derived figures (``derived()``): peak bandwidth = channels x pseudo-channels x bus bytes x 2 /
tCK; unloaded read latency (+ ``frontend_latency``) for a row hit ``CL + BL/2``, a row miss
``tRCD + CL + BL/2`` and a row conflict ``tRP + tRCD + CL + BL/2`` cycles; refresh overhead =
the fraction of time a bank is refreshing: ``tRFC / tREFI`` (all-bank) or ``tRFCpb /
(tREFIpb x banks per rank)`` (per-bank, one bank per command in rotation).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from embsim.units import Time
from hwmodels.dram.mapping import AddressMap, parse_mapping
from hwmodels.dram.standards import EXTRA_TIMINGS, RELATIONS, STANDARDS, Standard
from hwmodels.specs import NonNegativeEnergy, NonNegativeTime, Spec

Count = Annotated[int, Field(gt=0)]
NonNegativeCount = Annotated[int, Field(ge=0)]
Cycles = Annotated[int, Field(gt=0)]
NonNegativeCycles = Annotated[int, Field(ge=0)]
Current = Annotated[float, Field(ge=0)]   # mA per device
IDD_FIELDS = ("IDD0", "IDD2N", "IDD3N", "IDD4R", "IDD4W", "IDD5")
PER_ACCESS_FIELDS = ("read_energy_per_bit", "write_energy_per_bit", "activate_energy",
                     "refresh_energy", "background_power")
MAX_CAPACITY = 2**62


def _fail(field: str, message: str, value: Any) -> ValidationError:
    """A validation error located at ``field`` (so callers can name it)."""
    error = PydanticCustomError("dram_spec", message)
    return ValidationError.from_exception_data(
        "DramSpec", [InitErrorDetails(type=error, loc=(field,), input=value)])


class DramSpec(Spec):
    """A DRAM or HBM device: organisation, timing (cycles of tCK), energy, controller."""

    # organisation
    standard: str
    channels: Count
    pseudo_channels: Count = 1
    ranks: Count = 1
    bank_groups: Count
    banks_per_group: Count
    rows: Count
    columns: Count
    device_width: Count
    bus_width: Count
    burst_length: Count
    # timing
    tCK: Annotated[Time, Field(gt=0)]
    CL: Cycles
    CWL: Cycles
    tRCD: Cycles
    tRP: Cycles
    tRAS: Cycles
    tRC: Cycles
    tCCD_S: Cycles
    tCCD_L: Cycles
    tRRD_S: Cycles
    tRRD_L: Cycles
    tFAW: Cycles
    tWTR_S: Cycles
    tWTR_L: Cycles
    tWR: Cycles
    tRTP: Cycles
    tRTRS: NonNegativeCycles
    tRFC: Cycles
    tREFI: Cycles
    tRFCpb: Cycles | None = None
    tREFIpb: Cycles | None = None
    tCCD_L_WR: Cycles | None = None
    tRCDWR: Cycles | None = None
    # energy: IDD form (V, mA per device) or per-access form
    VDD: Annotated[float, Field(gt=0)] | None = None
    IDD0: Current | None = None
    IDD2N: Current | None = None
    IDD3N: Current | None = None
    IDD4R: Current | None = None
    IDD4W: Current | None = None
    IDD5: Current | None = None
    read_energy_per_bit: NonNegativeEnergy | None = None
    write_energy_per_bit: NonNegativeEnergy | None = None
    activate_energy: NonNegativeEnergy | None = None
    refresh_energy: NonNegativeEnergy | None = None
    background_power: Annotated[float, Field(ge=0)] | None = None   # W per rank
    io_energy_per_bit: NonNegativeEnergy = 0.0   # off-DIMM DQ transfer, in either form
    # controller
    mapping: str = "rochrababgco"
    xor_bank_hash: bool = False
    row_policy: Literal["open", "closed"] = "open"
    scheduler: Literal["fcfs", "frfcfs"] = "frfcfs"
    queue_depth: Count = 32
    bank_queue_depth: NonNegativeCount = 0
    merge_reads: bool = False
    refresh: Literal["all_bank", "per_bank", "none"] = "all_bank"
    frontend_latency: NonNegativeTime = 0.0

    @field_validator("standard")
    @classmethod
    def _known_standard(cls, name: str) -> str:
        if name not in STANDARDS:
            raise ValueError(f"unknown DRAM standard {name!r}; expected one of: "
                             f"{', '.join(STANDARDS.names())}")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> DramSpec:
        for check in (self._check_standard, self._check_organisation, self._check_relations,
                      self._check_refresh, self._check_mapping, self._check_energy):
            check()
        return self

    # --- validation -------------------------------------------------------------------

    def _check_standard(self) -> None:
        std = self.standard_data
        for name in EXTRA_TIMINGS:
            if getattr(self, name) is not None and name not in std.extras:
                owners = [s for s in STANDARDS.names() if name in STANDARDS.get(s).extras]
                raise _fail(name, f"{name} is not a {std.name} timing (only "
                            f"{', '.join(owners)})", getattr(self, name))
        if not std.per_bank_refresh:
            for name in ("tRFCpb", "tREFIpb"):
                if getattr(self, name) is not None:
                    raise _fail(name, f"{std.name} has no per-bank refresh, so no {name}",
                                getattr(self, name))
        if self.burst_length not in std.burst_lengths:
            raise _fail("burst_length", f"{std.name} bursts are "
                        f"{' or '.join(map(str, std.burst_lengths))} long", self.burst_length)

    def _check_organisation(self) -> None:
        if self.bus_width % self.device_width:
            raise _fail("device_width", f"bus_width {self.bus_width} is not a whole number of "
                        f"{self.device_width}-bit devices", self.device_width)
        if self.bus_width % 8:
            raise _fail("bus_width", "expected whole bytes (a multiple of 8 bits)",
                        self.bus_width)
        if self.columns % self.burst_length:
            raise _fail("columns", f"a row of {self.columns} columns is not a whole number of "
                        f"{self.burst_length}-column bursts", self.columns)
        if self.capacity >= MAX_CAPACITY:
            raise _fail("rows", f"capacity {self.capacity} B does not fit 62-bit addresses",
                        self.rows)

    def _check_relations(self) -> None:
        values = self.model_dump()
        for relation in RELATIONS:
            if relation.holds(values) is False:
                raise _fail(relation.lhs, f"timings break {relation.describe()} "
                            f"({relation.why})", values[relation.lhs])

    def _check_refresh(self) -> None:
        if self.refresh == "all_bank":
            self._check_room_between_refreshes("tREFI", self.tREFI, self.tRFC)
        if self.refresh != "per_bank":
            return
        if not self.standard_data.per_bank_refresh:
            raise _fail("refresh", f"{self.standard} has no per-bank refresh; expected "
                        "all_bank or none", self.refresh)
        for name in ("tRFCpb", "tREFIpb"):
            if getattr(self, name) is None:
                raise _fail(name, "required by refresh: per_bank", None)
        if self.tREFIpb * self.banks_per_rank > self.tREFI:
            raise _fail("tREFIpb", f"banks_per_rank ({self.banks_per_rank}) x tREFIpb exceeds "
                        f"tREFI ({self.tREFI}): a bank would be refreshed less often than "
                        "every tREFI", self.tREFIpb)
        self._check_room_between_refreshes("tREFIpb", self.tREFIpb * self.banks_per_rank,
                                           self.tRFCpb)

    def _check_room_between_refreshes(self, field: str, period: int, blackout: int) -> None:
        """A bank must be able to open a row and issue its column command between two of its
        refreshes: its refresh period longer than the refresh plus tRCD (tRCDWR for writes)."""
        lead = max(self.tRCD, self.tRCDWR or 0)
        if period <= blackout + lead:
            raise _fail(field, f"a bank's refresh period ({period} cycles) leaves no room to "
                        f"open a row: it must exceed the refresh ({blackout}) plus tRCD/tRCDWR "
                        f"({lead})", getattr(self, field))

    def _check_mapping(self) -> None:
        try:
            parse_mapping(self.mapping)
        except ValueError as err:
            raise _fail("mapping", str(err), self.mapping) from None
        if self.xor_bank_hash:
            for name in ("bank_groups", "banks_per_group"):
                count = getattr(self, name)
                if count & (count - 1):
                    raise _fail("xor_bank_hash", f"the XOR bank hash needs a power-of-two "
                                f"{name}, got {count}", True)

    def _check_energy(self) -> None:
        idd = [n for n in ("VDD", *IDD_FIELDS) if getattr(self, n) is not None]
        per_access = [n for n in PER_ACCESS_FIELDS if getattr(self, n) is not None]
        if idd and per_access:
            raise _fail(per_access[0], "give either VDD and IDD currents or per-access "
                        f"energies, not both (IDD form has {', '.join(idd)})",
                        getattr(self, per_access[0]))
        if idd:
            for name in ("VDD", *IDD_FIELDS):
                if getattr(self, name) is None:
                    raise _fail(name, f"required with the other IDD values ({', '.join(idd)})",
                                None)
            background = self.IDD3N * self.tRAS + self.IDD2N * (self.tRC - self.tRAS)
            if self.IDD0 * self.tRC < background:
                raise _fail("IDD0", "IDD0 x tRC is below the background current over a row "
                            "cycle (IDD3N x tRAS + IDD2N x (tRC - tRAS)): negative "
                            "activate energy", self.IDD0)
            for name in ("IDD4R", "IDD4W", "IDD5"):
                if getattr(self, name) < self.IDD3N:
                    raise _fail(name, f"below IDD3N ({self.IDD3N} mA)", getattr(self, name))

    # --- derived figures ---------------------------------------------------------------

    @property
    def standard_data(self) -> Standard:
        return STANDARDS.get(self.standard)

    def timing(self, name: str) -> int:
        """A timing in cycles; an extra left out (or not in the standard) takes its default."""
        value = getattr(self, name)
        return getattr(self, EXTRA_TIMINGS[name]) if value is None else value

    @property
    def bus_channels(self) -> int:
        """Independent data buses: channels x pseudo-channels (the ``ch`` field's count)."""
        return self.channels * self.pseudo_channels

    @property
    def banks_per_rank(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def devices_per_rank(self) -> int:
        return self.bus_width // self.device_width

    @property
    def burst_cycles(self) -> int:
        """Cycles one burst holds the data bus (two beats per cycle)."""
        return self.burst_length // 2

    @property
    def request_bytes(self) -> int:
        return self.bus_width // 8 * self.burst_length

    @property
    def row_bytes(self) -> int:
        """Bytes of one row across the devices of a rank."""
        return self.columns * self.bus_width // 8

    @property
    def capacity(self) -> int:
        return (self.bus_channels * self.ranks * self.banks_per_rank * self.rows
                * self.row_bytes)

    @property
    def peak_bandwidth(self) -> float:
        return self.bus_channels * self.bus_width / 8 * 2 / self.tCK

    @property
    def address_map(self) -> AddressMap:
        radix = {"ro": self.rows, "ch": self.bus_channels, "ra": self.ranks,
                 "bg": self.bank_groups, "ba": self.banks_per_group,
                 "co": self.columns // self.burst_length}
        return AddressMap(parse_mapping(self.mapping), radix, self.request_bytes,
                          self.xor_bank_hash)

    def read_latency_cycles(self) -> dict[str, int]:
        """Unloaded read latency in cycles by row outcome (without the front end)."""
        hit = self.CL + self.burst_cycles
        return {"hit": hit, "miss": self.tRCD + hit, "conflict": self.tRP + self.tRCD + hit}

    @property
    def refresh_overhead(self) -> float:
        """Fraction of time a bank spends refreshing under the configured refresh mode."""
        if self.refresh == "all_bank":
            return self.tRFC / self.tREFI
        if self.refresh == "per_bank":
            return self.tRFCpb / (self.tREFIpb * self.banks_per_rank)
        return 0.0

    def derived(self) -> dict[str, float]:
        """Figures derived from the parameters (SI units), for ``presets show``."""
        latency = {k: v * self.tCK + self.frontend_latency
                   for k, v in self.read_latency_cycles().items()}
        return {
            "peak_bandwidth": self.peak_bandwidth,
            "capacity": float(self.capacity),
            "request_bytes": float(self.request_bytes),
            "row_bytes": float(self.row_bytes),
            "devices_per_rank": float(self.devices_per_rank),
            "read_latency_hit_s": latency["hit"],
            "read_latency_miss_s": latency["miss"],
            "read_latency_conflict_s": latency["conflict"],
            "refresh_overhead": self.refresh_overhead,
        }
