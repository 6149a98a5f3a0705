"""``embsim memtrace``: replay a raw memory-request trace through one memory device.

SYSTEM is a device preset name (kind dram, scm or ssd) or a YAML file describing a device,
optionally with caches in front of it (see ``simulator.core.replay`` for the file's form).
``--set key=value`` then overrides any field of the device's spec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from embsim.assignments import parse_assignments
from hwmodels.device import Device, make_device
from simulator.core.replay import DeviceSystem, Replay, load_device_system
from traces.memtrace import MEMTRACE_FORMATS, read_memtrace, sniff_format


@click.command("memtrace")
@click.argument("system")
@click.argument("trace")
@click.option("--format", "fmt", default=None,
              help=f"Trace format: {', '.join(MEMTRACE_FORMATS.names())} [default: judged "
                   "from the first line (LD/ST: ramulator), else dramsim3].")
@click.option("--fidelity", default="detailed", show_default=True,
              help="Device model level: analytic, fast or detailed. Detailed is the default "
                   "here: replaying a raw memory trace is what the command-level model is for.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a field of the device spec (repeatable), e.g. --set ranks=2.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: requests, reads, writes, read_latency_mean_cycles, "
                   "read_latency_p99_cycles, read_latency_mean_ns, read_latency_p99_ns, "
                   "bandwidth_gbps, row_hits, row_misses, row_conflicts, activates, "
                   "precharges, refreshes (where the device counts them), energy_j and its "
                   "parts, sim_cycles; with caches, levels: each level's statistics.")
def memtrace(system: str, trace: str, fmt: str | None, fidelity: str, sets: tuple[str, ...],
             as_json: bool) -> None:
    """Replay the memory-request TRACE through the device SYSTEM (a preset or a YAML file).

    Latencies are in the device's controller cycles (the unit of the trace's cycle stamps) and
    in ns, from arrival at the controller, as DRAMsim3 and Ramulator count them: a DRAM
    preset's frontend_latency (the requester's path) is not included. The p99 is the
    nearest-rank percentile of whole cycles. sim_cycles runs from cycle 0
    to the last completion; bandwidth is the bytes moved over that time.
    """
    device_system = load_device_system(system, parse_assignments(sets))
    device = make_device(device_system.kind, device_system.spec, fidelity, field="--fidelity")
    name = sniff_format(trace) if fmt is None and Path(trace).is_file() else fmt
    replay = Replay(device, device_system.caches)
    for chunk in read_memtrace(trace, name):
        replay.feed(chunk)
    result = replay.summary()
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(_render(device_system, fidelity, trace, name or "dramsim3", device, result))


def _render(system: DeviceSystem, fidelity: str, trace: str, fmt: str, device: Device,
            result: dict[str, Any]) -> str:
    def latency(key: str) -> str:
        cycles, ns = result[f"{key}_cycles"], result[f"{key}_ns"]
        return "-" if cycles is None else f"{cycles:.1f} cycles  {ns:.2f} ns"

    rows = [
        ("system", f"{system.name} ({system.kind}, {fidelity}, cycle "
                   f"{device.cycle_s * 1e9:.4g} ns)"),
        ("trace", f"{trace} ({fmt})"),
        ("requests", f"{result['requests']} ({result['reads']} reads, "
                     f"{result['writes']} writes)"),
        ("read latency mean", latency("read_latency_mean")),
        ("read latency p99", latency("read_latency_p99")),
        ("bandwidth", f"{result['bandwidth_gbps']:.3f} GB/s over {result['sim_cycles']} "
                      "cycles"),
    ]
    if "row_hits" in result:
        rows.append(("row hits", f"{result['row_hits']} (misses {result['row_misses']}, "
                                 f"conflicts {result['row_conflicts']})"))
    rows += [(k, str(result[k])) for k in ("activates", "precharges", "refreshes") if k in result]
    parts = [f"{k[len('energy_'):-2]} {v:.4g}" for k, v in result.items()
             if k.startswith("energy_") and k != "energy_j"]
    rows.append(("energy", f"{result['energy_j']:.4g} J" + (f" ({', '.join(parts)})"
                                                            if parts else "")))
    for name, level in result.get("levels", {}).items():
        rows.append((f"cache {name}", f"hit rate {level['hit_rate']:.4f} ({level['hits']} hits, "
                                      f"{level['misses']} misses, {level['evictions']} "
                                      f"evictions, {level['writebacks']} write-backs)"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
