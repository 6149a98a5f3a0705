"""embsim's DDR5 model (``ddr5-4800`` set as Ramulator 2's controller) against Ramulator 2's DDR5
(legacy/v2.0a be93be7, built from source with a cycle-stamped trace frontend; DDR5_16Gb_x4, 2
subchannels x 2 ranks, DDR5-4800B timings), on the committed results of
benchmarks/compare_ramulator2.py (tests/dramsim3_reference/ddr5_4800_ramulator2.json): uniform,
Zipf and streaming embedding traces from 10 % to 95 % of each trace's saturation bandwidth, each
recorded with two Ramulator 2 schedulers. The bounds are what the models achieve up to 90 % load;
see docs/devices.md, "Agreement with Ramulator 2 (DDR5)".

Where the issue's target (mean read latency within 10 %, activates within 2 %) holds:

- ``detailed`` against ``FRFCFS_RowHit`` (Ramulator 2 main's row-hit-protecting FR-FCFS, ported
  to v2.0a; embsim's own policy): latency 0.95 to 1.01, activates within 1.4 %, every point.
- ``detailed`` against v2.0a's ``FRFCFS``: latency within 5 %.

Known gaps (asserted at what holds today, so that a regression fails):

- activates against v2.0a's ``FRFCFS``: 2.1 % (50 % load) to 10 % (90 %) fewer on uniform and
  Zipf rows. v2.0a's FRFCFS is first-ready-then-oldest with no row-hit priority: a ready PRE of
  an older request closes a row that younger queued reads (the other half of a 256 B row) still
  hit, and they activate it again. embsim's FR-FCFS serves the hits first; with Ramulator 2's own
  row-hit-protecting scheduler the counts agree (above). A scheduler policy, not a timing error.
- ``fast``: 0.90 to 1.03 of the latency on every trace, activates within 2.1 %. (Streams were
  0.59 to 0.92 until ``fast`` let a row hit whose column command fell after its bank's
  refresh was due issue as a hit, the refresh skipped; it now waits and activates again.)
- ``detailed``'s remaining 3 to 5 % below Ramulator 2 at 30 to 90 % load is refresh: without
  refresh (both sides) it is 1 cycle (1 to 2 %), Ramulator 2's request taking a cycle to reach
  its scheduler. Ramulator 2's AllBank refresh refreshes both ranks at the same cycle and its
  controller schedules nothing else while the refresh waits for its precharges; embsim staggers
  the ranks by tREFI / 2, as DRAMsim3 does (JESD79-5 allows either).
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_ramulator2 import REFERENCE, embsim_ddr5  # noqa: E402

DATA = json.loads(REFERENCE.read_text())
MAX_LOAD = 0.91
"""Points up to 90 % of the saturation bandwidth (the swept fractions are rounded periods)."""
LIGHT_LOAD = 0.31
"""Up to here (30 % load) ``detailed``'s activates are within 2 % of v2.0a's FRFCFS too."""


@cache
def _embsim(trace: str, period: float, fidelity: str) -> dict[str, float]:
    return embsim_ddr5(trace, period, fidelity, DATA["trace"]["rows"])


def _points(max_load: float = MAX_LOAD) -> list:
    out = []
    for point in DATA["points"]:
        load = DATA["saturation"][point["trace"]] / point["period"]
        if load <= max_load:
            out.append(pytest.param(point, load, id=f"{point['trace']}-{point['period']}"))
    return out


def _ratios(point: dict, scheduler: str, fidelity: str) -> tuple[float, float]:
    got, ref = _embsim(point["trace"], point["period"], fidelity), point[scheduler]
    latency = got["admitted_latency_mean_cycles"] / ref["read_latency_mean_cycles"]
    return latency, got["activates"] / ref["activates"]


def test_the_reference_names_its_source():
    source = DATA["ramulator2"]
    assert source["commit"].startswith("be93be7") and source["branch"] == "legacy/v2.0a"
    assert "DDR5_16Gb_x4" in source["config"] and "RoBaRaCoCh" in source["config"]
    assert "TimedReadTrace" in source["patch_diff"] and "FRFCFS_RowHit" in source["patch_diff"]
    assert DATA["embsim"]["preset"] == "ddr5-4800"
    assert {p["trace"] for p in DATA["points"]} == {"uniform", "zipf", "stream"}
    assert all(p[s]["reads"] == 4 * DATA["trace"]["rows"] for p in DATA["points"]
               for s in source["schedulers"])


@pytest.mark.parametrize(("point", "load"), _points())
def test_detailed_agrees_with_ramulator2_row_hit_scheduler(point, load):
    latency, activates = _ratios(point, "FRFCFS_RowHit", "detailed")
    assert 0.94 <= latency <= 1.03, f"mean read latency {latency:.3f} of Ramulator 2's"
    assert abs(activates - 1) <= 0.02, f"activates {activates:.4f} of Ramulator 2's"


@pytest.mark.parametrize(("point", "load"), _points())
def test_detailed_against_ramulator2_frfcfs(point, load):
    """Latency within the target; activates a known gap above 30 % load (see the module)."""
    latency, activates = _ratios(point, "FRFCFS", "detailed")
    assert 0.94 <= latency <= 1.03, f"mean read latency {latency:.3f} of Ramulator 2's"
    low = 0.98 if load <= LIGHT_LOAD else 0.89
    assert low <= activates <= 1.01, f"activates {activates:.4f} of Ramulator 2's"


@pytest.mark.parametrize(("point", "load"), _points())
def test_fast_stays_within_its_recorded_gap_to_ramulator2(point, load):
    latency, activates = _ratios(point, "FRFCFS_RowHit", "fast")
    assert 0.85 <= latency <= 1.05, f"mean read latency {latency:.3f} of Ramulator 2's"
    assert abs(activates - 1) <= 0.025, f"activates {activates:.4f} of Ramulator 2's"
