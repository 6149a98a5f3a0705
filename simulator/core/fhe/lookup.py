"""Encrypted embedding lookups (HE-LRM, Garimella et al., arXiv 2506.18150): what one query's
lookups cost in CKKS operations, from its shapes alone.

The client holds the indices; the server holds plaintext tables. For each sample and table the
client sends, encrypted, the counts of each row in the sample's bag (a one-hot vector for one
lookup, a multi-hot one for a bag), so the server's product of that vector with the table is
the pooled (summed) embedding, whatever the rows: **the cost of an encrypted lookup does not
depend on which rows are read**, only on the tables' shapes, the batch and the scheme.

- **One-hot** (``digits: 1``): a table of ``n`` rows and ``d`` columns is one block of
  ``p = pow2(max(n, d))`` rows (zero rows pad it) and ``dp = pow2(d)`` columns. The vector-
  matrix product uses ``dp`` extended diagonals with baby-step giant-step rotations
  (``n1 = pow2(ceil(sqrt(dp)))`` baby steps, ``n2 = dp / n1`` giant steps), one rescale, then
  a rotate-and-sum of ``log2(p / dp)`` steps folds the ``p`` slots onto the ``d`` outputs. The
  client repeats the first ``dp - 1`` entries after the block (a block takes ``p + dp - 1``
  slots), so the server's rotations never need a second, wrapped copy. A block wider than a
  ciphertext's ``N/2`` slots is cut into chunks of ``N/4`` rows whose products add up before
  the giant steps (only chunks holding rows: padding never costs a product).
- **Digit decomposition** (``digits: k``): the model's table of ``n`` rows is ``k`` tables of
  ``b = ceil(n^(1/k))`` rows (a compressed embedding); the client writes each index in base
  ``b`` and sends one count vector per digit; the embedding is the sum of the ``k`` digit
  tables' rows. ``k`` products of ``b`` rows replace one of ``n``.
- **Packing** (``packing: true``): blocks of the same shape share ciphertexts, ``floor(N/2 /
  (p + dp - 1))`` to one (tables of one sample, then samples when one client sends the batch),
  so one product serves them all; the client adds a packed sample's digit outputs after
  decrypting. A block that does not fit one ciphertext cannot be packed.
- **Keys**: one client's evaluation keys serve a query when it comes from one client
  (``clients: batch``, a user's candidate items scored at once); ``clients: sample`` makes each
  sample a client with its own keys (no packing across samples).
- **Levels**: the client encrypts at the top level; the product and its rescale use one level;
  when fewer than ``levels_after`` levels remain for the rest of the model, each result is
  bootstrapped.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from simulator.core.fhe.ckks import CkksParams


def pow2(x: int) -> int:
    """The smallest power of two at least ``x``."""
    return 1 << max(int(x) - 1, 0).bit_length()


def digit_rows(rows: int, digits: int) -> int:
    """Rows of each digit table: the smallest base ``b`` with ``b ** digits >= rows``."""
    base = max(math.ceil(rows ** (1.0 / digits)), 1)
    while base ** digits < rows:
        base += 1
    while base > 1 and (base - 1) ** digits >= rows:
        base -= 1
    return base


@dataclass(frozen=True)
class Scheme:
    """How a unit looks rows up: digits per index, packing, who sends the batch."""

    digits: int = 1
    packing: bool = False
    clients: str = "batch"
    levels_after: int = 0


@dataclass(frozen=True)
class Block:
    """One (table, digit) product's shape: padded rows per chunk, padded columns, chunks."""

    rows: int
    cols: int
    chunks: int

    def width(self) -> int:
        """Slots one chunk takes: its rows and the repeated first ``cols - 1`` entries."""
        return self.rows + self.cols - 1


class PlanError(ValueError):
    """A shape the scheme cannot run: (field, message)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


def block_of(rows: int, dim: int, params: CkksParams, packing: bool) -> Block:
    """The block one table (or digit table) of ``rows`` x ``dim`` takes."""
    cols = pow2(dim)
    padded = pow2(max(rows, cols))
    if padded + cols - 1 <= params.slots:
        return Block(padded, cols, 1)
    if packing:
        raise PlanError("packing", f"a table of {rows} rows and dim {dim} takes "
                                   f"{padded + cols - 1} slots, more than the {params.slots} "
                                   f"of one ciphertext (ring_dim {params.ring_dim}), so it "
                                   f"cannot be packed; use packing: false, more digits or a "
                                   f"larger ring_dim")
    chunk = params.slots // 2
    if cols > chunk:
        raise PlanError("ring_dim", f"dim {dim} needs at least {4 * cols} as ring_dim")
    return Block(chunk, cols, math.ceil(rows / chunk))


@dataclass
class LookupPlan:
    """One query's encrypted lookups as CKKS operations and the bytes they move."""

    params: CkksParams
    server: Counter = field(default_factory=Counter)
    """(operation, limbs) -> count, on the server."""
    client: Counter = field(default_factory=Counter)
    """(operation, limbs) -> count, on the client (encode, encrypt, decrypt, decode)."""
    rotation_steps: set[int] = field(default_factory=set)
    """Distinct rotation amounts: one key each, per client."""
    clients: int = 1
    uploads: int = 0
    downloads: int = 0
    plaintext_reads: int = 0
    """Encoded diagonals read (one per plaintext multiply)."""
    raw_values: int = 0
    """Plain table values those diagonals hold (what encoding them on the fly reads)."""
    stored_plaintexts: int = 0
    """Encoded diagonals the server keeps for these tables."""
    working_ciphertexts: int = 0
    """Ciphertexts one product keeps live at once (input, baby-step rotations, sums)."""
    bootstraps: int = 0

    @property
    def limbs_in(self) -> int:
        return self.params.top_limbs

    def key_bytes(self) -> int:
        """Bytes of every evaluation key the query's rotations use, over its clients."""
        return len(self.rotation_steps) * self.params.key_bytes() * self.clients

    def upload_bytes(self) -> int:
        return self.uploads * self.params.wire_bytes(self.limbs_in)

    def download_bytes(self) -> int:
        return self.downloads * self.params.wire_bytes(self.limbs_in - 1)


def _steps(block: Block) -> tuple[int, int, list[int]]:
    """(baby steps, giant steps, every rotation amount) of a block's product."""
    n1 = pow2(math.isqrt(block.cols - 1) + 1) if block.cols > 1 else 1
    n1 = min(n1, block.cols)
    n2 = block.cols // n1
    amounts = list(range(1, n1)) + [g * n1 for g in range(1, n2)]
    fold = block.cols
    while fold < block.rows:
        amounts.append(fold)
        fold *= 2
    return n1, n2, amounts


def _add_products(plan: LookupPlan, block: Block, outputs: int) -> None:
    """``outputs`` products of one block shape (each its own output ciphertext)."""
    top = plan.limbs_in
    n1, n2, amounts = _steps(block)
    inputs = outputs * block.chunks
    folds = len(amounts) - (n1 - 1) - (n2 - 1)
    plan.server[("rotate", top)] += inputs * (n1 - 1) + outputs * (n2 - 1)
    plan.server[("mul_plain", top)] += inputs * block.cols
    plan.server[("add", top)] += (inputs * n2 * (n1 - 1) + outputs * (block.chunks - 1) * n2
                                  + outputs * (n2 - 1))
    plan.server[("rescale", top)] += outputs
    plan.server[("rotate", top - 1)] += outputs * folds
    plan.server[("add", top - 1)] += outputs * folds
    plan.rotation_steps.update(amounts)
    plan.uploads += inputs
    plan.downloads += outputs
    plan.plaintext_reads += inputs * block.cols
    plan.raw_values += inputs * block.cols * block.rows
    plan.working_ciphertexts = max(plan.working_ciphertexts, n1 + n2 + 1)


def packed_layouts(period: int, per_ct: int, total: int) -> int:
    """Distinct arrangements of blocks over the ciphertexts that pack ``total`` blocks,
    ``per_ct`` to one, in a sequence repeating every ``period`` blocks (one sample's tables
    and digits): each needs its own encoded diagonals."""
    count = -(-total // per_ct)
    cycle = period // math.gcd(period, per_ct)
    starts = {(i * per_ct % period, min(per_ct, total - i * per_ct))
              for i in range(min(count, cycle))}
    last = (count - 1) * per_ct
    starts.add((last % period, total - last))
    return len(starts)


def plan_lookups(tables: list[tuple[int, int]], batch_size: int, scheme: Scheme,
                 params: CkksParams) -> LookupPlan:
    """The plan of one query: ``batch_size`` samples, each one bag per table of ``tables``
    ((rows, dim) each)."""
    if params.levels < 1:
        raise PlanError("levels", "an encrypted lookup needs at least 1 level (its product "
                                  "is rescaled once)")
    plan = LookupPlan(params, clients=batch_size if scheme.clients == "sample" else 1)
    blocks: Counter = Counter()                     # block shape -> blocks per sample
    for rows, dim in tables:
        sub = digit_rows(rows, scheme.digits) if scheme.digits > 1 else rows
        blocks[block_of(sub, dim, params, scheme.packing)] += scheme.digits
    for block, per_sample in blocks.items():
        if scheme.packing:
            per_ct = params.slots // block.width()
            if scheme.clients == "sample":
                outputs = batch_size * math.ceil(per_sample / per_ct)
                layouts = math.ceil(per_sample / per_ct)
            else:
                outputs = math.ceil(batch_size * per_sample / per_ct)
                layouts = packed_layouts(per_sample, per_ct, batch_size * per_sample)
            _add_products(plan, block, outputs)
            plan.stored_plaintexts += layouts * block.cols
        else:
            _add_products(plan, block, batch_size * per_sample)
            plan.stored_plaintexts += per_sample * block.chunks * block.cols
            if scheme.digits > 1:                   # the server adds a table's digit outputs
                summed = batch_size * per_sample // scheme.digits
                plan.server[("add", plan.limbs_in - 1)] += summed * (scheme.digits - 1)
                plan.downloads -= summed * (scheme.digits - 1)
    plan.server = +plan.server                      # drop the operations that never run
    if params.levels - 1 < scheme.levels_after:
        plan.bootstraps = plan.downloads
    plan.client[("encode", plan.limbs_in)] += plan.uploads
    plan.client[("encrypt", plan.limbs_in)] += plan.uploads
    plan.client[("decrypt", plan.limbs_in - 1)] += plan.downloads
    plan.client[("decode", plan.limbs_in - 1)] += plan.downloads
    return plan
