"""Raw memory-trace replay speed: ``embsim memtrace`` whole-process against DRAMsim3's, and the
trace parser against a plain Python loop, in one run.

Writes a seeded DRAMsim3-format trace of embedding-style requests (256 B rows scattered over
4 GiB, each row four 64 B reads arriving together, one row every ``--cycles-per-row``
controller cycles) of ``--requests`` lines, then times:

- the parser alone (``traces.memtrace.read_memtrace``) in lines per second, against a Python
  ``str.split`` loop that parses the same file into the same three arrays (the baseline);
- ``embsim memtrace ddr4-3200 TRACE --format dramsim3 --fidelity detailed`` as a fresh process;
- with ``--dramsim3 PATH`` (the ``dramsim3main`` binary of a DRAMsim3 build, e.g. from
  github.com/umd-memsys/DRAMsim3; nothing of it is committed) and ``--dramsim3-config INI``
  (default: ``configs/DDR4_8Gb_x8_3200.ini`` beside the binary's build folder), DRAMsim3 on the
  same trace as a fresh process, run for the trace's last cycle plus ``DRAIN_CYCLES``.

Prints each figure, the ratios, and one JSON line. Targets (issue 16): parsing >= 5 M lines/s,
and ``detailed`` whole-process >= 10x DRAMsim3's speed on 1M requests.

    python benchmarks/bench_memtrace.py [--requests 1000000] [--dramsim3 PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from traces.memtrace import read_memtrace  # noqa: E402

EMBSIM = [sys.executable, "-c", "from simulator.cli import main; main()"]
ROW_BYTES, LINE_BYTES, SPAN_BYTES = 256, 64, 4 << 30
DRAIN_CYCLES = 100_000


def write_trace(path: Path, requests: int, cycles_per_row: int, seed: int = 1) -> int:
    """Write the trace; returns the cycle of its last request."""
    rows = -(-requests // (ROW_BYTES // LINE_BYTES))
    rng = np.random.default_rng(seed)
    bases = rng.integers(0, SPAN_BYTES // ROW_BYTES, rows) * ROW_BYTES
    addresses = (bases[:, None] + np.arange(0, ROW_BYTES, LINE_BYTES)).ravel()[:requests]
    cycles = (np.arange(rows) * cycles_per_row).repeat(ROW_BYTES // LINE_BYTES)[:requests]
    with path.open("w") as out:
        out.writelines(f"0x{a:x} READ {c}\n" for a, c in zip(addresses.tolist(),
                                                               cycles.tolist(), strict=True))
    return int(cycles[-1])


def parse_python(path: Path) -> int:
    """The baseline parser: split each line, convert its fields, fill the three arrays."""
    lines = path.read_text().splitlines()
    addresses = np.empty(len(lines), dtype=np.int64)
    cycles = np.empty(len(lines), dtype=np.int64)
    writes = np.empty(len(lines), dtype=bool)
    for i, line in enumerate(lines):
        address, op, cycle = line.split()
        addresses[i], writes[i], cycles[i] = int(address, 16), op == "WRITE", int(cycle)
    return len(lines)


def parse_embsim(path: Path) -> int:
    return sum(len(chunk) for chunk in read_memtrace(path, "dramsim3"))


def timed(work, *args) -> float:
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


def whole_process(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=cwd)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--cycles-per-row", type=int, default=24)
    parser.add_argument("--dramsim3", type=Path, help="DRAMsim3's dramsim3main binary")
    parser.add_argument("--dramsim3-config", type=Path, help="DRAMsim3 .ini file")
    args = parser.parse_args()
    figures: dict[str, object] = {"benchmark": "bench_memtrace", "requests": args.requests,
                                  "cycles_per_row": args.cycles_per_row}
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "rows.trace"
        last_cycle = write_trace(trace, args.requests, args.cycles_per_row)
        parse_embsim(trace)                                     # numba's cache, page cache
        embsim_parse = timed(parse_embsim, trace)
        python_parse = timed(parse_python, trace)
        figures["parse_lines_per_s"] = round(args.requests / embsim_parse)
        figures["parse_python_lines_per_s"] = round(args.requests / python_parse)
        figures["parse_ratio"] = round(python_parse / embsim_parse, 2)
        command = [*EMBSIM, "memtrace", "ddr4-3200", str(trace), "--format", "dramsim3",
                   "--fidelity", "detailed", "--json"]
        figures["embsim_detailed_s"] = round(whole_process(command, ROOT), 3)
        figures["embsim_requests_per_s"] = round(args.requests / figures["embsim_detailed_s"])
        if args.dramsim3 is not None:
            binary = args.dramsim3.resolve()
            config = (args.dramsim3_config or
                      binary.parent.parent / "configs" / "DDR4_8Gb_x8_3200.ini").resolve()
            run = [str(binary), str(config), "-c", str(last_cycle + DRAIN_CYCLES),
                   "-t", str(trace), "-o", tmp]
            figures["dramsim3_s"] = round(whole_process(run, Path(tmp)), 3)
            figures["dramsim3_config"] = config.name
            figures["speedup_vs_dramsim3"] = round(
                figures["dramsim3_s"] / figures["embsim_detailed_s"], 2)
    figures.update(python=platform.python_version(), machine=platform.machine())
    print(f"parse: {figures['parse_lines_per_s'] / 1e6:.2f} M lines/s "
          f"({figures['parse_ratio']}x the Python loop's "
          f"{figures['parse_python_lines_per_s'] / 1e6:.2f} M)")
    print(f"embsim memtrace --fidelity detailed: {figures['embsim_detailed_s']} s whole-process")
    if "dramsim3_s" in figures:
        print(f"DRAMsim3: {figures['dramsim3_s']} s whole-process; embsim is "
              f"{figures['speedup_vs_dramsim3']}x as fast")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
