"""Table sizes for importers whose files do not store them: given by the user, or inferred."""

from __future__ import annotations

import numpy as np

from embsim.errors import InputError


def resolve_rows(rows: list[int] | int | None, observed: np.ndarray,
                 source: str) -> list[int]:
    """Rows per table: ``observed`` (largest row id + 1 per table, 0 if unused) when ``rows``
    is None (at least 1 row), else ``rows`` (one for all tables or one per table), checked to
    hold every observed row.
    """
    if rows is None:
        return np.maximum(observed, 1).astype(int).tolist()
    given = [int(rows)] * observed.size if isinstance(rows, (int, np.integer)) else \
        [int(r) for r in rows]
    if len(given) != observed.size:
        raise InputError(f"expected {observed.size} row counts (one per table), got "
                         f"{len(given)}", source=source, field="rows")
    short = np.flatnonzero(np.asarray(given) < observed)
    if short.size:
        t = int(short[0])
        raise InputError(f"table {t}: rows {given[t]} is smaller than its largest row id + 1 "
                         f"({int(observed[t])})", source=source, field="rows")
    return given
