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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

    def decode(self, addresses: np.ndarray) -> Decoded:
        """Coordinates of each byte address (the offset within a request is dropped)."""
        rest = np.asarray(addresses, dtype=np.int64) // self.request_bytes
        values = {}
        for field in reversed(self.order):
            rest, values[field] = np.divmod(rest, self.radix[field])
        bank, group = values["ba"], values["bg"]
        if self.xor_bank_hash:
            bank, group = self._hash(bank, group, values["ro"])
        return Decoded(values["ch"], values["ra"], group, bank, values["ro"], values["co"])

    def encode(self, *, channel=0, rank=0, bank_group=0, bank=0, row=0, column=0) -> np.ndarray:
        """Byte addresses of the given coordinates (scalars or arrays): the inverse of decode."""
        row = np.asarray(row, dtype=np.int64)
        bank, bank_group = np.asarray(bank, dtype=np.int64), np.asarray(bank_group, np.int64)
        if self.xor_bank_hash:   # the hash is an involution for a given row
            bank, bank_group = self._hash(bank, bank_group, row)
        values = {"ro": row, "ch": channel, "ra": rank, "bg": bank_group, "ba": bank,
                  "co": column}
        address = np.zeros(np.broadcast(*values.values()).shape, dtype=np.int64)
        for field in self.order:
            address = address * self.radix[field] + np.asarray(values[field], dtype=np.int64)
        return address * self.request_bytes

    def _hash(self, bank: np.ndarray, group: np.ndarray,
              row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        banks, groups = self.radix["ba"], self.radix["bg"]
        return bank ^ (row % banks), group ^ ((row // banks) % groups)
