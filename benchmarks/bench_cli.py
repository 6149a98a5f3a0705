"""Start-up time of the ``embsim`` command against bare Python, whole process each.

Times ``embsim --help``, ``embsim presets list`` and ``embsim memtrace ddr4-3200`` on a
10-request DRAMsim3-format trace (detailed fidelity), and ``python -c pass``, each as a fresh
process, best of ``--repeats``, all in the same run. Prints each time, each command's time
above bare Python, then one JSON line. Target: ``--help`` at most 0.5 s above bare Python.

    python benchmarks/bench_cli.py [--repeats 5]
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

ROOT = Path(__file__).resolve().parent.parent
EMBSIM = [sys.executable, "-c", "from simulator.cli import main; main()"]
TRACE = "".join(f"0x{i * 4096:x} READ {i * 10}\n" for i in range(10))


def best_wall_s(command: list[str], repeats: int) -> float:
    """Shortest wall time of ``command`` run as a fresh process ``repeats`` times."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "ten.trace"
        trace.write_text(TRACE)
        commands = {
            "python": [sys.executable, "-c", "pass"],
            "help": [*EMBSIM, "--help"],
            "presets_list": [*EMBSIM, "presets", "list"],
            "memtrace_10": [*EMBSIM, "memtrace", "ddr4-3200", str(trace), "--format",
                            "dramsim3"],
        }
        subprocess.run(commands["memtrace_10"], check=True, capture_output=True, cwd=ROOT)
        seconds = {name: best_wall_s(command, args.repeats) for name, command in
                   commands.items()}
    base = seconds["python"]
    figures = {"benchmark": "bench_cli", "repeats": args.repeats,
               **{f"{name}_s": round(value, 3) for name, value in seconds.items()},
               **{f"{name}_above_python_s": round(value - base, 3)
                  for name, value in seconds.items() if name != "python"},
               "python": platform.python_version(), "machine": platform.machine()}
    for name, value in seconds.items():
        above = "" if name == "python" else f"  ({value - base:+.3f} s above bare Python)"
        print(f"{name}: {value:.3f} s{above}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
