"""Encrypted embedding lookups run for real with Microsoft SEAL (through TenSEAL's ``sealapi``):
the functional reference of FHE units, and what ``embsim measure --backend fhe-cpu`` and
``embsim calibrate --backend fhe-cpu`` time.

It executes exactly the algorithm ``simulator.core.fhe.lookup`` prices (blocks, baby-step
giant-step diagonals, the fold, chunks, digits, packing) and counts every operation it runs by
(operation, limbs), so a test can hold the plan's closed-form counts to what really ran.

Why SEAL through TenSEAL: its wheel (``pip install 'embsim[fhe]'``) installs and runs on
CPython 3.10-3.12 without a compiler, and ``sealapi`` exposes SEAL's evaluator one operation at
a time (encode, encrypt, multiply_plain, rotate_vector with Galois keys, rescale, relinearize,
decrypt, decode), which the cost model needs; OpenFHE's Python wheel ships no CPython 3.11
build. SEAL has no bootstrapping, so bootstrapping costs come from papers (``hwmodels.fhe``).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embsim.errors import FunctionalMismatch, InputError
from simulator.core.fhe.ckks import CkksParams
from simulator.core.fhe.lookup import Block, Scheme, _steps, block_of, digit_rows

SEAL_MAX_RING_DIM = 32768
"""Largest ring dimension SEAL's 128-bit security table allows."""


def ckks_tolerance(scale_bits: int) -> float:
    """Absolute and relative tolerance of a decrypted lookup against torch. CKKS adds noise
    of a few units in the last place of the scale, and a product of a count vector with a
    table sums hundreds of such terms: ``2^(22 - scale_bits)`` covers that (3.9e-3 at 30 bits,
    where 5,000-row tables were seen 2e-3 off), never tighter than 1e-3."""
    return max(1e-3, 2.0 ** (22 - scale_bits))


def sealapi() -> Any:
    """TenSEAL's SEAL bindings, or an InputError saying how to install them."""
    try:
        import tenseal.sealapi as seal
    except ImportError:
        raise InputError("encrypted lookups need TenSEAL (Microsoft SEAL): pip install "
                         "'embsim[fhe]'", field="backend") from None
    return seal


@dataclass
class OpLog:
    """Operations run, by (operation, limbs), and seconds spent, client and server."""

    counts: Counter = field(default_factory=Counter)
    seconds: defaultdict = field(default_factory=lambda: defaultdict(float))


class SealCkks:
    """A SEAL CKKS context, its keys (Galois keys for ``steps`` only) and counted operations."""

    def __init__(self, params: CkksParams, steps: list[int], *, source: str | None = None,
                 field: str = ""):
        where = f"{field}." if field else ""
        if params.digits is not None:
            raise InputError("SEAL switches keys with one special prime (key_digits: null)",
                             source=source, field=f"{where}key_digits")
        if params.ring_dim > SEAL_MAX_RING_DIM:
            raise InputError(f"SEAL runs ring dimensions up to {SEAL_MAX_RING_DIM} (got "
                             f"{params.ring_dim})", source=source, field=f"{where}ring_dim")
        seal = sealapi()
        self.seal, self.params = seal, params
        parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(params.ring_dim)
        bits = ([params.first_bits] + [params.scale_bits] * params.levels
                + [params.special_bits])
        parms.set_coeff_modulus(seal.CoeffModulus.Create(params.ring_dim, bits))
        self.context = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
        if not self.context.parameters_set():
            raise InputError(f"SEAL rejects these parameters: "
                             f"{self.context.parameters_error_message()}", source=source,
                             field=f"{where}levels")
        keys = seal.KeyGenerator(self.context)
        public = seal.PublicKey()
        keys.create_public_key(public)
        self.relin = seal.RelinKeys()
        keys.create_relin_keys(self.relin)
        self.galois = seal.GaloisKeys()
        if steps:                  # SEAL's key for a left rotation by k: element 3^k mod 2N
            elements = [pow(3, k, 2 * params.ring_dim) for k in sorted(set(steps))]
            keys.create_galois_keys(elements, self.galois)
        self.encoder = seal.CKKSEncoder(self.context)
        self.encryptor = seal.Encryptor(self.context, public)
        self.decryptor = seal.Decryptor(self.context, keys.secret_key())
        self.evaluator = seal.Evaluator(self.context)
        self.scale = 2.0 ** params.scale_bits
        self.log = OpLog()

    def _timed(self, op: str, limbs: int, call, *args) -> None:
        start = time.perf_counter()
        call(*args)
        self.log.seconds[op] += time.perf_counter() - start
        self.log.counts[(op, limbs)] += 1

    def encode(self, values: np.ndarray, *, counted: bool = True) -> Any:
        """A plaintext of ``values`` (padded to the slots) at the top level; ``counted: False``
        for a server's tables, whose encoding is not part of any lookup."""
        plain = self.seal.Plaintext()
        full = np.zeros(self.params.slots)
        full[:values.size] = values
        if counted:
            self._timed("encode", self.params.top_limbs, self.encoder.encode, full.tolist(),
                        self.scale, plain)
        else:
            self.encoder.encode(full.tolist(), self.scale, plain)
        return plain

    def encrypt(self, values: np.ndarray) -> Any:
        plain = self.encode(values)
        out = self.seal.Ciphertext()
        self._timed("encrypt", self.params.top_limbs, self.encryptor.encrypt, plain, out)
        return out

    def decrypt(self, ct: Any) -> np.ndarray:
        limbs = ct.coeff_modulus_size()
        plain = self.seal.Plaintext()
        self._timed("decrypt", limbs, self.decryptor.decrypt, ct, plain)
        start = time.perf_counter()
        values = np.array(self.encoder.decode_double(plain))
        self.log.seconds["decode"] += time.perf_counter() - start
        self.log.counts[("decode", limbs)] += 1
        return values

    def binary(self, op: str, a: Any, b: Any) -> Any:
        """``add``, ``mul_plain`` or ``mul`` (with relinearisation counted apart)."""
        out = self.seal.Ciphertext()
        call = {"add": self.evaluator.add, "mul_plain": self.evaluator.multiply_plain,
                "mul": self.evaluator.multiply}[op]
        self._timed(op, a.coeff_modulus_size(), call, a, b, out)
        return out

    def rotate(self, ct: Any, step: int) -> Any:
        out = self.seal.Ciphertext()
        self._timed("rotate", ct.coeff_modulus_size(), self.evaluator.rotate_vector, ct,
                    step, self.galois, out)
        return out

    def rescale(self, ct: Any) -> Any:
        out = self.seal.Ciphertext()
        self._timed("rescale", ct.coeff_modulus_size(), self.evaluator.rescale_to_next,
                    ct, out)
        out.scale = self.scale
        return out

    def relinearize(self, ct: Any) -> Any:
        out = self.seal.Ciphertext()
        self._timed("relinearize", ct.coeff_modulus_size(), self.evaluator.relinearize,
                    ct, self.relin, out)
        return out


@dataclass(frozen=True)
class Placed:
    """One block in a ciphertext: its slot offset, sample, table, digit and chunk."""

    offset: int
    sample: int
    table: int
    digit: int
    chunk: int


def diagonals(block: Block, placed: list[Placed], weights: list[list[np.ndarray]],
              slots: int) -> list[np.ndarray]:
    """The ``block.cols`` extended diagonals of a ciphertext's blocks (slot vectors):
    ``u_j[o + i] = W[chunk rows + (i + j) mod c, i mod cols]`` for ``i < c``."""
    c = block.rows
    i = np.arange(c)
    out = []
    for j in range(block.cols):
        u = np.zeros(slots)
        for p in placed:
            table = weights[p.table][p.digit]
            rows = p.chunk * c + (i + j) % c
            cols = i % block.cols
            ok = (rows < table.shape[0]) & (cols < table.shape[1])
            u[p.offset + i[ok]] = table[rows[ok], cols[ok]]
        out.append(u)
    return out


def count_vector(block: Block, placed: list[Placed], counts: dict[tuple[int, int, int],
                 np.ndarray], slots: int) -> np.ndarray:
    """The client's input slots: each block's row counts over its chunk, then the first
    ``cols - 1`` of them again."""
    c = block.rows
    x = np.zeros(slots)
    for p in placed:
        padded = np.zeros(block.rows * block.chunks)
        vector = counts[(p.sample, p.table, p.digit)]
        padded[:vector.size] = vector
        chunk = padded[p.chunk * c:(p.chunk + 1) * c]
        x[p.offset:p.offset + c] = chunk
        x[p.offset + c:p.offset + c + block.cols - 1] = chunk[:block.cols - 1]
    return x


def rotate_right(u: np.ndarray, step: int) -> np.ndarray:
    """Slots moved ``step`` places to higher indices (the inverse of a left rotation)."""
    return np.roll(u, step)


class EncryptedLookup:
    """Pooled lookups of a unit's tables computed on encrypted count vectors.

    ``tables`` holds, per table, its ``digits`` digit tables (``digit_rows`` x dim each);
    ``rows`` the model's rows per table."""

    def __init__(self, params: CkksParams, scheme: Scheme, rows: list[int],
                 tables: list[list[np.ndarray]], *, source: str | None = None,
                 field: str = ""):
        self.params, self.scheme, self.rows, self.tables = params, scheme, rows, tables
        self.blocks = [block_of(digit_rows(n, scheme.digits), t[0].shape[1], params,
                                scheme.packing) for n, t in zip(rows, tables, strict=True)]
        steps = {s for block in self.blocks for s in _steps(block)[2]}
        self.ckks = SealCkks(params, sorted(steps), source=source, field=field)
        self.encoded: dict[tuple, list[Any]] = {}

    def prepare(self, batch_size: int) -> None:
        """Encode every diagonal a batch of ``batch_size`` needs (a server keeps its tables
        encoded; encoding them is not part of a lookup)."""
        for block, inputs in self.layout(batch_size):
            for placed in inputs:
                self._diagonals(block, placed)

    def composed(self, t: int) -> np.ndarray:
        """Table ``t`` as the model sees it: row ``r`` is the sum of its digits' rows."""
        base = digit_rows(self.rows[t], self.scheme.digits)
        r = np.arange(self.rows[t])
        out = np.zeros((self.rows[t], self.tables[t][0].shape[1]), dtype=np.float64)
        for j, table in enumerate(self.tables[t]):
            out += table[(r // base ** j) % base]
        return out

    def layout(self, batch_size: int) -> list[tuple[Block, list[list[Placed]]]]:
        """Products to run: (block shape, input ciphertexts, each its placed blocks)."""
        digits, slots = self.scheme.digits, self.params.slots
        products = []
        by_shape: dict[Block, list[tuple[int, int, int]]] = defaultdict(list)
        samples = range(batch_size)
        for s in samples:
            for t, block in enumerate(self.blocks):
                by_shape[block] += [(s, t, j) for j in range(digits)]
        for block, members in by_shape.items():
            if not self.scheme.packing:
                products += [(block, [[Placed(0, s, t, j, q)] for q in range(block.chunks)])
                             for s, t, j in members]
                continue
            per_ct = slots // block.width()
            groups = ([[m for m in members if m[0] == s] for s in samples]
                      if self.scheme.clients == "sample" else [members])
            for group in groups:
                for start in range(0, len(group), per_ct):
                    chunk = group[start:start + per_ct]
                    products.append((block, [[Placed(i * block.width(), *m, 0)
                                              for i, m in enumerate(chunk)]]))
        return products

    def pooled(self, counts: dict[tuple[int, int, int], np.ndarray],
               batch_size: int) -> np.ndarray:
        """Decrypted pooled bags (batch_size, tables, max dim) from the client's count
        vectors ``counts[(sample, table, digit)]`` (over that digit table's rows)."""
        ckks = self.ckks
        dim = max(t[0].shape[1] for t in self.tables)
        out = np.zeros((batch_size, len(self.tables), dim))
        pending: dict[tuple[int, int], list[Any]] = defaultdict(list)
        for block, inputs in self.layout(batch_size):
            result = self._product(block, inputs, counts)
            placed = inputs[0]
            if not self.scheme.packing and self.scheme.digits > 1:
                pending[(placed[0].sample, placed[0].table)].append(result)
                continue
            self._unpack(ckks.decrypt(result), placed, out)
        for (s, t), parts in pending.items():
            total = parts[0]
            for part in parts[1:]:
                total = ckks.binary("add", total, part)
            self._unpack(ckks.decrypt(total), [Placed(0, s, t, 0, 0)], out)
        return out

    def _unpack(self, values: np.ndarray, placed: list[Placed], out: np.ndarray) -> None:
        for p in placed:
            d = self.tables[p.table][0].shape[1]
            out[p.sample, p.table, :d] += values[p.offset:p.offset + d]

    def _product(self, block: Block, inputs: list[list[Placed]],
                 counts: dict[tuple[int, int, int], np.ndarray]) -> Any:
        """One vector-matrix product: baby steps on every input, diagonal products summed
        per giant step (over the chunks), giant rotations, rescale, fold."""
        ckks, slots = self.ckks, self.params.slots
        n1, n2, amounts = _steps(block)
        folds = amounts[(n1 - 1) + (n2 - 1):]
        sums: list[Any] = [None] * n2
        for placed in inputs:
            x = ckks.encrypt(count_vector(block, placed, counts, slots))
            rotated = [x] + [ckks.rotate(x, b) for b in range(1, n1)]
            diags = self._diagonals(block, placed)
            for g in range(n2):
                inner = None
                for b in range(n1):
                    term = ckks.binary("mul_plain", rotated[b], diags[g * n1 + b])
                    inner = term if inner is None else ckks.binary("add", inner, term)
                sums[g] = inner if sums[g] is None else ckks.binary("add", sums[g], inner)
        total = sums[0]
        for g in range(1, n2):
            total = ckks.binary("add", total, ckks.rotate(sums[g], g * n1))
        total = ckks.rescale(total)
        for step in folds:
            total = ckks.binary("add", total, ckks.rotate(total, step))
        return total

    def _diagonals(self, block: Block, placed: list[Placed]) -> list[Any]:
        """The block's encoded diagonals, pre-rotated for their giant step (kept: a server
        stores its tables encoded)."""
        key = (block, tuple((p.offset, p.table, p.digit, p.chunk) for p in placed))
        if key not in self.encoded:
            n1 = _steps(block)[0]
            raw = diagonals(block, placed, self.tables, self.params.slots)
            self.encoded[key] = [self.ckks.encode(rotate_right(u, (j // n1) * n1),
                                                  counted=False)
                                 for j, u in enumerate(raw)]
        return self.encoded[key]


def torch_bags(lookup: EncryptedLookup, indices: np.ndarray, offsets: np.ndarray,
               weights: np.ndarray | None, batch_size: int) -> np.ndarray:
    """What ``lookup`` must decrypt to for a batch in embsim's layout (bags table-major):
    torch's ``embedding_bag`` (sum) of each table's bags over the model's table, the sum of
    its digit tables' rows; (batch_size, tables, largest dim)."""
    from simulator.grounding.backends.base import import_torch

    torch = import_torch()
    B = batch_size
    out = np.zeros((B, len(lookup.rows), max(t[0].shape[1] for t in lookup.tables)))
    for t in range(len(lookup.rows)):
        lo, hi = offsets[t * B], offsets[(t + 1) * B]
        table = lookup.composed(t)
        bags = torch.nn.functional.embedding_bag(
            torch.from_numpy(indices[lo:hi].astype(np.int64)), torch.from_numpy(table),
            torch.from_numpy(offsets[t * B:(t + 1) * B] - lo), mode="sum",
            per_sample_weights=None if weights is None else torch.from_numpy(
                weights[lo:hi].astype(np.float64)))
        out[:, t, :table.shape[1]] = bags.numpy()
    return out


def check_bags(got: np.ndarray, want: np.ndarray, tolerance: float, where: str) -> None:
    """Raise ``FunctionalMismatch`` (naming ``where``) unless the decrypted bags ``got`` are
    within ``tolerance`` (absolute and relative) of torch's ``want``."""
    if not np.allclose(got, want, rtol=tolerance, atol=tolerance):
        raise FunctionalMismatch(f"{where}: the decrypted encrypted lookup differs from torch "
                                 f"by {np.abs(got - want).max():.3g} (tolerance "
                                 f"{tolerance:.3g})")


def bag_counts(indices: np.ndarray, offsets: np.ndarray, weights: np.ndarray | None,
               rows: list[int], digits: int, batch_size: int) -> dict[tuple[int, int, int],
                                                                     np.ndarray]:
    """The client's count vectors for a batch in embsim's layout (bags table-major:
    ``offsets[t * batch_size + s]``), per (sample, table, digit), over each digit table's
    rows (weights summed when the batch has per-lookup weights)."""
    out = {}
    for t, n in enumerate(rows):
        base = digit_rows(n, digits)
        for s in range(batch_size):
            lo, hi = offsets[t * batch_size + s], offsets[t * batch_size + s + 1]
            idx = indices[lo:hi].astype(np.int64)
            w = np.ones(idx.size) if weights is None else weights[lo:hi].astype(np.float64)
            for j in range(digits):
                out[(s, t, j)] = np.bincount((idx // base ** j) % base, weights=w,
                                             minlength=base).astype(np.float64)
    return out
