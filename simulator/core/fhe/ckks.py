"""CKKS (RNS variant) parameters, the sizes of what an evaluation moves, and the work of each
operation counted in modular operations.

A parameter set is a ring dimension ``N`` (a power of two; ``N/2`` complex slots), a chain of
``levels`` rescaling primes of ``scale_bits`` above a first prime of ``first_bits``, and
``special_limbs`` key-switching primes of ``special_bits``. A ciphertext at level ``l`` has
``l + 1`` limbs (residue polynomials) per polynomial and two polynomials.

Key switching (rotations, relinearisation) follows the hybrid method: the input is split into
``digits`` groups of ``alpha = ceil((levels + 1) / digits)`` limbs, each raised to the special
primes (ModUp), multiplied with the key and brought back down (ModDown). ``digits: None`` is
Microsoft SEAL's choice: one limb per digit and a single special prime. A key-switching key
holds ``2 x digits x (levels + 1 + special)`` limbs of ``N`` words.

Work is counted in modular operations (a number-theoretic transform of one limb is
``N/2 log2 N`` butterflies; an element-wise product or sum of one limb is ``N``); an engine's
speed per operation kind turns it into seconds (``hwmodels.fhe``). The counts are structural:
what each algorithm must do, not a profile of one library, so an engine fitted on one ring size
and level predicts the others (``embsim calibrate --backend fhe-cpu`` checks this).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwmodels.fhe import OPS

__all__ = ["OPS", "MAX_MODULUS_BITS", "CkksParams"]

MAX_MODULUS_BITS = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881,
                    65536: 1772, 131072: 3544}
"""Largest total modulus (log2 of Q times P) for 128-bit classical security with a ternary
secret, by ring dimension: the Homomorphic Encryption Security Standard (Albrecht et al., 2018)
up to 32768, as Microsoft SEAL (``hestdparms.h``) and OpenFHE (``stdlatticeparms.cpp``) copy it;
65536 from OpenFHE's table. 131072 is an ASSUMPTION: twice 65536's value, as each doubling of N
about doubles the bound in the tables above."""


@dataclass(frozen=True)
class CkksParams:
    """One CKKS parameter set (see the module docstring)."""

    ring_dim: int
    levels: int
    scale_bits: int = 40
    first_bits: int = 60
    special_bits: int = 60
    digits: int | None = None
    word_bytes: int = 8
    """Bytes one stored residue takes (64-bit words on CPUs and GPUs; accelerators with
    narrower multipliers store narrower words)."""

    @property
    def slots(self) -> int:
        return self.ring_dim // 2

    @property
    def log_n(self) -> int:
        return self.ring_dim.bit_length() - 1

    @property
    def top_limbs(self) -> int:
        return self.levels + 1

    @property
    def alpha(self) -> int:
        """Limbs per key-switching digit."""
        return 1 if self.digits is None else math.ceil(self.top_limbs / self.digits)

    @property
    def special(self) -> int:
        """Special (key-switching) primes."""
        return 1 if self.digits is None else self.alpha

    @property
    def modulus_bits(self) -> int:
        """log2 of the whole modulus Q x P, which security bounds."""
        return (self.first_bits + self.levels * self.scale_bits
                + self.special * self.special_bits)

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) for each way this parameter set is unusable."""
        found = []
        n = self.ring_dim
        if n < 1024 or n & (n - 1):
            found.append(("ring_dim", f"ring dimension {n} is not a power of two from 1024 "
                                      f"to 131072"))
        elif n > 131072:
            found.append(("ring_dim", f"ring dimension {n} is above 131072"))
        elif self.modulus_bits > MAX_MODULUS_BITS[n]:
            found.append(("levels", f"{self.levels} levels need a {self.modulus_bits}-bit "
                                    f"modulus; N = {n} allows {MAX_MODULUS_BITS[n]} bits at "
                                    f"128-bit security (fewer levels or a larger ring_dim)"))
        return found

    def ciphertext_bytes(self, limbs: int) -> int:
        return 2 * self.ring_dim * limbs * self.word_bytes

    def wire_bytes(self, limbs: int) -> int:
        """Bytes of a ciphertext at ``limbs`` limbs sent over a network: its two polynomials
        packed to the moduli's bits (independent of how an engine stores its words)."""
        bits = self.first_bits + (limbs - 1) * self.scale_bits
        return -(-2 * self.ring_dim * bits // 8)

    def plaintext_bytes(self, limbs: int) -> int:
        return self.ring_dim * limbs * self.word_bytes

    def key_digits(self, limbs: int) -> int:
        return math.ceil(limbs / self.alpha)

    def key_bytes(self, limbs: int | None = None) -> int:
        """Bytes of one key-switching key a switch at ``limbs`` limbs reads (the whole key
        at the top level when None)."""
        limbs = self.top_limbs if limbs is None else limbs
        return (2 * self.key_digits(limbs) * (limbs + self.special) * self.ring_dim
                * self.word_bytes)

    def ntt(self, limbs: int) -> float:
        """Butterflies of a number-theoretic transform of ``limbs`` limbs."""
        return limbs * self.ring_dim / 2 * self.log_n

    def key_switch(self, limbs: int) -> float:
        """Modular operations of one key switch of a ciphertext at ``limbs`` limbs."""
        n, k, alpha = self.ring_dim, self.special, self.alpha
        digits = self.key_digits(limbs)
        raised = limbs + k
        mod_up = digits * (self.ntt(alpha) + alpha * (raised - alpha) * n
                           + self.ntt(raised - alpha))
        inner = 2 * digits * raised * n
        mod_down = 2 * (self.ntt(k) + k * limbs * n + self.ntt(limbs) + 2 * limbs * n)
        return mod_up + inner + mod_down

    def work(self, op: str, limbs: int) -> float:
        """Modular operations of ``op`` on a ciphertext (or plaintext) of ``limbs`` limbs."""
        n = self.ring_dim
        if op in ("add", "mul_plain"):
            return 2 * n * limbs
        if op == "mul":
            return 4 * n * limbs
        if op == "relinearize":
            return self.key_switch(limbs)
        if op == "rotate":
            return self.key_switch(limbs) + 2 * n * limbs
        if op == "rescale":
            return 2 * (self.ntt(1) + self.ntt(limbs - 1) + 2 * n * (limbs - 1))
        if op == "encode":
            return n * self.log_n + self.ntt(limbs) + n * limbs
        if op == "encrypt":              # at the key level (special primes too), then down
            raised = limbs + self.special
            return 3 * self.ntt(raised) + 5 * n * raised
        if op == "decrypt":
            return 2 * n * limbs
        if op == "decode":
            return self.ntt(limbs) + n * limbs * limbs + n * self.log_n
        raise KeyError(op)

    def traffic(self, op: str, limbs: int) -> tuple[int, int]:
        """(ciphertext bytes, key bytes) ``op`` reads and writes at ``limbs`` limbs when none
        of it stays on chip; a plaintext operand is counted by the caller."""
        ct = self.ciphertext_bytes(limbs)
        if op in ("add", "mul"):
            return 3 * ct if op == "add" else 3 * ct + ct // 2, 0
        if op in ("rotate", "relinearize"):
            return 2 * ct, self.key_bytes(limbs)
        if op == "rescale":
            return ct + self.ciphertext_bytes(limbs - 1), 0
        return 2 * ct, 0                        # mul_plain and the client's operations
