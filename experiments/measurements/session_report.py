"""The report of a CPU grounding session (``cpu_session.sh``): each set's figures, and the
test set's bias less the design set's.

Each set's mean signed error carries the model's bias and the machine's: a VM whose speed
drifts between the minutes of calibration and of measurement moves both sets together (by
11.6 points between two sessions of one Xeon VM 20 minutes apart, docs/grounding.md). Their
difference cancels that shared part, so it says how far the model is off on shapes nobody
tuned on, relative to the grid it was shaped on, on this machine.

    python3 experiments/measurements/session_report.py PREFIX

reads PREFIX.validation.json and PREFIX-test.validation.json (``embsim validate --json``) and
prints the report; it needs only the standard library.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SETS = (("design", ""), ("test", "-test"))


def report(prefix: str) -> str:
    """The session's report: one line per set, then the test bias less the design bias."""
    summaries = {name: json.loads(Path(f"{prefix}{suffix}.validation.json").read_text())
                 for name, suffix in SETS}
    lines = [f"{'set':<7}{'points':>7}{'MAPE %':>8}{'mean %':>8}{'max %':>8}{'rank':>7}  "
             "machine warning"]
    for name, s in summaries.items():
        lines.append(f"{name:<7}{s['points']:>7}{s['mape']:>8.1f}{s['mean_error']:>+8.1f}"
                     f"{s['max_error']:>8.1f}{s['rank_correlation']:>7.3f}  "
                     f"{'; '.join(s['machine_mismatch']) or 'none'}")
    gap = summaries["test"]["mean_error"] - summaries["design"]["mean_error"]
    lines.append(f"test bias less design bias: {gap:+.1f} points (the model's own on the test "
                 "set; each set's mean also carries the machine's drift between calibration "
                 "and measurement)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(report(sys.argv[1]))
