"""Upper bounds on the counts a user may give (configs, trace metadata, options).

Each is far above any real model or run, and low enough that what it admits fits 64-bit
integers and a machine's memory: a count beyond one is refused as the input is read, with
the field named, instead of failing (or running for days) in the middle of a sweep. The
table of them is in docs/configuration.md ("Limits").
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_ROWS = 2**40
"""Rows of one table (about 1.1e12)."""
MAX_DIM = 2**16
"""Elements of one row."""
MAX_TABLES = 2**16
"""Tables of one model or trace."""
MAX_BATCH_SIZE = 2**20
"""Samples (bags per table) of one batch."""
MAX_BATCHES = 10**7
"""Batches of one generated workload, trace read or ``trace gen`` run."""
MAX_BATCH_LOOKUPS = 2**28
"""Lookups of one generated batch (batch size x mean pooling, summed over tables): some
24 bytes each while it is drawn, so about 6 GiB."""
MAX_LOOKUPS = 10**10
"""Lookups of one generated workload or ``trace gen`` run (all batches)."""
MAX_POOLING = 10**5
"""Mean lookups per bag."""
MAX_CONCURRENCY = 2**16
"""Queries a closed loop keeps in flight."""
MAX_REPEATS = 10**4
"""Repeats of each sweep point."""
MAX_POINTS = 10**5
"""Points of one sweep (cases x grid x zip x repeats, before filters)."""
MAX_WAYS = 2**16
"""Ways of a set-associative cache or TLB."""
MAX_SEED = 2**63 - 1
"""Largest random seed (seeds are non-negative)."""
MAX_SIZE = 2**60
"""Bytes of any size (1024 PiB)."""
MAX_YAML_DEPTH = 64
"""Nesting levels of a YAML document."""
MAX_YAML_NODES = 10**6
"""Nodes of a YAML document once its aliases are expanded (stops 'billion laughs')."""


def count(limit: int, *, zero: bool = False) -> type[int]:
    """An int type for pydantic fields: positive (or non-negative when ``zero``), at most
    ``limit``."""
    low = Field(ge=0) if zero else Field(gt=0)
    return Annotated[int, low, Field(le=limit)]  # type: ignore[return-value]


Seed = count(MAX_SEED, zero=True)
