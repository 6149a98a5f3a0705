"""Address mapping: a byte address -> (channel, rank, bank group, bank, row, column).

The mapping is a string of the six fields ``ro ch ra bg ba co`` from the most to the least
significant, e.g. ``"rochrababgco"`` (DRAMsim3/Ramulator notation). Below the fields sit the
bytes of one request (one burst). The address is decoded as a mixed-radix number: each field's
radix is its count (``co`` counts bursts in a row, ``ch`` counts channels x pseudo-channels), so
counts need not be powers of two (a 12-channel socket); with powers of two this is the usual
bit slicing. The most significant field wraps: addresses past the capacity alias onto it, as
in hardware that ignores the high address bits.

The optional XOR bank hash (permutation-based interleaving, Zhang et al., MICRO 2000) XORs the
low row bits into the bank index and the next row bits into the bank-group index, so strided
rows spread over banks; it needs power-of-two bank and bank-group counts.

Decoding is compiled (``decode_pair``): one pass yields two weighted sums of the digits, for
the models the flat bank index and the row; each digit is a shift and a mask when its count is
a power of two, a division otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from hwmodels.int_division import log2_if_power_of_two

FIELDS: tuple[str, ...] = ("ro", "ch", "ra", "bg", "ba", "co")
FIELD_NAMES = {"ro": "row", "ch": "channel", "ra": "rank", "bg": "bank group", "ba": "bank",
               "co": "column"}


def parse_mapping(text: str) -> tuple[str, ...]:
    """The fields of a mapping string, most significant first; ValueError naming the problem."""
    if len(text) % 2:
        raise ValueError(f"mapping {text!r}: expected two-letter fields "
                         f"{' '.join(FIELDS)}, got an odd length")
    fields = tuple(text[i:i + 2] for i in range(0, len(text), 2))
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise ValueError(f"mapping {text!r}: unknown field {unknown[0]!r}; expected each of "
                         f"{' '.join(FIELDS)} once")
    repeated = sorted({f for f in fields if fields.count(f) > 1})
    if repeated:
        raise ValueError(f"mapping {text!r}: field {repeated[0]!r} repeated; expected each of "
                         f"{' '.join(FIELDS)} once")
    missing = [f for f in FIELDS if f not in fields]
    if missing:
        raise ValueError(f"mapping {text!r}: field {missing[0]!r} "
                         f"({FIELD_NAMES[missing[0]]}) missing; expected each of "
                         f"{' '.join(FIELDS)} once")
    return fields


@njit(cache=True, inline="always")
def _digit(rest, radix, shift):
    """(rest // radix, rest % radix) of a non-negative ``rest``; ``shift`` is log2(radix)
    when the radix is a power of two, else -1."""
    if shift >= 0:
        return rest >> shift, rest & (radix - 1)
    return rest // radix, rest % radix


@njit(cache=True)
def decode_pair(addresses, layout, weights, hash_mask, first, second):
    """Two weighted sums of each address's digits in one pass: ``second = sum(weights[1] x
    digit)`` and ``first = sum(weights[0] x digit) ^ (second & hash_mask)``.

    ``layout`` rows: radix and shift of each digit from the least significant (the request
    size first). With the flat bank weights and the row, this is the models' whole decode."""
    radix, shift = layout[0], layout[1]
    for i in range(addresses.size):
        rest = addresses[i]
        x = 0
        y = 0
        for k in range(radix.size):
            rest, digit = _digit(rest, radix[k], shift[k])
            x += weights[0, k] * digit
            y += weights[1, k] * digit
        first[i] = x ^ (y & hash_mask)
        second[i] = y


@dataclass(frozen=True)
class Decoded:
    """Per-request DRAM coordinates (int64 arrays, one entry per address)."""

    channel: np.ndarray
    rank: np.ndarray
    bank_group: np.ndarray
    bank: np.ndarray
    row: np.ndarray
    column: np.ndarray


@dataclass(frozen=True)
class AddressMap:
    """A parsed mapping with each field's count; decodes and encodes whole arrays."""

    order: tuple[str, ...]
    radix: dict[str, int]
    request_bytes: int
    xor_bank_hash: bool
    layout: np.ndarray = field(init=False, repr=False, compare=False)
    """Rows (radix, shift) of each digit from the least significant, the request size first:
    the compiled decode's view of the map."""

    def __post_init__(self) -> None:
        radices = [self.request_bytes] + [self.radix[name] for name in reversed(self.order)]
        layout = np.array([radices, [log2_if_power_of_two(r) for r in radices]], dtype=np.int64)
        object.__setattr__(self, "layout", layout)

    def _weights(self, first: dict[str, int], second: dict[str, int]) -> np.ndarray:
        """The two weight rows of ``decode_pair`` from per-field weights (others 0)."""
        digits = ("", *reversed(self.order))
        return np.array([[w.get(name, 0) for name in digits] for w in (first, second)],
                        dtype=np.int64)

    def _pair(self, addresses: np.ndarray, first: dict[str, int], second: dict[str, int],
              hash_mask: int = 0) -> tuple[np.ndarray, np.ndarray]:
        out = np.empty((2, addresses.size), dtype=np.int64)
        decode_pair(addresses, self.layout, self._weights(first, second), hash_mask, out[0],
                    out[1])
        return out[0], out[1]

    def decode(self, addresses: np.ndarray) -> Decoded:
        """Coordinates of each non-negative byte address (the offset within a request is
        dropped)."""
        addresses = np.asarray(addresses, dtype=np.int64)
        flat = np.ascontiguousarray(addresses).ravel()
        values = {}
        for pair in (("ch", "ra"), ("bg", "ba"), ("ro", "co")):
            for name, value in zip(pair, self._pair(flat, {pair[0]: 1}, {pair[1]: 1}),
                                   strict=True):
                values[name] = value.reshape(addresses.shape)
        bank, group = values["ba"], values["bg"]
        if self.xor_bank_hash:
            bank, group = self._hash(bank, group, values["ro"])
        return Decoded(values["ch"], values["ra"], group, bank, values["ro"], values["co"])

    def bank_and_row(self, addresses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat bank index (``((channel x ranks + rank) x groups + group) x banks + bank``, see
        ``hwmodels.dram.model``) and row of each non-negative byte address (contiguous
        int64), in one compiled pass. With power-of-two counts the XOR hash of bank and group
        is one XOR of their joint index with the low row bits."""
        banks, groups = self.radix["ba"], self.radix["bg"]
        weights = {"ch": self.radix["ra"] * groups * banks, "ra": groups * banks, "bg": banks,
                   "ba": 1}
        return self._pair(addresses, weights, {"ro": 1},
                          groups * banks - 1 if self.xor_bank_hash else 0)

    def span_below(self, fields: tuple[str, ...]) -> int:
        """Bytes the mapping keeps together below the least significant of ``fields`` whose
        count exceeds one: aligned blocks of this size each lie within one value of every
        such field (e.g. one bank's DRAM row for ro, ch, ra, bg, ba)."""
        split = [self.order.index(f) for f in fields if self.radix[f] > 1]
        below = self.order[max(split, default=-1) + 1:]
        return self.request_bytes * int(np.prod([self.radix[f] for f in below]))

    def encode(self, *, channel=0, rank=0, bank_group=0, bank=0, row=0, column=0) -> np.ndarray:
        """Byte addresses of the given coordinates (scalars or arrays): the inverse of decode."""
        row = np.asarray(row, dtype=np.int64)
        bank, bank_group = np.asarray(bank, dtype=np.int64), np.asarray(bank_group, np.int64)
        if self.xor_bank_hash:   # the hash is an involution for a given row
            bank, bank_group = self._hash(bank, bank_group, row)
        values = {"ro": row, "ch": channel, "ra": rank, "bg": bank_group, "ba": bank,
                  "co": column}
        address = np.zeros(np.broadcast(*values.values()).shape, dtype=np.int64)
        for name in self.order:
            address = address * self.radix[name] + np.asarray(values[name], dtype=np.int64)
        return address * self.request_bytes

    def _hash(self, bank: np.ndarray, group: np.ndarray,
              row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        banks, groups = self.radix["ba"], self.radix["bg"]
        return bank ^ (row % banks), group ^ ((row // banks) % groups)
