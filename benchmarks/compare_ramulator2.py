"""embsim's DDR5 model against Ramulator 2's DDR5 on embedding-style traces, light load to
saturation.

The traces are ``compare_dramsim3.py``'s (imported, not copied): seeded lookups of 256 B rows,
four 64 B reads stamped with the row's cycle, one row every ``period`` controller cycles
(``uniform``, ``zipf``, ``stream``). The device is ``ddr5-4800`` (one DIMM channel of two 32-bit
subchannels, two ranks of 16Gb x4 devices, DDR5-4800B 40-39-39), set as Ramulator 2's
controller: its ``RoBaRaCoCh`` mapping (embsim ``robabgracoch``: consecutive 64 B lines
alternate subchannels, so a 256 B row is two BL16 bursts on each, and 16 cycles a row is the
peak), no bank hash, no read merging. DRAMsim3 ships no DDR5 configuration, hence Ramulator 2.

``--record`` runs Ramulator 2 (``ramulator2 -f CONFIG``, the ``legacy/v2.0a`` branch built from
source with the ``TimedReadTrace`` frontend of ``RAMULATOR2_PATCH``: a memory trace with cycle
stamps, sent in order, waiting while the controller's queue is full) on each trace and writes
the mean read latency (from the controller's arrival, as Ramulator 2's ``avg_read_latency``
counts it), the activates (its ``CommandCounter`` plugin) and the reads of each point, with the
commit, the patch, the config and the command, to
``tests/dramsim3_reference/ddr5_4800_ramulator2.json``. Each trace's saturation bandwidth is the
rate Ramulator 2 serves it at when every row arrives at cycle 0 (``SATURATION_CYCLES_PER_ROW`` x
rows cycles); the swept loads are ``FRACTIONS`` of it.

Without ``--record`` it compares embsim (``fast`` and ``detailed``) against that file and prints
a table; ``--json`` prints the rows as JSON.

    python benchmarks/compare_ramulator2.py [--fidelity detailed fast] [--json]
    python benchmarks/compare_ramulator2.py --record --ramulator2 /path/to/ramulator2 \\
        --commit $(git -C /path/to/ramulator2 rev-parse HEAD)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_dramsim3 import (  # noqa: E402
    READS_PER_ROW,
    ROW_BYTES,
    ROWS,
    SATURATION_CYCLES_PER_ROW,
    SEED,
    SPAN_BYTES,
    TRACES,
    ZIPF_ALPHA,
    ZIPF_ROWS,
    embsim_point,
    requests,
)

REFERENCE = ROOT / "tests" / "dramsim3_reference" / "ddr5_4800_ramulator2.json"
PRESET = "ddr5-4800"
SETTINGS = {"mapping": "robabgracoch", "xor_bank_hash": False, "merge_reads": False}
"""What embsim's preset changes to match Ramulator 2's config: its ``RoBaRaCoCh`` mapping (from
the least significant bit above the 64 B offset: channel, column, rank, bank group, bank, row),
no bank hash, no read merging (Ramulator 2's generic controller merges nothing; it forwards
reads from its write buffer only). The rest of ``ddr5-4800`` is what ``CONFIG`` gives
Ramulator 2: 2 subchannels (Ramulator 2 channels) x 2 ranks x 8 bank groups x 4 banks, 64 K
rows of 8 KB, BL16, 40-39-39, all-bank refresh every tREFI with tRFC1 708, open page, FR-FCFS,
32 requests a subchannel."""
FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
"""Loads as fractions of each trace's saturation bandwidth (measured by Ramulator 2)."""
TIMING = {
    "rate": 4800, "nBL": 8, "nCL": 40, "nRCD": 39, "nRP": 39, "nRAS": 77, "nRC": 116,
    "nWR": 72, "nRTP": 18, "nCWL": 38, "nPPD": 2, "nCCDS": 8, "nCCDS_WR": 8,
    "nCCDS_WTR": 38 + 8 + 6, "nCCDL": 12, "nCCDL_WR": 48, "nCCDL_WTR": 38 + 8 + 24,
    "nRRDS": 8, "nRRDL": 12, "nFAW": 48, "nRFC1": 708, "nREFI": 9360, "nREFSBRD": 48,
    "nCS": 2,
}
"""Ramulator 2's DDR5 timings (cycles of tCK = 1/2400 MHz), each set to ``ddr5-4800``'s value
(v2.0a has timing presets for DDR5-3200 only, and a preset's rate cannot be changed, so every
timing is given; nCCDS_WTR / nCCDL_WTR = CWL + BL/2 + tWTR_S / tWTR_L as in its 3200 presets;
nRFC2, nRFCsb and the RFM timings Ramulator derives are not used here; its DDR5 requires
the ``RFM`` group, given its default ``BRC: 2``, unused without RFM commands)."""
CONFIG = """\
Frontend:
  impl: TimedReadTrace
  clock_ratio: 1
  path: {trace}
  max_cycles: {max_cycles}

MemorySystem:
  impl: GenericDRAM
  clock_ratio: 1
  DRAM:
    impl: DDR5
    org:
      preset: DDR5_16Gb_x4
      channel: 2
      rank: 2
    timing:
{timing}
    RFM:
      BRC: 2
  Controller:
    impl: Generic
    Scheduler:
      impl: {scheduler}
    RefreshManager:
      impl: AllBank
    RowPolicy:
      impl: OpenRowPolicy
    plugins:
      - ControllerPlugin:
          impl: CommandCounter
          path: {counts}
          commands_to_count: [ACT, PRE, PREA, RD, REFab]
  AddrMapper:
    impl: RoBaRaCoCh
"""
SCHEDULERS = {"FRFCFS": "FRFCFS", "FRFCFS_RowHit": "FRFCFS_RowHit"}
"""Ramulator 2 schedulers each point is recorded with (name -> ``Scheduler: impl``):
``FRFCFS``, v2.0a's own (first ready, then oldest: no row-hit priority, so a ready PRE of an
older request closes a row that younger queued reads still hit), and ``FRFCFS_RowHit``, Ramulator
2 main's ``FRFCFS-RowHit`` (src/ramulator/controller/scheduler/impl/frfcfs_rowhit.cpp, 38c51d4)
ported to v2.0a (``RAMULATOR2_PATCH`` item 3): such a PRE waits while an older request hits the
open row. embsim's FR-FCFS (row hits first, Rixner et al.) is the latter's policy."""
RAMULATOR2_PATCH = """\
Ramulator 2 legacy/v2.0a (be93be7) with three changes (kept outside this repo; the full diff is
patch_diff):
1. src/frontend/impl/memory_trace/timed_read_trace.cpp (new, added to src/frontend/CMakeLists.txt):
   frontend TimedReadTrace. Trace lines 'CYCLE 0xADDR' (optionally ' W'). Each frontend tick
   (1:1 with the memory clock; at the tick of memory cycle t, before the controllers tick) it
   sends, in trace order, every request stamped <= t, stopping at the first one the memory
   system refuses (retried next cycle). Reads carry a callback that sums (controller clock at
   return - stamp) and (req.depart - req.arrive). The run ends when every read has returned
   (or after max_cycles > 0 cycles). It prints reads_sent, reads_done,
   read_latency_from_stamp_mean and read_latency_from_arrival_mean.
2. src/dram_controller/impl/plugin/cmd_counter.cpp, CommandCounter::setup: the counts file is
   PATH.<channel id> (upstream every channel's plugin writes the same PATH, the last wins):
       m_save_path += "." + std::to_string(m_ctrl->m_channel_id);
3. src/dram_controller/impl/scheduler/frfcfs_rowhit.cpp (new, added to
   src/dram_controller/CMakeLists.txt): scheduler FRFCFS_RowHit, Ramulator 2 main's
   FRFCFS-RowHit (38c51d4) on v2.0a's interfaces: as FRFCFS (ready first, then oldest), but a
   request whose next command is a PRE (not its final command) is skipped while the buffer
   holds a row hit to the same bank that arrived no later than it (older_only: true, the
   default, upstream's rule; false: any queued hit).
Build: cmake -DCMAKE_BUILD_TYPE=Release -DFETCHCONTENT_FULLY_DISCONNECTED=ON
  -DFETCHCONTENT_SOURCE_DIR_YAML-CPP=<yaml-cpp at yaml-cpp-0.7.0>
  -DFETCHCONTENT_SOURCE_DIR_SPDLOG=<spdlog at v1.11.0>
  -DFETCHCONTENT_SOURCE_DIR_ARGPARSE=<argparse at v2.9>  (the tags its CMakeLists names); make -j2
"""


def config_text(trace: Path, counts: Path, max_cycles: int = 0,
                scheduler: str = "FRFCFS") -> str:
    timing = "\n".join(f"      {k}: {v}" for k, v in TIMING.items())
    return CONFIG.format(trace=trace, counts=counts, max_cycles=max_cycles, timing=timing,
                         scheduler=scheduler)


def points(saturation: dict[str, float]) -> list[tuple[str, float]]:
    """(trace, period) of every swept point: ``FRACTIONS`` of each trace's saturation
    bandwidth (``saturation``: cycles per row at saturation)."""
    out: list[tuple[str, float]] = []
    for trace in TRACES:
        for fraction in FRACTIONS:
            point = (trace, round(saturation[trace] / fraction, 2))
            if point not in out:
                out.append(point)
    return out


# --- Ramulator 2 ------------------------------------------------------------------------------

def _stat(text: str, name: str) -> list[float]:
    return [float(v) for v in re.findall(rf"^\s*{name}:\s*([-0-9.eE+]+)\s*$", text, re.M)]


def run_ramulator2(binary: Path, cycles: np.ndarray, addresses: np.ndarray, workdir: Path,
                   run_for: int = 0, scheduler: str = "FRFCFS") -> dict[str, float]:
    """Run Ramulator 2 on one trace for ``run_for`` cycles (0: until every read is back)."""
    trace, counts, config = workdir / "trace.txt", workdir / "counts", workdir / "config.yaml"
    trace.write_text("".join(f"{c} 0x{a:X}\n" for c, a in zip(cycles, addresses,
                                                               strict=True)))
    config.write_text(config_text(trace, counts, run_for, scheduler))
    out = subprocess.run([str(binary), "-f", str(config)], check=True, capture_output=True,
                         text=True).stdout
    activates = 0
    for path in workdir.glob("counts.*"):
        for line in path.read_text().splitlines():
            name, value = line.split(",")
            if name.strip() == "ACT":
                activates += int(value)
        path.unlink()
    reads = int(_stat(out, "reads_done")[0])
    if not run_for and reads < cycles.size:
        raise RuntimeError(f"Ramulator 2 finished {reads} of {cycles.size} reads")
    return {
        "read_latency_mean_cycles": _stat(out, "read_latency_from_arrival_mean")[0],
        "read_latency_from_stamp_mean_cycles": _stat(out, "read_latency_from_stamp_mean")[0],
        "activates": activates, "reads": reads,
        "row_hits": int(sum(_stat(out, r"read_row_hits_\d+"))),
        "row_misses_and_conflicts": int(sum(_stat(out, r"read_row_misses_\d+"))
                                        + sum(_stat(out, r"read_row_conflicts_\d+"))),
        "cycles": int(_stat(out, "cycles")[0]),
    }


def ramulator2_patch(source: Path) -> str:
    """The diff of the Ramulator 2 checkout at ``source`` against its commit, new files included."""
    subprocess.run(["git", "-C", str(source), "add", "-N", "."], check=True)
    return subprocess.run(["git", "-C", str(source), "diff", "--", "src"], check=True,
                          capture_output=True, text=True).stdout


def record(args: argparse.Namespace) -> None:
    binary = Path(args.ramulator2)
    out: dict = {
        "ramulator2": {
            "repository": "https://github.com/CMU-SAFARI/ramulator2",
            "branch": "legacy/v2.0a", "commit": args.commit,
            "command": "ramulator2 -f CONFIG",
            "config": config_text(Path("TRACE"), Path("COUNTS"), 0, "SCHEDULER"),
            "schedulers": SCHEDULERS,
            "patch": RAMULATOR2_PATCH,
            "patch_diff": ramulator2_patch(Path(args.source)) if args.source else None,
            "note": "mean read latency = TimedReadTrace read_latency_from_arrival_mean "
                    "(req.depart - req.arrive: from entry into the controller's read buffer "
                    "to RD + nCL + nBL, as Ramulator 2's avg_read_latency_N counts it); "
                    "activates = ACT of CommandCounter summed over the 2 channels "
                    "(subchannels); saturation: every row at cycle 0, max_cycles = 12 x rows, "
                    "with the FRFCFS scheduler; both schedulers run the same periods",
            "build": "cmake -DCMAKE_BUILD_TYPE=Release; make -j2 (g++ "
                     + subprocess.run(["g++", "-dumpfullversion"], capture_output=True,
                                      text=True).stdout.strip()
                     + "); yaml-cpp-0.7.0, spdlog v1.11.0, argparse v2.9",
        },
        "embsim": {"preset": PRESET, "settings": SETTINGS},
        "trace": {"rows": args.rows, "seed": SEED, "row_bytes": ROW_BYTES,
                  "reads_per_row": READS_PER_ROW, "span_bytes": SPAN_BYTES,
                  "zipf_alpha": ZIPF_ALPHA, "zipf_rows": ZIPF_ROWS},
        "saturation": {}, "points": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for trace in TRACES:
            cycles, addresses = requests(trace, 0.0, args.rows)
            window = SATURATION_CYCLES_PER_ROW * args.rows
            stats = run_ramulator2(binary, cycles, addresses, work, window)
            per_row = window * READS_PER_ROW / stats["reads"]
            out["saturation"][trace] = round(per_row, 3)
            print(f"saturation {trace}: {per_row:.2f} cycles per row", flush=True)
        for trace, period in points(out["saturation"]):
            cycles, addresses = requests(trace, period, args.rows)
            point: dict = {"trace": trace, "period": period}
            for name, scheduler in SCHEDULERS.items():
                point[name] = run_ramulator2(binary, cycles, addresses, work, 0, scheduler)
            out["points"].append(point)
            print(point, flush=True)
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {REFERENCE}")


# --- embsim -----------------------------------------------------------------------------------

def embsim_ddr5(trace: str, period: float, fidelity: str, rows: int = ROWS,
                overrides: dict | None = None) -> dict[str, float]:
    """``compare_dramsim3.embsim_point`` on ``ddr5-4800`` set as Ramulator 2's controller."""
    return embsim_point(trace, period, fidelity, rows, PRESET, {**SETTINGS, **(overrides or {})})


def compare(fidelities: tuple[str, ...], reference: dict, rows: int | None = None,
            overrides: dict | None = None, scheduler: str = "FRFCFS") -> list[dict]:
    """One row per (point, fidelity): Ramulator 2's figures (with ``scheduler``, a key of
    ``SCHEDULERS``) and embsim's, and their ratios (embsim's latency from the controller's
    admission, as Ramulator 2 counts it)."""
    rows = rows or reference["trace"]["rows"]
    out = []
    for point in reference["points"]:
        trace, period, ref = point["trace"], point["period"], point[scheduler]
        for fidelity in fidelities:
            got = embsim_ddr5(trace, period, fidelity, rows, overrides)
            latency = ref["read_latency_mean_cycles"]
            out.append({
                "trace": trace, "period": period,
                "load": round(reference["saturation"][trace] / period, 3),
                "fidelity": fidelity, "scheduler": scheduler,
                "ramulator2_latency": round(latency, 2),
                "embsim_latency": round(got["admitted_latency_mean_cycles"], 2),
                "latency_ratio": round(got["admitted_latency_mean_cycles"] / latency, 4),
                "embsim_latency_from_stamp": round(got["read_latency_mean_cycles"], 2),
                "ramulator2_latency_from_stamp":
                    round(ref["read_latency_from_stamp_mean_cycles"], 2),
                "ramulator2_activates": ref["activates"],
                "embsim_activates": got["activates"],
                "activates_ratio": round(got["activates"] / ref["activates"], 4),
            })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true",
                        help="run Ramulator 2 and rewrite the reference file")
    parser.add_argument("--ramulator2", help="path of the patched ramulator2 binary (--record)")
    parser.add_argument("--commit", default="be93be78055d922aa1d4d33e15bcc8f2b0c61a9d",
                        help="Ramulator 2 commit built (--record)")
    parser.add_argument("--source", help="the patched Ramulator 2 checkout, whose diff is "
                        "recorded (--record)")
    parser.add_argument("--scheduler", default="FRFCFS", choices=sorted(SCHEDULERS),
                        help="which Ramulator 2 scheduler's results to compare with")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--fidelity", nargs="+", default=["detailed", "fast"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.record:
        record(args)
        return
    reference = json.loads(REFERENCE.read_text())
    table = compare(tuple(args.fidelity), reference, args.rows, scheduler=args.scheduler)
    if args.json:
        print(json.dumps(table))
        return
    print(f"{'trace':8} {'period':>7} {'load':>5} {'fidelity':9} {'Ram2':>7} {'embsim':>7} "
          f"{'ratio':>6} {'Ram2 st':>7} {'emb st':>7} {'Ram2 act':>8} {'act ratio':>9}")
    for r in table:
        print(f"{r['trace']:8} {r['period']:7.2f} {r['load']:5.2f} {r['fidelity']:9} "
              f"{r['ramulator2_latency']:7.1f} {r['embsim_latency']:7.1f} "
              f"{r['latency_ratio']:6.3f} {r['ramulator2_latency_from_stamp']:7.1f} "
              f"{r['embsim_latency_from_stamp']:7.1f} {r['ramulator2_activates']:8d} "
              f"{r['activates_ratio']:9.4f}")


if __name__ == "__main__":
    main()
