"""Integer division without the 64-bit divide instruction, for compiled kernels' hot loops.

A 64-bit integer division costs tens of cycles; a kernel that divides per request by the
same divisor does better with a shift (a power-of-two divisor) or a floating-point product
with the divisor's reciprocal, corrected by one step.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def log2_if_power_of_two(n: int) -> int:
    """``log2(n)`` when ``n`` is a power of two, else -1: a shift then replaces a division."""
    if n <= 0 or n & (n - 1):
        return -1
    shift = 0
    while (1 << shift) < n:
        shift += 1
    return shift


@njit(cache=True, inline="always")
def quotient(a, b, inverse):
    """``a // b`` for ``0 <= a < 2**50`` from a floating-point product (``inverse`` = 1 / b),
    corrected by one step: far cheaper than a 64-bit integer division."""
    q = np.int64(a * inverse)
    if q * b > a:
        q -= 1
    elif (q + 1) * b <= a:
        q += 1
    return q
