"""How much host memory this machine can give a point: the limit the memory estimate is held
to before a sweep runs (``embsim run --allow-large-memory`` lifts it).

The limit is ``MEMORY_FRACTION`` of the memory available now (``MemAvailable`` in
``/proc/meminfo``: free memory plus what the kernel can reclaim), so that a point that would
push the machine into swap or the OOM killer is refused instead of started.
"""

from __future__ import annotations

import os
from pathlib import Path

from embsim.errors import InputError
from embsim.units import format_size

MEMORY_FRACTION = 0.8
"""Share of the available memory one point may be estimated to need."""

MEMINFO = Path("/proc/meminfo")


def available_memory() -> int | None:
    """Bytes of memory available to new allocations now (None where it cannot be told)."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit() -> int | None:
    """The most host memory one point may be estimated to need (None: no limit known)."""
    available = available_memory()
    return None if available is None else int(available * MEMORY_FRACTION)


def refuse_above(needed: int, limit: int, what: str, *, source: str, field: str) -> None:
    """``InputError`` naming ``field`` when ``needed`` bytes (mostly for ``what``) are above
    ``limit``, saying how to run it anyway."""
    if needed <= limit:
        return
    raise InputError(
        f"{what} needs an estimated {format_size(needed)} of host memory; this machine's "
        f"limit is {format_size(limit)} ({MEMORY_FRACTION:.0%} of the memory available now): "
        "make it smaller, or pass --allow-large-memory to run it anyway", source=source,
        field=field)
