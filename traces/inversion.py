"""The ``inversion`` row sampler: bounded Zipf by rejection-inversion, scattered by a keyed
bijection.

For a table of R rows, rank k in 1..R is drawn with probability proportional to k^-alpha
(alpha > 0; no folding, no rows beyond R) by the rejection-inversion method of Hörmann and
Derflinger (1996, "Rejection-inversion to generate variates from monotone discrete
distributions", ACM TOMACS 6(3)). With h(x) = x^-alpha and H its antiderivative

    H(x) = (x^(1-alpha) - 1) / (1 - alpha)        (log x when alpha = 1),

rank k owns the interval [H(k - 1/2), H(k + 1/2)] of the H axis, whose length is at least
h(k) because h is convex; rank 1 owns [H(3/2) - 1, H(3/2)], exactly h(1) long. A uniform u
over [H(3/2) - 1, H(R + 1/2)] is inverted, x = H^-1(u), rounded to k, and accepted when u
falls in the last h(k) of k's interval (u >= H(k + 1/2) - h(k)), so that every rank is
accepted with probability proportional to h(k). Most draws are accepted without evaluating
H: a draw with k - x <= 2 - H^-1(H(5/2) - h(2)) always lies in the accepted part (the part
left of k is narrowest at k = 2). The hat exceeds the pmf's mass by under 2% (alpha up to 8,
any R), so a rank takes about 1.01 uniforms.

Each bag draws from its own xoshiro256** stream, seeded (through splitmix64) from a 64-bit
batch key and the bag's number, so bags can be drawn in parallel and the result does not
depend on the thread count. A rank already in the bag is redrawn (at most ``max_draws``
ranks per bag); rank k (0-based: k - 1) is then mapped to its row through a keyed bijection
of [0, R): three rounds of multiply-add and xor-shift modulo 2^n, 2^n the smallest power of
two >= R, repeated while the value is >= R (cycle walking; under two rounds expected).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U5 = np.uint64(5)
_U9 = np.uint64(9)
_SH7, _SH11, _SH17, _SH27, _SH30, _SH31, _SH45, _SH57, _SH64 = (
    np.uint64(7), np.uint64(11), np.uint64(17), np.uint64(27), np.uint64(30), np.uint64(31),
    np.uint64(45), np.uint64(57), np.uint64(64))
_TO_UNIT = 2.0 ** -53
SCATTER_KEYS = 6
"""Per table: a multiplier and an addend for each of the scatter's three rounds."""
LINEAR_CHECK = 16
"""Bags up to this many lookups look for a repeated rank by scanning the bag; larger bags use
a small open-addressing hash set."""


@njit(inline="always")
def _splitmix(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """splitmix64: (next state, output)."""
    state = state + GOLDEN
    z = state
    z = (z ^ (z >> _SH30)) * _MIX1
    z = (z ^ (z >> _SH27)) * _MIX2
    return state, z ^ (z >> _SH31)


@njit(inline="always")
def _rotl(x: np.uint64, k: np.uint64) -> np.uint64:
    return (x << k) | (x >> (_SH64 - k))


@njit(inline="always")
def _xoshiro(s0: np.uint64, s1: np.uint64, s2: np.uint64,
             s3: np.uint64) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64, np.uint64]:
    """xoshiro256**: (output, next state)."""
    out = _rotl(s1 * _U5, _SH7) * _U9
    t = s1 << _SH17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, _SH45)
    return out, s0, s1, s2, s3


@njit(inline="always")
def _log1p_over(x: float) -> float:
    """log(1 + x) / x, continuous at 0."""
    if abs(x) > 1e-8:
        return math.log1p(x) / x
    return 1.0 - x * (0.5 - x / 3.0)


@njit(inline="always")
def _expm1_over(x: float) -> float:
    """(e^x - 1) / x, continuous at 0."""
    if abs(x) > 1e-8:
        return math.expm1(x) / x
    return 1.0 + x * (0.5 + x / 6.0)


@njit(inline="always")
def _big_h(x: float, alpha: float) -> float:
    """H(x) = (x^(1-alpha) - 1) / (1 - alpha), log x at alpha = 1."""
    log_x = math.log(x)
    return _expm1_over((1.0 - alpha) * log_x) * log_x


@njit(inline="always")
def _big_h_inv(y: float, alpha: float) -> float:
    """The inverse of ``_big_h``."""
    return math.exp(_log1p_over((1.0 - alpha) * y) * y)


@njit(cache=True)
def zipf_bounds(rows: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Per table, the ends of the H axis a draw spans, and the squeeze constant."""
    low = np.empty(rows.size)
    high = np.empty(rows.size)
    for t in range(rows.size):
        low[t] = _big_h(1.5, alpha) - 1.0
        high[t] = _big_h(rows[t] + 0.5, alpha)
    squeeze = 2.0 - _big_h_inv(_big_h(2.5, alpha) - 2.0 ** -alpha, alpha)
    return low, high, squeeze


@njit(inline="always")
def _scatter(x: np.uint64, rows: np.uint64, mask: np.uint64, shift: np.uint64,
             keys: np.ndarray) -> np.uint64:
    """The keyed bijection of [0, rows): rounds on [0, mask + 1), walked back into range."""
    while True:
        x = (x * (keys[0] | _U1) + keys[1]) & mask
        x ^= x >> shift
        x = (x * (keys[2] | _U1) + keys[3]) & mask
        x ^= x >> shift
        x = (x * (keys[4] | _U1) + keys[5]) & mask
        x ^= x >> shift
        if x < rows:
            return x


def scatter_shape(rows: int) -> tuple[int, int]:
    """(mask, shift) of the scatter over ``rows`` rows: 2^n - 1 for the smallest 2^n >= rows
    (n >= 1), and the xor-shift, about n / 2 and at least 1."""
    bits = max(1, (int(rows) - 1).bit_length())
    return (1 << bits) - 1, max(1, (bits + 1) // 2)


@njit(cache=True)
def scatter_rows(ranks: np.ndarray, rows: int, mask: int, shift: int,
                 keys: np.ndarray) -> np.ndarray:
    """``_scatter`` of every 0-based rank (for tests and tools)."""
    out = np.empty(ranks.size, dtype=np.int64)
    for i in range(ranks.size):
        out[i] = np.int64(_scatter(np.uint64(ranks[i]), np.uint64(rows), np.uint64(mask),
                                   np.uint64(shift), keys))
    return out


@njit(parallel=True, cache=True)
def draw_bags(need: np.ndarray, table_of_bag: np.ndarray, out_offsets: np.ndarray,
              rows: np.ndarray, low: np.ndarray, high: np.ndarray, alpha: float,
              squeeze: float, batch_key: np.uint64, max_draws: int, scatter: bool,
              masks: np.ndarray, shifts: np.ndarray, keys: np.ndarray,
              chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of every bag b: ``need[b]`` distinct bounded-Zipf ranks of table
    ``table_of_bag[b]``, scattered when ``scatter`` (else the 0-based ranks), written to
    ``out[out_offsets[b]:]``. Returns ``out`` and the distinct ranks each bag found (less than
    ``need[b]`` once ``max_draws * need[b]`` ranks gave too few distinct ones).

    Bags are split into ``chunks`` runs drawn in parallel; bag b's stream depends only on
    ``batch_key`` and b.
    """
    bags = need.size
    out = np.empty(out_offsets[bags], dtype=np.int64)
    found = np.zeros(bags, dtype=np.int64)
    slots = 1
    for b in range(bags):
        while slots < 2 * need[b]:
            slots *= 2
    slot_bits = 1
    while (1 << slot_bits) < slots:
        slot_bits += 1
    slot_shift = _SH64 - np.uint64(slot_bits)
    for c in prange(chunks):
        set_rank = np.empty(slots, dtype=np.int64)
        set_stamp = np.full(slots, -1, dtype=np.int64)
        for b in range(c * bags // chunks, (c + 1) * bags // chunks):
            t = table_of_bag[b]
            state = batch_key ^ (np.uint64(b) * _MIX2)
            state, s0 = _splitmix(state)
            state, s1 = _splitmix(state)
            state, s2 = _splitmix(state)
            state, s3 = _splitmix(state)
            start = out_offsets[b]
            k = 0
            drawn = 0
            limit = max_draws * need[b]
            lo = low[t]
            span = high[t] - lo
            top = rows[t]
            while k < need[b] and drawn < limit:
                while True:                         # one bounded Zipf rank, 1..top
                    r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
                    u = lo + ((r >> _SH11) + _U1) * _TO_UNIT * span
                    x = _big_h_inv(u, alpha)
                    rank = np.int64(x + 0.5)
                    if rank < 1:
                        rank = 1
                    elif rank > top:
                        rank = top
                    if rank - x <= squeeze or (
                            u >= _big_h(rank + 0.5, alpha) - float(rank) ** -alpha):
                        break
                drawn += 1
                rank -= 1
                repeated = False
                if need[b] <= LINEAR_CHECK:
                    for j in range(start, start + k):
                        if out[j] == rank:
                            repeated = True
                            break
                else:
                    slot = np.int64((np.uint64(rank) * GOLDEN) >> slot_shift)
                    while set_stamp[slot] == b:
                        if set_rank[slot] == rank:
                            repeated = True
                            break
                        slot = (slot + 1) & (slots - 1)
                    if not repeated:
                        set_stamp[slot] = b
                        set_rank[slot] = rank
                if not repeated:
                    out[start + k] = rank
                    k += 1
            found[b] = k
            if scatter:
                for j in range(start, start + k):
                    out[j] = np.int64(_scatter(np.uint64(out[j]), np.uint64(top),
                                               np.uint64(masks[t]), np.uint64(shifts[t]),
                                               keys[t]))
    return out, found
