"""The engine's numbers do not move when its structure does: every golden case (tests/golden)
gives, bit for bit, the metric columns recorded before compute units and the stage pipeline
existed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))

from cases import CASES  # noqa: E402
from run_case import run_case  # noqa: E402

RECORDED = pd.read_parquet(GOLDEN / "metrics_before_units.parquet").set_index("case")


def test_every_case_is_recorded():
    assert sorted(RECORDED.index) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_metrics_equal_the_recorded_ones(name):
    got = run_case(name)
    recorded = RECORDED.loc[name].dropna()
    missing = sorted(set(recorded.index) - set(got))
    assert not missing, f"columns no longer produced: {missing}"
    for column, value in recorded.items():
        new = got[column]
        if isinstance(value, (float, np.floating)) and np.isnan(value):
            assert new is None or np.isnan(new), column
        else:
            assert new == value, f"{name}: {column} was {value!r}, now {new!r}"
