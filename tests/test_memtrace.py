"""Raw memory-request traces (DRAMsim3 and Ramulator text forms) and ``embsim memtrace``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from embsim.assignments import parse_assignments
from embsim.errors import InputError
from hwmodels.presets import load_preset
from simulator.core.replay import CycleHistogram, load_device_system
from tests.conftest import embsim
from traces.memtrace import read_memtrace, sniff_format

DRAMSIM3_TEXT = """# a comment, then a blank line

0x2000D5C0 READ  30
0x1FF96FC0\tWRITE   160
2000d600 read 165\r
0X40 write 165
"""
RAMULATOR_TEXT = "LD 0x12340\nST 4096\n\n# skipped\n  LD\t0xFF  \nST 0\n"


def _trace(tmp_path, text, name="t.trace"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _read(path, fmt=None, **kwargs):
    chunks = list(read_memtrace(path, fmt, **kwargs))
    return (np.concatenate([c.cycles for c in chunks]),
            np.concatenate([c.addresses for c in chunks]),
            np.concatenate([c.is_write for c in chunks]))


def test_dramsim3_lines_parse_to_cycles_addresses_and_directions(tmp_path):
    cycles, addresses, writes = _read(_trace(tmp_path, DRAMSIM3_TEXT), "dramsim3")
    assert cycles.tolist() == [30, 160, 165, 165]
    assert addresses.tolist() == [0x2000D5C0, 0x1FF96FC0, 0x2000D600, 0x40]
    assert writes.tolist() == [False, True, False, True]


def test_ramulator_lines_arrive_one_per_cycle(tmp_path):
    cycles, addresses, writes = _read(_trace(tmp_path, RAMULATOR_TEXT), "ramulator")
    assert cycles.tolist() == [0, 1, 2, 3]
    assert addresses.tolist() == [0x12340, 4096, 0xFF, 0]
    assert writes.tolist() == [False, True, False, True]


DRAMSIM3_LONG = "".join(f"# request {i}\n{hex(64 * i)} {'WRITE' if i % 3 else 'READ'} {7 * i}\n"
                        for i in range(200))


@pytest.mark.parametrize("text", [DRAMSIM3_LONG, RAMULATOR_TEXT * 50])
def test_tiny_blocks_give_the_same_requests_as_one_block(tmp_path, text):
    path = _trace(tmp_path, text)
    whole = _read(path)
    for block in (1, 7, 64):
        chunked = _read(path, block_bytes=block)
        for a, b in zip(whole, chunked, strict=True):
            assert np.array_equal(a, b)
    assert whole[0].size == 200
    if text == DRAMSIM3_LONG:
        assert whole[0].tolist() == [7 * i for i in range(200)]
        assert whole[1].tolist() == [64 * i for i in range(200)]
    else:  # request numbering continues across chunks
        assert whole[0].tolist() == list(range(200))


def test_format_is_sniffed_from_the_first_request_line(tmp_path):
    assert sniff_format(_trace(tmp_path, RAMULATOR_TEXT, "a")) == "ramulator"
    assert sniff_format(_trace(tmp_path, DRAMSIM3_TEXT, "b")) == "dramsim3"
    assert sniff_format(_trace(tmp_path, "# only a comment\n", "c")) == "dramsim3"


DRAMSIM3_BAD = [
    ("0xZZ READ 5", "expected a hexadecimal address"),
    ("0x10 FETCH 5", "expected READ or WRITE"),
    ("0x10 READ 5x", "expected a decimal cycle number"),
    ("0x10 READ", "too few fields"),
    ("0x10", "too few fields"),
    ("0x10 READ 5 7", "too many fields"),
    ("0x1" + "0" * 16 + " READ 5", "address too large"),
    ("0x10 READ 3", "cycle is smaller than the previous request's"),
]
RAMULATOR_BAD = [
    ("LOAD 0x10", "expected LD or ST"),
    ("LD", "too few fields"),
    ("LD 0xZZ", "expected an address, hexadecimal with 0x"),
    ("ST 12ab", "expected an address"),
    ("LD 0x10 4", "too many fields"),
    ("LD 1" + "0" * 18, "address too large"),
]


@pytest.mark.parametrize(("fmt", "good", "bad", "message"), [
    *[("dramsim3", "0x40 READ 4\n", b, m) for b, m in DRAMSIM3_BAD],
    *[("ramulator", "LD 0x40\n", b, m) for b, m in RAMULATOR_BAD],
])
def test_every_malformed_line_reports_its_number(tmp_path, fmt, good, bad, message):
    path = _trace(tmp_path, "# header\n" + good * 3 + "\n" + bad + "\n" + good)
    for block in (1 << 20, 5):
        with pytest.raises(InputError) as info:
            _read(path, fmt, block_bytes=block)
        assert str(info.value).startswith(f"{path}: line 6: ")
        assert message in str(info.value)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="unknown memory trace format 'gem5'; expected one "
                                         "of: dramsim3, ramulator"):
        read_memtrace(_trace(tmp_path, DRAMSIM3_TEXT), "gem5")
    with pytest.raises(InputError, match="no such memory trace file"):
        read_memtrace(tmp_path / "absent.trace")


def test_cycle_histogram_percentiles_are_nearest_rank():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 5000, size=20_000)
    exact = CycleHistogram()
    for part in np.array_split(values, 7):
        exact.add(part)
    for q in (0.5, 0.99, 1.0):
        assert exact.quantile(q) == int(np.percentile(values, q * 100, method="inverted_cdf"))
    coarse = CycleHistogram(max_bins=64)
    coarse.add(values)
    assert coarse.width == 128          # doubled until 4999 // width < 64
    p99 = int(np.percentile(values, 99, method="inverted_cdf"))
    assert p99 <= coarse.quantile(0.99) < p99 + coarse.width
    assert CycleHistogram().quantile(0.99) is None


def test_sets_keep_yaml_types_and_need_an_equals_sign():
    assert parse_assignments(["ranks=2", "mapping=rochrababgco", "xor_bank_hash=false",
                              "tCK=0.7 ns"]) == {"ranks": 2, "mapping": "rochrababgco",
                                                 "xor_bank_hash": False, "tCK": "0.7 ns"}
    with pytest.raises(InputError, match="--set: expected KEY=VALUE, got 'ranks'"):
        parse_assignments(["ranks"])


@pytest.mark.parametrize(("pairs", "message"), [
    (["cache.size=["], "--set: cache.size: value '\\[' is not a YAML value"),
    (["x=!!python/object:os.system ls"], "--set: x: value .* is not a YAML value"),
    (["ways=4", "ways=8"], "--set: ways is set twice, to 4 and 8"),
    (["=3"], "--set: expected KEY=VALUE"),
])
def test_bad_sets_name_the_key(pairs, message):
    with pytest.raises(InputError, match=message):
        parse_assignments(pairs)
    assert parse_assignments(["ways=4", "ways=4"]) == {"ways": 4}


def test_device_system_from_preset_file_and_full_params(tmp_path):
    system = load_device_system("ddr4-3200", {"ranks": 1})
    assert (system.kind, system.spec.ranks, system.spec.capacity) == ("dram", 1, 2**33)
    assert system.sources["ranks"] == "set in --set"
    with_preset = tmp_path / "dev.yaml"
    with_preset.write_text(yaml.safe_dump({"kind": "dram", "preset": "ddr4-3200",
                                           "params": {"mapping": "rochrababgco"}}))
    system = load_device_system(str(with_preset), {"ranks": 1})
    assert (system.spec.mapping, system.spec.ranks) == ("rochrababgco", 1)
    full = tmp_path / "full.yaml"
    full.write_text(yaml.safe_dump({"kind": "dram",
                                    "params": load_preset("ddr4-3200", "dram").values}))
    assert load_device_system(str(full), {}).spec == load_device_system("ddr4-3200", {}).spec


@pytest.mark.parametrize(("system", "sets", "message"), [
    ("ddr9", {}, "SYSTEM: unknown device preset or file 'ddr9'; expected a YAML file or one "
                 "of: .*ddr4-3200"),
    ("pcie5-x16", {}, "unknown device preset or file 'pcie5-x16'"),
    ("ddr4-3200", {"sizes": 2}, "--set: sizes: unknown dram parameter; expected one of: standard"),
    ("ddr4-3200", {"ranks": "two"}, "--set: ranks: Input should be a valid integer"),
    ("ddr4-3200", {"mapping": "rorobgbacoch"}, "--set: mapping: .*field 'ro' repeated"),
    ("ddr4-3200", {"tRAS": 80}, "--set: tRC: timings break tRC >= tRAS \\+ tRP"),
])
def test_bad_system_or_set_names_the_field(system, sets, message):
    with pytest.raises(InputError, match=message):
        load_device_system(system, sets)


def test_bad_device_files(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump({"kind": "dram", "preset": "ddr4-3200", "cache": 1}))
    with pytest.raises(InputError, match="dev.yaml: cache: unknown key"):
        load_device_system(str(path), {})
    path.write_text(yaml.safe_dump({"kind": "memory", "preset": "hbm3-h100"}))
    with pytest.raises(InputError, match="kind: unknown device kind 'memory'"):
        load_device_system(str(path), {})
    path.write_text(yaml.safe_dump({"kind": "dram", "params": {"ranks": 2}}))
    with pytest.raises(InputError, match="dev.yaml: params.standard: Field required"):
        load_device_system(str(path), {})
    with pytest.raises(InputError, match="no such device file"):
        load_device_system(str(tmp_path / "absent.yaml"), {})


# --- replay through the real DRAM model, via the real command line --------------------------

IDLE_DDR4 = ("--set", "refresh=none", "--set", "mapping=rochrababgco")


def _memtrace(*args):
    result = embsim("memtrace", *args)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("fidelity", ["fast", "detailed"])
def test_one_read_to_a_closed_row_takes_trcd_plus_cl_plus_burst(tmp_path, fidelity):
    path = _trace(tmp_path, "0x0 READ 0\n")
    out = json.loads(_memtrace("ddr4-3200", str(path), "--json", "--fidelity", fidelity,
                               *IDLE_DDR4).stdout)
    assert out["read_latency_mean_cycles"] == 22 + 22 + 4     # tRCD + CL + BL/2
    assert out["read_latency_p99_cycles"] == 48
    assert out["read_latency_mean_ns"] == pytest.approx(48 * 0.625)
    assert (out["requests"], out["reads"], out["writes"]) == (1, 1, 0)
    assert (out["row_misses"], out["row_hits"], out["activates"]) == (1, 0, 1)
    assert out["sim_cycles"] == 48
    assert out["bandwidth_gbps"] == pytest.approx(64 / (48 * 0.625e-9) / 1e9)


@pytest.mark.parametrize("fidelity", ["fast", "detailed"])
def test_reads_to_one_row_are_all_hits_after_the_first(tmp_path, fidelity):
    n = 12  # lines 64 B apart: consecutive columns of one row under rochrababgco
    text = "".join(f"{hex(64 * i)} READ {100 * i}\n" for i in range(n))
    out = json.loads(_memtrace("ddr4-3200", str(_trace(tmp_path, text)), "--json",
                               "--fidelity", fidelity, *IDLE_DDR4).stdout)
    assert (out["row_hits"], out["row_misses"], out["row_conflicts"]) == (n - 1, 1, 0)
    assert out["activates"] == 1
    hit, miss = 22 + 4, 22 + 22 + 4        # CL + BL/2; tRCD + CL + BL/2
    assert out["read_latency_mean_cycles"] == pytest.approx((miss + (n - 1) * hit) / n)
    assert out["read_latency_p99_cycles"] == miss


def test_json_keys_and_text_table(tmp_path):
    path = _trace(tmp_path, RAMULATOR_TEXT)
    out = json.loads(_memtrace("ddr4-3200", str(path), "--json").stdout)
    assert set(out) >= {"requests", "reads", "writes", "read_latency_mean_cycles",
                        "read_latency_p99_cycles", "read_latency_mean_ns",
                        "read_latency_p99_ns", "bandwidth_gbps", "row_hits", "row_misses",
                        "row_conflicts", "activates", "precharges", "refreshes", "energy_j",
                        "sim_cycles"}
    assert (out["requests"], out["reads"], out["writes"]) == (4, 2, 2)
    assert out["energy_j"] > 0
    text = _memtrace("ddr4-3200", str(path)).stdout
    assert "ddr4-3200 (dram, detailed" in text and "(ramulator)" in text
    assert "4 (2 reads, 2 writes)" in text


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    path = _trace(tmp_path, "0x0 READ 0\n0x40 READ 1\nzzz line here\n")
    result = embsim("memtrace", "ddr4-3200", str(path))
    assert result.returncode == 2
    assert f"{path}: line 3: expected a hexadecimal address" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    result = embsim("memtrace", "ddr4-3200", str(path), "--set", "ranks=2", "--set", "foo=1")
    assert result.returncode == 2 and "foo" in result.stderr
    result = embsim("memtrace", "ddr4-3200", str(path), "--fidelity", "exact")
    assert result.returncode == 2 and "analytic, fast, detailed" in result.stderr


def test_device_file_that_is_not_text_and_an_unknown_fidelity(tmp_path):
    device = tmp_path / "dev.yaml"
    device.write_bytes(b"\xff\xfe\x00")
    trace = _trace(tmp_path, "0x0 READ 0\n")
    result = embsim("memtrace", str(device), str(trace))
    assert result.returncode == 2 and "dev.yaml: not a UTF-8 text file" in result.stderr
    result = embsim("memtrace", "ddr4-3200", str(trace), "--fidelity", "bogus")
    assert result.returncode == 2
    assert result.stderr.strip() == ("embsim: error: --fidelity: unknown fidelity 'bogus'; "
                                     "expected one of: analytic, fast, detailed")
