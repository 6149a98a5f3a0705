"""embsim's DRAM models against DRAMsim3 on embedding-style traces, from light load to saturation.

Traces (seeded, so the committed references can be reproduced): lookups of 256 B embedding rows,
each four 64 B reads stamped with the same cycle, one row every ``period`` controller cycles
(16 cycles is the DDR4-3200 data bus's peak for a 256 B row):

- ``uniform``: rows scattered uniformly over 4 GiB (256 B aligned);
- ``zipf``: rows drawn with Zipf skew (alpha 1.05) from a table of 1 M rows, each row placed at a
  scattered 256 B slot of 4 GiB (a fixed odd multiplier permutes the slots);
- ``stream``: consecutive 256 B rows (32 rows to a DRAM row of 8 KiB, so a stream stays in one
  bank until the row ends, and ``tCCD_L`` bounds it at half the bus's peak).

``--record`` builds each trace, runs DRAMsim3 on it (``dramsim3main CONFIG -c CYCLES -t TRACE -o
DIR``) and writes the mean read latency (``average_read_latency``), activates (``num_act_cmds``)
and reads done of each point, with DRAMsim3's commit, its config file and the command, to
``tests/dramsim3_reference/ddr4_3200.json``. Each trace's saturation bandwidth is the rate
DRAMsim3 serves it at when every row arrives at cycle 0; the swept loads are fractions of it.

Without ``--record`` it compares embsim (``fast`` and ``detailed``) against that file and
prints a table; ``--json`` prints the rows as JSON.

    python benchmarks/compare_dramsim3.py [--fidelity detailed fast] [--json]
    python benchmarks/compare_dramsim3.py --record --dramsim3 /path/to/dramsim3main \\
        --config /path/to/DRAMsim3/configs/DDR4_8Gb_x8_3200.ini

Latencies are compared as DRAMsim3 counts them: from when the controller takes the request into
its queue (DRAMsim3's trace reader waits while the 32-entry transaction queue is full, and that
wait is not counted). ``embsim memtrace`` counts from the trace's cycle stamp, the ``stamp``
column; the two differ only where the queue was full.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwmodels.device import make_device  # noqa: E402
from hwmodels.presets import resolve  # noqa: E402

REFERENCE = ROOT / "tests" / "dramsim3_reference" / "ddr4_3200.json"
ROW_BYTES = 256
READS_PER_ROW = 4
SPAN_BYTES = 4 << 30
ZIPF_ALPHA = 1.05
ZIPF_ROWS = 1 << 20
SLOT_MULTIPLIER = 0x9E3779B1     # odd: a bijection of the 2^24 slots of 4 GiB
SEED = 16
ROWS = 12000
TRACES = ("uniform", "zipf", "stream")
PEAK_CYCLES_PER_ROW = 16
SETTINGS = {"mapping": "rochrababgco", "xor_bank_hash": False, "merge_reads": True}
"""What embsim's preset changes to match DRAMsim3's config and controller: its address mapping,
no bank hash, and reads of an address already pending merged into one (DRAMsim3's
``Controller::AddTransaction``). The rest of ``ddr4-3200`` equals ``DDR4_8Gb_x8_3200.ini``:
1 channel, 2 ranks, 22-22-22, 32-entry transaction queue, 8 per bank command queues."""
ISSUE_PERIODS = (40, 32, 24, 20, 18)
"""The issue's loads (cycles per row) on the uniform trace."""
FRACTIONS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
"""Loads as fractions of each trace's saturation bandwidth (measured by DRAMsim3)."""
SATURATION_CYCLES_PER_ROW = 12
"""Saturation: every row arrives at cycle 0 and DRAMsim3 runs ``12 x rows`` cycles (less than
it needs for them all); reads done in that window give its rows per cycle."""


def row_addresses(trace: str, rows: int, seed: int = SEED) -> np.ndarray:
    """Byte address of each looked-up 256 B row."""
    rng = np.random.default_rng([seed, TRACES.index(trace)])
    slots = SPAN_BYTES // ROW_BYTES
    if trace == "uniform":
        slot = rng.integers(0, slots, rows)
    elif trace == "zipf":
        weights = np.arange(1, ZIPF_ROWS + 1, dtype=np.float64) ** -ZIPF_ALPHA
        cdf = np.cumsum(weights)
        rank = np.searchsorted(cdf, rng.random(rows) * cdf[-1], side="right")
        slot = (rank.astype(np.int64) * SLOT_MULTIPLIER) % slots
    elif trace == "stream":
        slot = int(rng.integers(0, slots // 2)) + np.arange(rows)
    else:
        raise ValueError(f"unknown trace {trace!r}; expected one of {TRACES}")
    return np.asarray(slot, dtype=np.int64) * ROW_BYTES


def requests(trace: str, period: float, rows: int = ROWS, seed: int = SEED
             ) -> tuple[np.ndarray, np.ndarray]:
    """(arrival cycle, byte address) of each 64 B read: one row every ``period`` cycles (0:
    all at cycle 0), its four reads stamped with the row's cycle."""
    base = row_addresses(trace, rows, seed)
    cycles = np.floor(np.arange(rows) * period).astype(np.int64)
    offsets = np.arange(READS_PER_ROW, dtype=np.int64) * (ROW_BYTES // READS_PER_ROW)
    return np.repeat(cycles, READS_PER_ROW), (base[:, None] + offsets[None, :]).ravel()


def points(saturation: dict[str, float]) -> list[tuple[str, float]]:
    """(trace, period) of every swept point: the issue's loads on ``uniform``, then fractions
    of each trace's saturation bandwidth (``saturation``: cycles per row at saturation)."""
    out = [("uniform", float(p)) for p in ISSUE_PERIODS]
    for trace in TRACES:
        for fraction in FRACTIONS:
            period = round(saturation[trace] / fraction, 2)
            if (trace, period) not in out:
                out.append((trace, period))
    return out


# --- DRAMsim3 -------------------------------------------------------------------------------

def run_dramsim3(binary: Path, config: Path, cycles: np.ndarray, addresses: np.ndarray,
                 workdir: Path, run_for: int | None = None) -> dict[str, float]:
    """Run DRAMsim3's trace CPU for ``run_for`` cycles (default: until every read is back);
    its stats of channel 0."""
    trace = workdir / "trace.txt"
    trace.write_text("".join(f"0x{a:X} READ {c}\n" for a, c in zip(addresses, cycles,
                                                                     strict=True)))
    until_done = run_for is None
    run_for = run_for or int(cycles[-1]) + 64 * cycles.size + 10000
    subprocess.run([str(binary), str(config), "-c", str(run_for), "-t", str(trace), "-o",
                    str(workdir)], check=True, capture_output=True)
    stats = json.loads((workdir / "dramsim3.json").read_text())["0"]
    # (DRAMsim3's trace reader adds the last line twice at end of file: one read more)
    if until_done and stats["num_reads_done"] < cycles.size:
        raise RuntimeError(f"DRAMsim3 finished {stats['num_reads_done']} of {cycles.size} "
                           f"reads in {run_for} cycles")
    return stats


def record(args: argparse.Namespace) -> None:
    binary, config = Path(args.dramsim3), Path(args.config)
    out: dict = {
        "dramsim3": {
            "commit": args.commit, "config": config.name,
            "command": f"dramsim3main {config.name} -c CYCLES -t TRACE -o DIR",
            "note": "CYCLES = last arrival + 64 x reads + 10000 (every read returns); "
                    "mean read latency = average_read_latency, activates = num_act_cmds",
            "build": "cmake -DCMAKE_BUILD_TYPE=Release; make dramsim3main (g++ "
                     + subprocess.run(["g++", "-dumpfullversion"], capture_output=True,
                                      text=True).stdout.strip() + ")",
        },
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
            stats = run_dramsim3(binary, config, cycles, addresses, work, window)
            per_row = window * READS_PER_ROW / stats["num_reads_done"]
            out["saturation"][trace] = round(per_row, 3)
            print(f"saturation {trace}: {per_row:.2f} cycles per row", flush=True)
        for trace, period in points(out["saturation"]):
            cycles, addresses = requests(trace, period, args.rows)
            stats = run_dramsim3(binary, config, cycles, addresses, work)
            out["points"].append({
                "trace": trace, "period": period,
                "read_latency_mean_cycles": stats["average_read_latency"],
                "activates": stats["num_act_cmds"], "reads": stats["num_read_cmds"],
                "row_hits": stats["num_read_row_hits"]})
            print(out["points"][-1], flush=True)
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {REFERENCE}")


# --- embsim ---------------------------------------------------------------------------------

def embsim_point(trace: str, period: float, fidelity: str, rows: int = ROWS,
                 preset: str = "ddr4-3200", overrides: dict | None = None) -> dict[str, float]:
    """embsim's mean read latency (cycles) and activates on one swept point: latency from the
    trace's stamp (``read_latency_mean_cycles``, as ``embsim memtrace`` reports it) and, for
    ``detailed``, from when the controller took the request into its queue
    (``admitted_latency_mean_cycles``, as DRAMsim3 counts it; ``fast`` does not record it:
    its stamp latency again)."""
    spec, _ = resolve("dram", preset, {**SETTINGS, **(overrides or {})})
    device = make_device("dram", spec, fidelity)
    cycles, addresses = requests(trace, period, rows)
    done, latency = device.service_in_cycles(cycles, addresses, np.zeros(cycles.size, bool))
    admitted = getattr(device, "admitted", cycles)
    return {"read_latency_mean_cycles": float(latency.mean()),
            "admitted_latency_mean_cycles": float((done - admitted).mean()),
            "activates": int(device.stats()["activates"])}


def compare(fidelities: tuple[str, ...], reference: dict, rows: int | None = None
            ) -> list[dict]:
    """One row per (point, fidelity): DRAMsim3's and embsim's figures and their ratios."""
    rows = rows or reference["trace"]["rows"]
    out = []
    for point in reference["points"]:
        trace, period = point["trace"], point["period"]
        load = reference["saturation"][trace] / period
        for fidelity in fidelities:
            got = embsim_point(trace, period, fidelity, rows)
            reference_latency = point["read_latency_mean_cycles"]
            out.append({
                "trace": trace, "period": period, "load": round(load, 3),
                "fidelity": fidelity,
                "dramsim3_latency": reference_latency,
                "embsim_latency": round(got["admitted_latency_mean_cycles"], 2),
                "latency_ratio": round(got["admitted_latency_mean_cycles"] / reference_latency,
                                       4),
                "embsim_latency_from_stamp": round(got["read_latency_mean_cycles"], 2),
                "dramsim3_activates": point["activates"], "embsim_activates": got["activates"],
                "activates_ratio": round(got["activates"] / point["activates"], 4),
            })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true",
                        help="run DRAMsim3 and rewrite the reference file")
    parser.add_argument("--dramsim3", help="path of the dramsim3main binary (--record)")
    parser.add_argument("--config", help="DRAMsim3 .ini file (--record)")
    parser.add_argument("--commit", default="29817593b3389f1337235d63cac515024ab8fd6e",
                        help="DRAMsim3 commit built (--record)")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--fidelity", nargs="+", default=["detailed", "fast"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.record:
        record(args)
        return
    reference = json.loads(REFERENCE.read_text())
    table = compare(tuple(args.fidelity), reference, args.rows)
    if args.json:
        print(json.dumps(table))
        return
    print(f"{'trace':8} {'period':>7} {'load':>5} {'fidelity':9} {'DRAMsim3':>9} "
          f"{'embsim':>8} {'ratio':>6} {'stamp':>8} {'act ratio':>9}")
    for r in table:
        print(f"{r['trace']:8} {r['period']:7.2f} {r['load']:5.2f} {r['fidelity']:9} "
              f"{r['dramsim3_latency']:9.1f} {r['embsim_latency']:8.1f} "
              f"{r['latency_ratio']:6.3f} {r['embsim_latency_from_stamp']:8.1f} "
              f"{r['activates_ratio']:9.4f}")


if __name__ == "__main__":
    main()
