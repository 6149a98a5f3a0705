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
    recorded = RECORDED.loc[name]
    produced = recorded.dropna().index      # columns of other cases are null in this row
    missing = sorted(set(produced) - set(got))
    assert not missing, f"columns no longer produced: {missing}"
    for column, value in recorded.items():
        new = got.get(column)
        if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
            assert new is None or (isinstance(new, float) and np.isnan(new)), (
                f"{name}: {column} was null, now {new!r}")
        else:
            assert new == value, f"{name}: {column} was {value!r}, now {new!r}"
