"""The time of a uniform pooling microbenchmark as the engine models it, and fits to runs.

A run pools ``tables`` x ``batch_size`` bags of ``pooling`` uniform random rows from tables
of ``footprint_bytes`` in all (one table call after another). The compute tier moves whole
lines: the lines each row touches (more than its bytes where rows straddle lines) and each
output rounded up to lines. The engine's time for it is

    pool  = processor costs (per query, table call, bag, lookup, element, longest-bag row,
            lookup of a row that is not whole vectors, and of such a row of 16-bit floats
            not in the private cache)
            + TLB misses x miss time + walks whose page-table entry misses the private
              cache x walk miss time + private-cache lines x line time
            + bytes read at the compute tier (rows not in the private cache, and the pooled
              outputs written) / the compute tier's bandwidth
    fetch = bytes that miss the cache level / memory bandwidth
    time  = max(pool, fetch) behind a hardware cache (misses stream while hits are read),
            pool + fetch behind a software cache.

Hit counts follow from uniform rows: an LRU holding ``K`` of a table's ``R`` units (rows or
pages) hits with probability ``min(1, K / R)`` once warm. A call that starts with other
tables' units in the cache first misses on each distinct unit it touches; when every table
fits, the cache stays warm across calls. A walk's entry competes with the rows' lines in the
private cache: its hit probability is Che's approximation of an LRU over both populations
(``entry_hit_share``). ``Structures`` says which of the processor's private cache and TLB a
fit assumes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, nnls

from embsim.errors import InputError
from hwmodels.tier import touched_units
from simulator.core.config import is_half_remainder
from simulator.core.processor import ENTRY_BYTES
from simulator.grounding.microbench import PAGE_BYTES, Sample

COSTS = ("query_overhead", "call_overhead", "bag_overhead", "lookup_overhead",
         "element_overhead", "lookup_chain_latency")
REMAINDER = "remainder_overhead"
"""The extra cost of a lookup whose row is not a whole number of SIMD vectors
(``ComputeConfig.remainder_overhead``)."""
HALF_REMAINDER = "half_remainder_overhead"
"""The further cost of such a lookup where its row is of 16-bit floats and not in the private
cache (``ComputeConfig.half_remainder_overhead``)."""
TERMS = (*COSTS, "compute_bytes", "private_lines", "tlb_misses", "walk_misses", REMAINDER,
         HALF_REMAINDER)
"""Columns of ``terms``: units of work whose costs the processor fit solves for."""
FLOOR = "lookup_floor"
"""The least processor time of a lookup (``ComputeConfig.lookup_floor``): not a column of
``terms`` but a bound on two of them (``floor_term``)."""
LOOKUPS, ELEMENTS = TERMS.index("lookup_overhead"), TERMS.index("element_overhead")


@dataclass(frozen=True)
class Structures:
    """The processor's private cache and TLB a fit assumes (size 0: absent), and the SIMD
    width in elements its kernel cuts rows into (0: unknown, no remainder cost)."""

    private_bytes: int = 0
    tlb_entries: int = 0
    line: int = 64
    page: int = PAGE_BYTES
    vector_elements: int = 0


NO_STRUCTURES = Structures()
"""A processor whose rows all come from its cache level (a GPU's fit)."""


def expected_hits(accesses: float, units: float, capacity: float, tables: int,
                  fits_all: bool) -> float:
    """Expected LRU hits of ``accesses`` uniform accesses to ``units`` units in one table call,
    with room for ``capacity`` units (see the module docstring)."""
    if fits_all:
        return accesses
    share = min(1.0, capacity / units)
    if tables == 1:
        return accesses * share
    distinct = units * -math.expm1(-accesses / units)
    return max(0.0, accesses - distinct) * share


def entry_hit_share(rows: float, lines_per_row: float, entry_lines: float, walk_rate: float,
                    capacity: float) -> float:
    """Share of page walks whose entry line hits an LRU of ``capacity`` lines that also holds
    the rows' lines, by Che's approximation: each of ``rows`` rows (``lines_per_row`` lines)
    is read with probability 1 / rows per lookup, each of ``entry_lines`` entry lines with
    ``walk_rate`` / entry_lines; the characteristic time T fills the capacity."""
    if walk_rate <= 0 or rows * lines_per_row + entry_lines <= capacity:
        return 1.0

    def occupied(t: float) -> float:
        return (rows * lines_per_row * -math.expm1(-t / rows)
                + entry_lines * -math.expm1(-walk_rate * t / entry_lines))

    low, high = 0.0, 1.0
    while occupied(high) < capacity:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if occupied(mid) < capacity else (low, mid)
    return -math.expm1(-walk_rate * low / entry_lines)


@functools.cache
def mean_touched_lines(row: float, line: int) -> float:
    """Lines a row of ``row`` bytes touches on average when a table's rows lie back to back
    from a line boundary (a row that is not a whole number of lines straddles some), counted
    as the engine counts them (``touched_units``) over one period of the rows' offsets."""
    size = max(1, round(row))
    period = line // math.gcd(size, line)         # rows until the offsets repeat
    _, count = touched_units(np.arange(period, dtype=np.int64) * size,
                             np.full(period, size), line)
    return float(count.mean())


def terms(sample: Sample, structures: Structures = NO_STRUCTURES) -> np.ndarray:
    """Units of work of a run, in the order of ``TERMS``. A run with ``hot_rows``
    (``microbench.page_gather``) draws its lookups from that many rows of each table, one per
    page, each in lines of its own; the others draw from every row."""
    p = sample.params
    tables, batch, pooling = p["tables"], p["batch_size"], p["pooling"]
    bags = tables * batch
    lookups = bags * pooling
    row = p["bytes"] / lookups
    per_call = batch * pooling
    footprint = p["footprint_bytes"]
    hot = p.get("hot_rows")
    whole_lines = math.ceil(row / structures.line)
    row_lines = whole_lines if hot else mean_touched_lines(row, structures.line)
    line_span = whole_lines * structures.line
    rows, span = (hot, line_span) if hot else (p["rows"], row)
    pages = hot if hot else max(1.0, footprint / tables / structures.page)
    near_rows = lines = misses = walks = 0.0
    if structures.private_bytes:
        near_rows = tables * expected_hits(per_call, rows, structures.private_bytes / span,
                                           tables, tables * rows * span <= structures.private_bytes)
        lines = near_rows * row_lines
    if structures.tlb_entries:
        entries = structures.tlb_entries
        misses = tables * (per_call - expected_hits(per_call, pages, entries, tables,
                                                    tables * pages <= entries))
        walks = misses
        if structures.private_bytes:
            entry_lines = math.ceil(tables * pages * ENTRY_BYTES / structures.line)
            occupied = whole_lines if hot else row / structures.line
            walks *= 1 - entry_hit_share(tables * rows, occupied,
                                         entry_lines, misses / lookups,
                                         structures.private_bytes / structures.line)
    compute_bytes = ((lookups - near_rows) * row_lines * structures.line
                     + bags * line_span)      # rows' lines and outputs, each from a line
    vector = structures.vector_elements
    remainders = lookups if vector and p["dim"] % vector else 0
    far_half = (lookups - near_rows
                if is_half_remainder(p.get("dtype"), p["dim"], vector) else 0)
    return np.array([1, tables, bags, lookups, lookups * p["dim"], tables * pooling,
                     compute_bytes, lines, misses, walks, remainders, far_half], dtype=float)


def element_bytes(sample: Sample) -> float:
    """Bytes per element of a run's rows (4 for float32)."""
    p = sample.params
    return p["bytes"] / (p["tables"] * p["batch_size"] * p["pooling"] * p["dim"])


def floor_term(rows: np.ndarray, per_lookup: float, per_element: float,
               floor: float) -> np.ndarray:
    """What a lookup floor adds to runs (``rows``: their ``terms``): each lookup's processor
    time raised to ``floor`` where its per-lookup and per-element costs fall short of it (a
    run's tables share one row width, so the shortfall is the same for each of its lookups)."""
    return np.maximum(0.0, floor * rows[:, LOOKUPS]
                      - (per_lookup * rows[:, LOOKUPS] + per_element * rows[:, ELEMENTS]))


FLOOR_STARTS = (0.25, 0.5, 0.75, 1.0)
"""Starting floors of the floor fit, as fractions of the fastest run's time per lookup."""
FLOOR_GAIN = 1e-4
"""Root-mean-square relative error a fitted floor must remove to be kept (0.01 %)."""
NOISE = 1e-9
"""Costs the least-squares step leaves below this share of the largest (scaled) cost are its
rounding, not a fit: they are zero, as NNLS leaves them."""


def _fit_floor(scaled: np.ndarray, lookups: np.ndarray, columns: list[int],
               start: np.ndarray) -> tuple[np.ndarray, float]:
    """Scaled costs and a lookup floor (seconds) minimising the squared relative error of
    ``scaled @ costs + floor_term`` (``scaled``: the used terms over their scale and the runs'
    seconds, as the NNLS sees them; ``lookups``: lookups over seconds), from the NNLS solution
    ``start`` and several starting floors. The floor stays zero unless it lowers the error by
    ``FLOOR_GAIN`` (a floor no run reaches changes nothing and says nothing)."""
    lookup_col = columns.index(LOOKUPS) if LOOKUPS in columns else None
    element_col = columns.index(ELEMENTS) if ELEMENTS in columns else None

    def residuals(x: np.ndarray) -> np.ndarray:
        costs, floor = x[:-1], x[-1]
        processor = np.zeros(lookups.size)
        for col in (lookup_col, element_col):
            if col is not None:
                processor += scaled[:, col] * costs[col]
        return scaled @ costs + np.maximum(0.0, floor * lookups - processor) - 1.0

    def rms(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(residuals(x) ** 2)))

    best = np.append(start, 0.0)
    plain = rms(best)
    for fraction in FLOOR_STARTS:
        x0 = np.append(start, fraction / lookups.max())
        found = least_squares(residuals, x0, bounds=(0.0, np.inf), x_scale="jac").x
        costs = found[:-1]
        found[:-1] = np.where(costs < NOISE * costs.max(), 0.0, costs)
        if rms(found) < min(rms(best), plain - FLOOR_GAIN):
            best = found
    return best[:-1], float(best[-1])


def fit_processor(samples: list[Sample], structures: Structures = NO_STRUCTURES,
                  walk_time: float = 0.0, floor: bool = False) -> dict[str, float]:
    """Seconds per unit of each term (``bandwidth`` for the compute tier's bytes), by NNLS on
    relative error over runs served from the cache level. Terms no run has are zero, and so is
    the per-element cost when every run's rows have the same element type (elements and bytes
    are then proportional, and the runs cannot tell them apart). The cost of a walk that
    misses the private cache is given (``walk_time``: ``fit_memory`` fits it on tables far
    larger than the caches, where walks miss). With ``floor``, a lookup floor
    (``lookup_floor``) is fitted with the costs by least squares on the same error, starting
    from the NNLS solution; without it, or where no floor improves the fit, it is zero. The
    floor bounds the per-lookup and per-element costs only, so runs of one element type (whose
    per-element cost sits in the bytes) cannot show it: it stays zero there."""
    A = np.array([terms(s, structures) for s in samples])
    walk = TERMS.index("walk_misses")
    seconds = np.array([s.seconds for s in samples]) - A[:, walk] * walk_time
    seconds = np.maximum(seconds, 1e-3 * np.array([s.seconds for s in samples]))
    scale = A.max(axis=0)
    used = scale > 0
    used[walk] = False
    if len({element_bytes(s) for s in samples}) < 2:
        used[TERMS.index("element_overhead")] = False
    solution = np.zeros(len(TERMS))
    scaled = A[:, used] / scale[used] / seconds[:, None]
    solution[used], _ = nnls(scaled, np.ones(len(samples)))
    lookup_floor = 0.0
    if floor:
        solution[used], lookup_floor = _fit_floor(scaled, A[:, LOOKUPS] / seconds,
                                                  list(np.flatnonzero(used)), solution[used])
    per_unit = dict(zip(TERMS, solution / np.where(used, scale, 1.0), strict=True))
    per_unit["walk_misses"] = walk_time
    per_unit[FLOOR] = lookup_floor
    per_byte = per_unit.pop("compute_bytes")
    return per_unit | {"bandwidth": 1.0 / per_byte if per_byte > 0 else 1e15}


def pool_seconds(sample: Sample, fit: dict[str, float], structures: Structures) -> float:
    """The pooling stage's time for a run whose rows all come from the cache level."""
    per_unit = np.array([*(fit[t] for t in COSTS), 1.0 / fit["bandwidth"],
                         fit["private_lines"], fit["tlb_misses"], fit.get("walk_misses", 0.0),
                         fit.get(REMAINDER, 0.0), fit.get(HALF_REMAINDER, 0.0)])
    row = terms(sample, structures)
    shortfall = floor_term(row[None, :], fit["lookup_overhead"], fit["element_overhead"],
                           fit.get(FLOOR, 0.0))
    return float(row @ per_unit + shortfall[0])


def relative_error(samples: list[Sample], fit: dict[str, float],
                   structures: Structures) -> float:
    """Mean absolute relative error of the processor fit on runs served from the cache."""
    return float(np.mean([abs(pool_seconds(s, fit, structures) / s.seconds - 1)
                          for s in samples]))


def missed_bytes(sample: Sample, cache_bytes: float) -> float:
    """Row bytes of a run that miss a cache level of ``cache_bytes`` (uniform rows)."""
    return sample.params["bytes"] * max(0.0, 1.0 - cache_bytes / sample.params["footprint_bytes"])


def fit_memory_bandwidth(samples: list[Sample], fit: dict[str, float], cache_bytes: int,
                         overlapped: bool, structures: Structures = NO_STRUCTURES) -> float:
    """Bytes/s of the memory behind the cache level, from runs over tables larger than it.

    Behind a hardware cache (``overlapped``) the run lasts as long as fetching its misses
    (it is memory-bound); behind a software cache, as long as the pooling stage plus that.
    """
    if not samples:
        raise InputError("no pooling runs over tables larger than the cache to fit memory "
                         "bandwidth to", field="microbenchmarks")
    missed = np.array([missed_bytes(s, cache_bytes) for s in samples])
    spent = np.array([s.seconds if overlapped else s.seconds - pool_seconds(s, fit, structures)
                      for s in samples])
    return float(np.dot(missed, missed) / np.dot(missed, np.maximum(spent, 1e-12)))


WALK_TIMES = np.concatenate([[0.0], np.geomspace(0.1e-9, 1e-6, 161)])
"""Costs of a page walk that misses the private cache that ``fit_memory`` chooses among."""


def row_sizes(samples: list[Sample]) -> set[float]:
    """The distinct row sizes (bytes) of some runs."""
    return {s.params["bytes"] / (s.params["tables"] * s.params["batch_size"]
                                 * s.params["pooling"]) for s in samples}


def fit_memory(samples: list[Sample], fit: dict[str, float], cache_bytes: int,
               structures: Structures) -> tuple[float, float]:
    """Bytes/s of the memory behind a hardware cache level and seconds per page walk whose
    entry misses the private cache, from runs over tables far larger than the caches: each
    lasts ``max(pool with its walks, fetch)``, fitted on log time. Small rows show the walks
    (a walk per row), large ones the bandwidth, so the walk cost is fitted only from runs of
    at least three row sizes (two unknowns and a check); otherwise it is zero and the
    bandwidth is ``fit_memory_bandwidth``'s."""
    walk = TERMS.index("walk_misses")
    walks = np.array([terms(s, structures)[walk] for s in samples])
    if len(row_sizes(samples)) < 3 or not walks.any():
        return fit_memory_bandwidth(samples, fit, cache_bytes, True, structures), 0.0
    seconds = np.array([s.seconds for s in samples])
    missed = np.array([missed_bytes(s, cache_bytes) for s in samples])
    base = np.array([pool_seconds(s, fit | {"walk_misses": 0.0}, structures) for s in samples])
    rates = missed / seconds
    bandwidths = np.geomspace(rates.min() / 4, rates.max() * 4, 400)
    pool = base[None, None, :] + WALK_TIMES[:, None, None] * walks[None, None, :]
    fetch = missed[None, None, :] / bandwidths[None, :, None]
    error = (np.log(np.maximum(pool, fetch) / seconds) ** 2).sum(axis=2)
    w, b = np.unravel_index(np.argmin(error), error.shape)
    return float(bandwidths[b]), float(WALK_TIMES[w])


def fit_cache_capacity(samples: list[Sample], fit: dict[str, float], memory_bw: float,
                       reported: int, structures: Structures = NO_STRUCTURES) -> int:
    """The cache level's capacity (bytes) that best explains pooling time against table
    footprint, behind a hardware cache: ``max(pool, fetch)``. Searched among 1/64 .. 1x the
    reported size (a cache shared with other tenants gives less than it says)."""
    pools = [pool_seconds(s, fit, structures) for s in samples]

    def error(capacity: float) -> float:
        return sum(((max(pool, missed_bytes(s, capacity) / memory_bw) - s.seconds)
                    / s.seconds) ** 2 for s, pool in zip(samples, pools, strict=True))

    candidates = reported / 2 ** np.linspace(6, 0, 49)
    return int(min(candidates, key=error))


def best_tlb(samples: list[Sample], private_bytes: int, candidates: tuple[int, ...],
             vector_elements: int = 0) -> tuple[Structures, dict[str, float]]:
    """The TLB size (among ``candidates``) whose processor fit explains the runs best, with
    that fit."""
    fits = []
    for entries in candidates:
        structures = Structures(private_bytes=private_bytes, tlb_entries=entries,
                                vector_elements=vector_elements)
        fit = fit_processor(samples, structures)
        fits.append((relative_error(samples, fit, structures), entries, structures, fit))
    _, _, structures, fit = min(fits, key=lambda f: (f[0], f[1]))
    return structures, fit
