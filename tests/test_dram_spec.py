"""DramSpec validation, derived figures and the address mapping."""

from __future__ import annotations

import numpy as np
import pytest
from device_timings.devices import DEVICES, device_spec
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from embsim.errors import InputError
from hwmodels.device import device_kind
from hwmodels.dram import DramSpec
from hwmodels.dram.mapping import parse_mapping
from hwmodels.presets import preset_names, resolve, spec_class


def error_of(**changes) -> tuple[str, str]:
    """(field, message) of the first validation error of the DDR4 device with ``changes``."""
    values = {**DEVICES["DDR4"], **changes}
    with pytest.raises(ValidationError) as info:
        DramSpec(**values)
    first = info.value.errors()[0]
    return ".".join(map(str, first["loc"])), first["msg"]


def test_one_record_declares_the_kind():
    record = device_kind("dram")
    assert record.spec is DramSpec and spec_class("dram") is DramSpec
    assert {record.level(level) for level in ("analytic", "fast", "detailed")} == {
        "analytic", "fast", "detailed"}


def test_derived_figures_of_ddr4_3200():
    spec = device_spec("DDR4", frontend_latency="10 ns", refresh="all_bank")
    derived = spec.derived()
    assert derived["peak_bandwidth"] == pytest.approx(25.6e9)        # 64 bit x 3200 MT/s
    assert derived["capacity"] == 16 * 2**30                          # 2 ranks x 8 GiB
    assert derived["request_bytes"] == 64
    assert derived["row_bytes"] == 8192
    assert derived["devices_per_rank"] == 8
    assert derived["read_latency_hit_s"] == pytest.approx((22 + 4) * 0.625e-9 + 10e-9)
    assert derived["read_latency_miss_s"] == pytest.approx((22 + 22 + 4) * 0.625e-9 + 10e-9)
    assert derived["refresh_overhead"] == pytest.approx(560 / 12480)
    per_bank = device_spec("HBM3", refresh="per_bank")
    assert per_bank.refresh_overhead == pytest.approx(512 / (780 * 16))


def test_extras_default_to_their_common_timing():
    spec = device_spec("DDR4")
    assert spec.timing("tRCDWR") == spec.tRCD and spec.timing("tCCD_L_WR") == spec.tCCD_L
    assert device_spec("HBM3").timing("tRCDWR") == 32


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"tRC": 60}, "tRC", "tRC >= tRAS + tRP"),
    ({"tRAS": 20}, "tRAS", "tRAS >= tRCD"),
    ({"tCCD_L": 3}, "tCCD_L", "tCCD_L >= tCCD_S"),
    ({"tCCD_S": 2, "tCCD_L": 2}, "tCCD_S", "burst_length"),
    ({"tRRD_L": 3}, "tRRD_L", "tRRD_L >= tRRD_S"),
    ({"tFAW": 12}, "tFAW", "tFAW >= 4*tRRD_S"),
    ({"tREFI": 500}, "tREFI", "tREFI > tRFC"),
    ({"tWTR_L": 2}, "tWTR_L", "tWTR_L >= tWTR_S"),
    ({"mapping": "rochrababg"}, "mapping", "'co' (column) missing"),
    ({"mapping": "rochrababgcoro"}, "mapping", "'ro' repeated"),
    ({"mapping": "rochrababgxx"}, "mapping", "unknown field 'xx'"),
    ({"mapping": "rochrababgc"}, "mapping", "odd length"),
    ({"standard": "DDR6"}, "standard", "expected one of: DDR4, DDR5, HBM2e, HBM3, HBM3e"),
    ({"tRCDWR": 10}, "tRCDWR", "not a DDR4 timing"),
    ({"tRFCpb": 100}, "tRFCpb", "no per-bank refresh"),
    ({"refresh": "per_bank"}, "refresh", "no per-bank refresh"),
    ({"burst_length": 16, "tCCD_S": 8, "tCCD_L": 8, "tRRD_S": 8, "tFAW": 34},
     "burst_length", "bursts are 8 long"),
    ({"columns": 1020}, "columns", "whole number"),
    ({"device_width": 48}, "device_width", "whole number"),
    ({"rows": 2**45}, "rows", "does not fit"),
    ({"xor_bank_hash": True, "banks_per_group": 3}, "xor_bank_hash", "power-of-two"),
    ({"VDD": 1.2, "IDD0": 50}, "IDD2N", "required with the other IDD values"),
    ({"VDD": 1.2, "background_power": 0.2}, "background_power", "not both"),
    ({"VDD": 1.2, "IDD0": 10, "IDD2N": 38, "IDD3N": 47, "IDD4R": 143, "IDD4W": 133,
      "IDD5": 250}, "IDD0", "negative activate energy"),
    ({"scheduler": "lifo"}, "scheduler", "fcfs"),
    ({"row_policy": "adaptive"}, "row_policy", "closed"),
])
def test_inconsistent_specs_name_the_field(changes, field, words):
    where, message = error_of(**changes)
    assert where == field
    assert words in message


def test_per_bank_refresh_needs_its_timings_and_every_bank_within_tREFI():
    base = {**DEVICES["HBM3"], "refresh": "per_bank"}
    with pytest.raises(ValidationError, match="tRFCpb"):
        DramSpec(**{**base, "tRFCpb": None})
    with pytest.raises(ValidationError, match="less often than every tREFI"):
        DramSpec(**{**base, "tREFIpb": 900})


def test_a_refresh_period_must_leave_room_to_open_a_row():
    """A bank refreshed again before a row could be opened and read (refresh + tRCD) could
    never serve an access: refused (``fast`` and ``detailed`` would wait forever)."""
    ddr4 = DEVICES["DDR4"]
    with pytest.raises(ValidationError, match="leaves no room to open a row"):
        DramSpec(**{**ddr4, "tREFI": ddr4["tRFC"] + ddr4["tRCD"]})
    DramSpec(**{**ddr4, "tREFI": ddr4["tRFC"] + ddr4["tRCD"] + 1})
    hbm = {**DEVICES["HBM3"], "refresh": "per_bank"}
    spec = DramSpec(**hbm)
    tight = (spec.tRFCpb + spec.tRCD) // spec.banks_per_rank      # period <= refresh + tRCD
    with pytest.raises(ValidationError, match="tREFIpb(.|\n)*leaves no room"):
        DramSpec(**{**hbm, "tREFIpb": tight})


def test_preset_resolution_reports_the_field_as_an_input_error():
    with pytest.raises(InputError) as info:
        resolve("dram", None, {**DEVICES["DDR4"], "tRC": 10}, source="sys.yaml", field="hbm")
    assert info.value.field == "hbm.tRC"
    assert "sys.yaml" in str(info.value)


@pytest.mark.parametrize("name", preset_names("dram"))
def test_shipped_presets_validate(name):
    spec, sources = resolve("dram", name, {})
    assert isinstance(spec, DramSpec)
    assert spec.capacity > 0 and spec.peak_bandwidth > 0
    assert set(sources) >= {"tCK", "tRCD", "CL"}


def test_mapping_is_mixed_radix_and_slices_bits_for_powers_of_two():
    spec = device_spec("DDR4", channels=3, mapping="rochrababgco")
    amap = spec.address_map
    assert amap.radix == {"ro": 65536, "ch": 3, "ra": 2, "bg": 4, "ba": 4, "co": 128}
    decoded = amap.decode(np.array([64 * (5 + 128 * (1 + 4 * (2 + 4 * (1 + 2 * (2 + 3 * 7)))))]))
    assert (decoded.column[0], decoded.bank_group[0], decoded.bank[0], decoded.rank[0],
            decoded.channel[0], decoded.row[0]) == (5, 1, 2, 1, 2, 7)
    pow2 = device_spec("DDR4").address_map
    address = 0b1011_0_1_10_01_0000101_000000 | (123 << 22)
    d = pow2.decode(np.array([address]))
    # rorabacobgch: ch has 1 value, then bg (2 bits), co (7 bits), ba (2), ra (1), ro
    assert d.bank_group[0] == address >> 6 & 3
    assert d.column[0] == address >> 8 & 127
    assert d.bank[0] == address >> 15 & 3
    assert d.rank[0] == address >> 17 & 1
    assert d.row[0] == address >> 18


@given(st.integers(0, 2**34 - 1), st.booleans())
def test_encode_inverts_decode(address, hashed):
    spec = device_spec("DDR4", channels=3, xor_bank_hash=hashed)
    amap = spec.address_map
    aligned = address // 64 * 64 % spec.capacity
    d = amap.decode(np.array([aligned]))
    again = amap.encode(channel=d.channel, rank=d.rank, bank_group=d.bank_group, bank=d.bank,
                        row=d.row, column=d.column)
    assert again.tolist() == [aligned]


def test_xor_hash_spreads_rows_of_one_bank_over_banks():
    spec = device_spec("DDR4", xor_bank_hash=True)
    rows = np.arange(16)
    plain = device_spec("DDR4").address_map.encode(row=rows)
    decoded = spec.address_map.decode(plain)
    assert len(set(zip(decoded.bank_group.tolist(), decoded.bank.tolist(), strict=True))) == 16


def test_parse_mapping_order():
    assert parse_mapping("rochrababgco") == ("ro", "ch", "ra", "ba", "bg", "co")
