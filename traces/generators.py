"""Synthetic traces with the semantics of FBGEMM's ``generate_requests``.

Reference: ``fbgemm_gpu/tbe/utils/requests.py`` in pytorch/FBGEMM. For every batch and table:

- **Pooling** (lookups per bag): ``pooling_dist`` ``"fixed"`` uses round(L) for every bag.
  ``"normal"`` draws round(N(L, sigma)) per bag; ``"lognormal"`` draws round(X) with
  ln X ~ N(ln L - sigma^2/2, sigma), so that E[X] = L and ``sigma`` is the log-space sigma. Both
  variable distributions are clipped to at least 1 lookup per bag (FBGEMM clips at 0, which
  would make empty bags; embsim keeps every bag non-empty so the mean stays close to L for
  small sigma) and, when alpha > 1, to at most the table's rows. Unlike FBGEMM, which tiles one
  draw over all iterations, lengths are drawn afresh for every batch.
- **Rows**, alpha <= 1: uniform over ``[0, rows)`` with replacement (``torch.randint``).
- **Rows**, alpha > 1: ``zipf_oversample`` x L draws from numpy's Zipf(alpha) per bag, mapped
  to ``(x - 1) mod rows``; the bag keeps its first L distinct values in draw order (sampling
  without replacement). A bag with fewer than L distinct values is redrawn up to
  ``ZIPF_ATTEMPTS`` times, then ``InputError`` ("alpha too large"). Rows are then mapped through
  one random permutation per table, drawn once per ``synthesize`` call, so the hot rows are
  scattered over the table instead of sitting at the lowest ids.
- **Sampler** (``sampler``): the above is ``"numpy"``, the default. ``"inversion"`` (opt-in,
  not FBGEMM's; its traces differ from the default's for the same seed) draws, for every
  alpha > 0, a bounded Zipf(alpha) over exactly the table's ranks 1..rows (no folding) by
  rejection-inversion in a compiled kernel with its own seeded random streams, redraws a rank
  already in the bag (at most ``zipf_oversample x ZIPF_ATTEMPTS`` draws per lookup, then the
  same "alpha too large" ``InputError``), and maps rank k to row ``scatter(k - 1)``, a keyed
  bijection of ``[0, rows)`` in place of the permutation (see ``traces.inversion``). Alpha 0
  is uniform, drawn as above.
- **Reuse**: in batch i+1, ``int(n * reuse)`` random positions of each table's n lookups take
  the row at the same position in batch i (FBGEMM's ``update_indices_with_random_reuse``).
  With variable pooling the positions are drawn among the first min(n_i, n_i+1) lookups
  (FBGEMM refuses that combination). Copied rows may repeat a row already in the bag.

- **Weights** (``weighted``): each lookup gets a per-sample weight uniform in [0, 1), as
  FBGEMM's ``weighted`` requests, from a second generator (``default_rng([seed, 1])``) so that
  the rows do not depend on whether weights are drawn.

Bags list their rows in draw order. All randomness comes from
``numpy.random.default_rng(seed)`` (and the weights' generator): the same arguments give the
same trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
from numba import njit, prange

from embsim.errors import InputError
from embsim.limits import MAX_BATCH_LOOKUPS, MAX_LOOKUPS
from embsim.registry import Registry
from traces import inversion, numpy_zipf
from traces.batch import Batch
from traces.schema import TableSpec, TraceMeta

GENERATOR_NAME = "fbgemm_generate_requests"
ZIPF_ATTEMPTS = 4
SAMPLERS = ("numpy", "inversion")
"""Row samplers: ``numpy`` (the default, FBGEMM's folded Zipf) or ``inversion`` (bounded
Zipf by rejection-inversion; see the module doc)."""
INVERSION_CHUNKS = 64
"""Runs of bags the inversion sampler draws in parallel (the trace does not depend on it)."""

GENERATORS: Registry[Callable[..., tuple[TraceMeta, Iterator[Batch]]]] = Registry("generator")

PoolingDraw = Callable[[np.random.Generator, np.ndarray, float, int], np.ndarray]
POOLING_DISTS: Registry[PoolingDraw] = Registry("pooling distribution")


@POOLING_DISTS.register("fixed")
def _fixed(rng: np.random.Generator, mean: np.ndarray, sigma: float, bags: int) -> np.ndarray:
    """Every bag of table t has ``mean[t]`` lookups."""
    return np.repeat(mean[:, None], bags, axis=1)


@POOLING_DISTS.register("normal")
def _normal(rng: np.random.Generator, mean: np.ndarray, sigma: float, bags: int) -> np.ndarray:
    """Normal with location ``mean[t]`` and scale ``sigma``."""
    return rng.normal(mean[:, None], sigma, size=(mean.size, bags))


@POOLING_DISTS.register("lognormal")
def _lognormal(rng: np.random.Generator, mean: np.ndarray, sigma: float,
               bags: int) -> np.ndarray:
    """Log-normal with mean ``mean[t]`` and log-space standard deviation ``sigma``."""
    mu = np.log(mean)[:, None] - sigma**2 / 2
    return rng.lognormal(mu, sigma, size=(mean.size, bags))


@dataclass(frozen=True)
class _Params:
    """Validated generator parameters."""

    rows: np.ndarray
    pooling: np.ndarray
    batches: int
    batch_size: int
    alpha: float
    reuse: float
    pooling_dist: str
    pooling_sigma: float
    zipf_oversample: int
    weighted: bool = False
    sampler: str = "numpy"

    @property
    def zipf(self) -> bool:
        """Whether rows are skewed (distinct per bag): alpha > 1, or alpha > 0 with the
        inversion sampler."""
        return self.alpha > (0.0 if self.sampler == "inversion" else 1.0)


@GENERATORS.register(GENERATOR_NAME)
def synthesize(tables: list[TableSpec], pooling: float | list[float], *, batches: int,
               batch_size: int, alpha: float = 1.0, reuse: float = 0.0,
               pooling_dist: str = "fixed", pooling_sigma: float = 0.0,
               zipf_oversample: int = 3, seed: int = 0, weighted: bool = False,
               sampler: str = "numpy") -> tuple[TraceMeta, Iterator[Batch]]:
    """Metadata and a lazy iterator of ``batches`` synthetic batches (see the module doc).

    ``pooling`` is the mean lookups per bag, one value for all tables or one per table.
    Arguments are checked here, before the first batch is generated.
    """
    params = replace(_validate(tables, pooling, batches, batch_size, alpha, reuse,
                               pooling_dist, pooling_sigma, zipf_oversample, sampler),
                     weighted=weighted)
    provenance = {
        "generator": GENERATOR_NAME, "seed": seed, "alpha": alpha, "reuse": reuse,
        "pooling": params.pooling.tolist(), "pooling_dist": pooling_dist,
        "pooling_sigma": pooling_sigma, "zipf_oversample": zipf_oversample,
        "batches": batches, "batch_size": batch_size,
        **({"weighted": True} if weighted else {}),
        **({"sampler": sampler} if sampler != "numpy" else {}),
    }
    meta = TraceMeta(list(tables), batch_size, num_batches=batches, provenance=provenance)
    weights = np.random.default_rng([seed, 1]) if weighted else None
    return meta, _generate(params, meta.row_base[:-1], np.random.default_rng(seed), weights)


def _validate(tables: list[TableSpec], pooling: float | list[float], batches: int,
              batch_size: int, alpha: float, reuse: float, pooling_dist: str,
              pooling_sigma: float, zipf_oversample: int, sampler: str = "numpy") -> _Params:
    if not tables:
        raise InputError("at least one table is needed", field="tables")
    if sampler not in SAMPLERS:
        raise InputError(f"unknown sampler {sampler!r}; expected one of: {', '.join(SAMPLERS)}",
                         field="sampler")
    mean = np.asarray(pooling, dtype=np.float64)
    if mean.ndim == 0:
        mean = np.full(len(tables), float(mean))
    if mean.shape != (len(tables),):
        raise InputError(f"expected one pooling factor or {len(tables)} (one per table), "
                         f"got {mean.size}", field="pooling")
    checks = [
        (bool(np.all(mean >= 1)), "pooling", f"must be >= 1 lookup per bag, got {pooling}"),
        (batches >= 1, "batches", f"must be >= 1, got {batches}"),
        (batch_size >= 1, "batch_size", f"must be >= 1, got {batch_size}"),
        (alpha >= 0, "alpha", f"must be >= 0 (<= 1 is uniform), got {alpha}"),
        (0.0 <= reuse <= 1.0, "reuse", f"must be a fraction in [0, 1], got {reuse}"),
        (pooling_sigma >= 0, "pooling_sigma", f"must be >= 0, got {pooling_sigma}"),
        (zipf_oversample >= 1, "zipf_oversample", f"must be >= 1, got {zipf_oversample}"),
    ]
    for ok, name, message in checks:
        if not ok:
            raise InputError(message, field=name)
    POOLING_DISTS.get(pooling_dist, field="pooling_dist")
    _check_volume(float(np.sum(mean)) * batch_size, batches)
    rows = np.array([t.rows for t in tables], dtype=np.int64)
    params = _Params(rows, mean, batches, batch_size, float(alpha), float(reuse),
                     pooling_dist, float(pooling_sigma), int(zipf_oversample), sampler=sampler)
    if params.zipf and pooling_dist == "fixed" and np.any(np.rint(mean) > rows):
        t = int(np.flatnonzero(np.rint(mean) > rows)[0])
        skewed = "alpha > 0, inversion sampler" if sampler == "inversion" else "alpha > 1"
        raise InputError(f"table {t}: pooling {mean[t]:g} exceeds its {rows[t]} rows; a bag "
                         f"cannot hold that many distinct rows ({skewed})", field="pooling")
    return params


def _check_volume(batch_lookups: float, batches: int) -> None:
    """Refuse a batch too large for memory or a trace too long to generate (the limits of
    ``embsim.limits``), before anything is drawn."""
    if batch_lookups > MAX_BATCH_LOOKUPS:
        raise InputError(f"a batch would hold about {batch_lookups:.3g} lookups (batch_size x "
                         f"mean pooling summed over tables), some {batch_lookups * 24 / 2**30:.3g}"
                         f" GiB; at most {MAX_BATCH_LOOKUPS} lookups", field="batch_size")
    if batch_lookups * batches > MAX_LOOKUPS:
        raise InputError(f"{batches} batches would hold about {batch_lookups * batches:.3g} "
                         f"lookups; at most {MAX_LOOKUPS:.0e}", field="batches")


def _generate(params: _Params, row_base: np.ndarray, rng: np.random.Generator,
              weights: np.random.Generator | None = None) -> Iterator[Batch]:
    bounded = params.zipf and params.sampler == "inversion"
    permutation = (_row_permutations(params.rows, row_base, rng)
                   if params.zipf and not bounded else None)
    scatter = _InversionSampler(params, rng) if bounded else None
    previous: Batch | None = None
    for index in range(params.batches):
        lengths = _draw_lengths(params, rng)
        table_of_bag = np.repeat(np.arange(params.rows.size), params.batch_size)
        if scatter is not None:
            indices = scatter.rows(lengths.ravel(), table_of_bag, rng)
        elif params.zipf:
            local = _zipf_rows(params, lengths.ravel(), table_of_bag, rng)
            table_of_lookup = np.repeat(table_of_bag, lengths.ravel())
            indices = permutation.take(row_base[table_of_lookup] + local)
        else:
            high = np.repeat(params.rows[table_of_bag], lengths.ravel())
            indices = rng.integers(0, high)
        indices = indices.astype(np.int64, copy=False)
        offsets = np.concatenate([[0], np.cumsum(lengths.ravel())]).astype(np.int64)
        batch = Batch(index, indices, offsets, params.rows.size, params.batch_size,
                      weights=None if weights is None else weights.random(
                          indices.size, dtype=np.float32))
        if previous is not None and params.reuse > 0:
            _copy_reused(previous, batch, params.reuse, rng)
        yield batch
        previous = batch


def _row_permutations(rows: np.ndarray, row_base: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """One random permutation of ``range(rows[t])`` per table, laid end to end."""
    dtype = np.int32 if rows.max() <= np.iinfo(np.int32).max else np.int64
    flat = np.empty(int(rows.sum()), dtype=dtype)
    for base, count in zip(row_base, rows, strict=True):
        flat[base: base + count] = rng.permutation(count)
    return flat


def _draw_lengths(params: _Params, rng: np.random.Generator) -> np.ndarray:
    """Lookups per bag, shape (T, B), int64."""
    draw = POOLING_DISTS.get(params.pooling_dist)
    raw = draw(rng, params.pooling, params.pooling_sigma, params.batch_size)
    upper = params.rows[:, None] if params.zipf else np.iinfo(np.int64).max
    return np.clip(np.rint(raw), 1, upper).astype(np.int64)


def _zipf_rows(params: _Params, need: np.ndarray, table_of_bag: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """``need[b]`` distinct Zipf rows per bag b (local ids, before the permutation)."""
    out_offsets = np.concatenate([[0], np.cumsum(need)]).astype(np.int64)
    out = np.empty(int(out_offsets[-1]), dtype=np.int64)
    pending = np.arange(need.size)
    for _ in range(ZIPF_ATTEMPTS):
        draws_per_bag = need[pending] * params.zipf_oversample
        modulus = np.repeat(params.rows[table_of_bag[pending]], draws_per_bag)
        draws = (numpy_zipf.draw(rng, params.alpha, modulus.size) - 1) % modulus
        draw_offsets = np.concatenate([[0], np.cumsum(draws_per_bag)]).astype(np.int64)
        found = _first_distinct(draws, draw_offsets, need[pending], out, out_offsets[pending])
        pending = pending[found < need[pending]]
        if pending.size == 0:
            return out
    t = int(table_of_bag[pending[0]])
    raise InputError(
        f"alpha too large: {pending.size} bags of table {t} (pooling {params.pooling[t]:g}) "
        f"got fewer distinct rows than their pooling factor from {params.zipf_oversample} x "
        f"pooling Zipf({params.alpha:g}) draws in {ZIPF_ATTEMPTS} attempts; lower alpha or "
        "the pooling factor, or raise zipf_oversample", field="alpha",
    )


class _InversionSampler:
    """The ``inversion`` sampler's per-table constants and scatter keys (drawn once per
    ``synthesize`` call, as the default's permutations are)."""

    def __init__(self, params: _Params, rng: np.random.Generator):
        self.params = params
        self.low, self.high, self.squeeze = inversion.zipf_bounds(params.rows, params.alpha)
        shapes = np.array([inversion.scatter_shape(r) for r in params.rows], dtype=np.int64)
        self.masks, self.shifts = shapes[:, 0].copy(), shapes[:, 1].copy()
        self.keys = rng.integers(0, 2**64, size=(params.rows.size, inversion.SCATTER_KEYS),
                                 dtype=np.uint64, endpoint=False)

    def rows(self, need: np.ndarray, table_of_bag: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
        """``need[b]`` distinct rows per bag b (local ids, scattered)."""
        p = self.params
        out_offsets = np.concatenate([[0], np.cumsum(need)]).astype(np.int64)
        batch_key = rng.integers(0, 2**64, dtype=np.uint64, endpoint=False)
        out, found = inversion.draw_bags(
            need, table_of_bag, out_offsets, p.rows, self.low, self.high, p.alpha,
            self.squeeze, np.uint64(batch_key), p.zipf_oversample * ZIPF_ATTEMPTS, True,
            self.masks, self.shifts, self.keys, min(INVERSION_CHUNKS, need.size))
        short = np.flatnonzero(found < need)
        if short.size:
            t = int(table_of_bag[short[0]])
            raise InputError(
                f"alpha too large: {short.size} bags of table {t} (pooling {p.pooling[t]:g}) "
                f"got fewer distinct rows than their pooling factor from "
                f"{p.zipf_oversample * ZIPF_ATTEMPTS} x pooling bounded Zipf({p.alpha:g}) "
                "draws (sampler inversion); lower alpha or the pooling factor, or raise "
                "zipf_oversample", field="alpha")
        return out


@njit(parallel=True, cache=True)
def _first_distinct(draws: np.ndarray, draw_offsets: np.ndarray, need: np.ndarray,
                    out: np.ndarray, out_start: np.ndarray) -> np.ndarray:
    """Per bag b, copy the first ``need[b]`` distinct draws (in draw order; all >= 0) to
    ``out``.

    Returns how many distinct values each bag found (at most ``need[b]``). Each bag walks
    its draws in order through a small open-addressing set and stops once it has enough, so
    it reads about ``need[b]`` draws of its ``zipf_oversample`` times as many. Bags are
    independent, so they run in parallel.
    """
    found = np.zeros(need.size, dtype=np.int64)
    for b in prange(need.size):
        start, end = draw_offsets[b], draw_offsets[b + 1]
        bits = 4
        while (1 << bits) < 2 * (end - start):
            bits += 1
        seen = np.full(1 << bits, -1, dtype=np.int64)
        mask = (1 << bits) - 1
        k = 0
        for j in range(start, end):
            if k == need[b]:
                break
            value = draws[j]
            at = np.int64((np.uint64(value) * np.uint64(0x9E3779B97F4A7C15))
                          >> np.uint64(64 - bits))
            while seen[at] != -1 and seen[at] != value:
                at = (at + 1) & mask
            if seen[at] == -1:
                seen[at] = value
                out[out_start[b] + k] = value
                k += 1
        found[b] = k
    return found


def _copy_reused(previous: Batch, batch: Batch, reuse: float,
                 rng: np.random.Generator) -> None:
    """Copy ``int(n * reuse)`` random positions per table from the previous batch."""
    prev_bounds, bounds = previous.table_bounds(), batch.table_bounds()
    for t in range(batch.num_tables):
        span = int(min(bounds[t + 1] - bounds[t], prev_bounds[t + 1] - prev_bounds[t]))
        positions = rng.permutation(span)[: int(span * reuse)]
        batch.indices[bounds[t] + positions] = previous.indices[prev_bounds[t] + positions]
