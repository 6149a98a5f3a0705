"""numpy's Zipf draws, value for value, from a parallel compiled kernel.

``numpy.random.Generator.zipf`` draws each value by rejection: every attempt takes two
uniform doubles ``(U01, V)`` from the bit generator, sets ``U = U01 * Umin + (1 - U01)``
with ``Umin = 2**63 ** -(a - 1)``, ``X = floor(U ** (-1 / (a - 1)))`` and accepts ``X``
when ``V * X * (T - 1) / (b - 1) <= T / b``, with ``T = (1 + 1/X) ** (a - 1)`` and
``b = 2 ** (a - 1)`` (``random_zipf`` in numpy's ``distributions.c``). Since every attempt
takes exactly two doubles, the attempts are independent of each other once the doubles are
drawn: ``draw`` draws them in bulk (``Generator.random``, the same doubles in the same
order), judges every attempt in parallel with the same floating-point operations, keeps the
accepted values in order and moves the bit generator to where ``zipf`` would have left it.
The default trace sampler draws three Zipf values per lookup, one at a time in numpy: that
was where its time went (docs/benchmarks.md).

The result equals ``rng.zipf(a, n)`` bit for bit and leaves ``rng`` in the same state (the
tests compare both on millions of draws); where that cannot be guaranteed it calls
``rng.zipf`` itself: another bit generator than PCG64; ``a >= 1025``, where numpy returns 1
without drawing; numpy before 2.1, whose loop had no ``Umin``; numba built with Intel's SVML,
whose vectorised ``pow`` may differ from the C library's in the last bit; a processor other
than x86-64, where numpy's C compiler may fuse ``U``'s multiply and add (x86-64 builds target
a baseline without FMA). A check on fixed draws at first use guards against a numpy that
changes the algorithm again.
"""

from __future__ import annotations

import functools
import platform

import numba
import numpy as np
from numba import njit, prange
from numpy.lib import NumpyVersion

INT64_MAX_AS_DOUBLE = 9.223372036854775807e18
"""``(double)INT64_MAX`` (2**63), numpy's bound on a Zipf value."""
LARGEST_DRAWN_ALPHA = 1025.0
"""From this exponent on numpy returns 1 without drawing: left to numpy."""
SLACK = 1.05
"""Attempts drawn per value still missing, over the acceptance rate seen so far."""


@njit(parallel=True, cache=True)
def _attempts(uniforms: np.ndarray, am1: float, b: float, umin: float) -> np.ndarray:
    """The value each attempt (a pair of doubles) yields, 0 where it is rejected."""
    count = uniforms.size // 2
    out = np.empty(count, dtype=np.int64)
    exponent = -1.0 / am1
    for i in prange(count):
        u01 = uniforms[2 * i]
        v = uniforms[2 * i + 1]
        x = np.floor((u01 * umin + (1.0 - u01)) ** exponent)
        out[i] = 0
        if x <= INT64_MAX_AS_DOUBLE and x >= 1.0:
            t = (1.0 + 1.0 / x) ** am1
            if v * x * (t - 1.0) / (b - 1.0) <= t / b:
                out[i] = np.int64(x)
    return out


def draw(rng: np.random.Generator, a: float, n: int) -> np.ndarray:
    """``rng.zipf(a, n)`` as int64, leaving ``rng`` where that call would (see the module
    doc)."""
    a = float(a)
    if (not isinstance(rng.bit_generator, np.random.PCG64)
            or not 1.0 < a < LARGEST_DRAWN_ALPHA or not _reproduces_numpy()):
        return rng.zipf(a, n).astype(np.int64, copy=False)
    return _draw(rng, a, n)


@functools.cache
def _reproduces_numpy() -> bool:
    """Whether the kernel may stand in for this numpy's ``zipf`` here (module doc): the
    platform and versions it is exact for, and equal values on fixed draws."""
    if (numba.config.USING_SVML or platform.machine().lower() not in ("x86_64", "amd64")
            or NumpyVersion(np.__version__) < "2.1.0"):
        return False
    return all(np.array_equal(_draw(np.random.default_rng(7), a, 4096),
                              np.random.default_rng(7).zipf(a, 4096)) for a in (1.05, 1.3, 3.0))


def _draw(rng: np.random.Generator, a: float, n: int) -> np.ndarray:
    """The kernel's ``rng.zipf(a, n)`` for a PCG64 ``rng`` and ``1 < a < 1025``."""
    generator = rng.bit_generator
    am1 = a - 1.0
    b, umin = 2.0**am1, INT64_MAX_AS_DOUBLE ** (-am1)
    saved = generator.state
    pieces, found, used, rate = [], 0, 0, 1.0
    while found < n:
        tried = int((n - found) / rate * SLACK) + 64
        values = _attempts(rng.random(2 * tried), am1, b, umin)
        accepted = np.flatnonzero(values)
        take = min(accepted.size, n - found)
        pieces.append(values[accepted[:take]])
        used += int(accepted[take - 1]) + 1 if take == n - found else tried
        found += take
        rate = max(accepted.size / tried, 1e-3)
    _move_to(generator, saved, 2 * used)
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)


def _move_to(generator: np.random.PCG64, saved: dict, doubles: int) -> None:
    """Put ``generator`` ``doubles`` 64-bit outputs past ``saved``, keeping ``saved``'s
    buffered 32-bit half (doubles never touch it, ``advance`` clears it)."""
    generator.state = saved
    generator.advance(doubles)
    state = generator.state
    state["has_uint32"], state["uinteger"] = saved["has_uint32"], saved["uinteger"]
    generator.state = state
