"""The host memory a point will need, estimated from its config and trace metadata before any
of it is allocated, and the refusal of a point whose estimate is above the machine's limit.

The estimate adds the dominant arrays of a run (each is named with the field that drives it):

- the row cache's bookkeeping, as its kind allocates it (``RowCache.memory_bytes``), and the
  dirty flags and rows of training's write-back;
- the profile of reads per row that ranked placements and profiled caches use, and the
  per-row arrays of the ``hot_rows`` placement;
- the lookups of the batches in flight (the batch, its query's per-lookup arrays and the
  stages' temporaries; a closed loop has up to ``concurrency`` batches in flight), the draws
  that generate a batch, and the generated workload kept in memory between points;
- the tables that ``run.functional`` materialises, its copy of the cache, and its per-lookup
  row values;
- the private cache's tags.

The per-lookup and per-row constants were measured (peak resident-size growth of real runs;
``tests/test_memory_estimate.py`` checks one against tracemalloc's peak); the estimate aims
at the right factor of two, not at the byte. Zero-filled arrays count whole, as a long run
touches them. Python's, numba's and the libraries' own footprint is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from embsim.machine import refuse_above
from embsim.units import format_size
from hwmodels.cache.row_cache import ROW_CACHES, parse_options
from simulator.core.config import Experiment, WorkloadConfig
from simulator.core.placement import RANKED
from simulator.core.workload import KEEP_LOOKUPS, trace_path
from traces.parquet_io import READ_CHUNK_LOOKUPS, open_trace
from traces.schema import TraceMeta

LOOKUP_BYTES = 96
"""Per lookup of a query in flight: its batch's index, the query's per-lookup arrays (rows,
sizes, tiers, addresses, hits, slots, units) and the stages' temporaries."""
UNIFORM_DRAW_BYTES = 24
"""Per lookup while a uniform batch is drawn (bounds, draws, int64 copy)."""
ZIPF_DRAW_BYTES = 16
"""Per Zipf draw (``zipf_oversample`` per lookup) while a skewed batch is drawn."""
INVERSION_DRAW_BYTES = 8
"""Per lookup while the ``inversion`` sampler draws a skewed batch (its rows; the kernel
draws in place, and needs no row permutation)."""
KEPT_LOOKUP_BYTES = 8
"""Per lookup of a generated workload kept in memory (its row; weights add 4)."""
PROFILE_ROW_BYTES = 16
"""Per row of the key space: the profile of reads and one batch's ``bincount``."""
HOT_ROWS_ROW_BYTES = 64
"""Per row of the key space while ``hot_rows`` ranks and places the rows."""
WRITE_BACK_SLOT_BYTES = 9
"""Per cache slot in training: its dirty flag and the row it holds."""
READ_CHUNK_BYTES = 48
"""Per lookup of a trace's read chunk (its columns as Arrow and as int64)."""
FUNCTIONAL_LOOKUP_BYTES = 8
"""Per lookup and element of a row in the functional check (delivered and masked rows)."""
LINE_BYTES = 17
"""Per line of the private cache (tag, metadata, dirty flag)."""


@dataclass(frozen=True)
class Need:
    """One part of the estimate: what it is, the field that drives it, its bytes."""

    what: str
    field: str
    bytes: int


def rows_field(workload: WorkloadConfig) -> str:
    """The field that sets the tables' rows (what per-row arrays grow with)."""
    gen = workload.generator
    if gen is None:
        return "workload.trace"
    if gen.tables is not None:
        return "workload.generator.tables"
    return "workload.generator.rows" if gen.rows is not None else "workload.generator.model"


def batch_lookups(exp: Experiment, meta: TraceMeta, source: str) -> float:
    """Lookups of one batch: batch size x mean pooling summed over tables (generated), the
    mean over the file's batches (trace)."""
    if exp.workload.trace is not None:
        reader = open_trace(trace_path(exp.workload, source))
        return reader.num_lookups / max(meta.num_batches or 1, 1)
    return float(meta.batch_size * sum(meta.provenance["pooling"]))


def cache_needs(exp: Experiment, meta: TraceMeta, slots: int, source: str) -> list[Need]:
    """The row cache's arrays (and write-back's, in training)."""
    cfg = exp.system.cache
    if cfg is None or slots == 0:
        return []
    field = "system.cache.size" if cfg.size is not None else "system.cache.load_factor"
    kind = ROW_CACHES.get(cfg.kind, source=source, field="system.cache.kind")
    options = parse_options(cfg.kind, cfg.options(), source=source)
    needs = [Need(f"the {cfg.kind} row cache's {slots} slots", field,
                  kind.memory_bytes(options, slots, meta.rows))]
    if exp.run.mode == "training":
        needs.append(Need("write-back of the cache's slots", field,
                          WRITE_BACK_SLOT_BYTES * slots))
    return needs


def row_needs(exp: Experiment, meta: TraceMeta) -> list[Need]:
    """Per-row arrays: the read profile and the ``hot_rows`` placement."""
    rows = meta.total_rows
    cache = exp.system.cache
    profiled = exp.system.tables.placement in RANKED or (
        cache is not None and ROW_CACHES.get(cache.kind).needs_profile)
    cores = exp.system.compute.cores
    profiled = profiled or (cores is not None and (cores.mapping == "asymmetric"
                                                   or cores.strategy == "l1"))
    needs = []
    if profiled:
        needs.append(Need(f"the read profile of {rows} rows", rows_field(exp.workload),
                          PROFILE_ROW_BYTES * rows))
    if exp.system.tables.placement == "hot_rows":
        needs.append(Need(f"hot_rows placement of {rows} rows", "system.tables.placement",
                          HOT_ROWS_ROW_BYTES * rows))
    return needs


def workload_needs(exp: Experiment, meta: TraceMeta, lookups: float) -> list[Need]:
    """The batches in flight, drawing one, and a generated workload kept in memory."""
    batches = meta.num_batches or 1
    if exp.workload.max_batches is not None:
        batches = min(batches, exp.workload.max_batches)
    arrivals = exp.run.arrivals
    in_flight = min(arrivals.concurrency, batches) if arrivals.mode == "closed" else 1
    gen = exp.workload.generator
    size_field = "workload.trace" if gen is None else "workload.generator.batch_size"
    needs = [Need(f"a batch of {lookups:.3g} lookups", size_field, int(LOOKUP_BYTES * lookups))]
    if in_flight > 1:
        more = int(LOOKUP_BYTES * lookups * (in_flight - 1))
        needs.append(Need(f"{in_flight - 1} more batches in flight",
                          "run.arrivals.concurrency", more))
    if gen is None:
        needs.append(Need("the trace's read chunk", "workload.trace",
                          READ_CHUNK_BYTES * READ_CHUNK_LOOKUPS))
        return needs
    inversion = gen.sampler == "inversion" and gen.alpha > 0
    if inversion:
        draw = INVERSION_DRAW_BYTES
    else:
        draw = ZIPF_DRAW_BYTES * gen.zipf_oversample if gen.alpha > 1 else UNIFORM_DRAW_BYTES
    needs.append(Need("drawing a batch", size_field, int(draw * lookups)))
    if gen.alpha > 1 and not inversion:
        needs.append(Need("Zipf row permutations", rows_field(exp.workload),
                          8 * meta.total_rows + 8 * int(meta.rows.max())))
    total = lookups * (meta.num_batches or 1)
    if total <= KEEP_LOOKUPS:
        per_lookup = KEPT_LOOKUP_BYTES + (4 if gen.weighted else 0)
        needs.append(Need("the generated workload kept in memory", "workload.generator.batches",
                          int(per_lookup * total)))
    return needs


def functional_needs(exp: Experiment, meta: TraceMeta, slots: int,
                     lookups: float) -> list[Need]:
    """``run.functional``'s materialised tables, cache copy and per-lookup row values."""
    if not exp.run.functional:
        return []
    dim = max(t.dim for t in meta.tables)
    stored = sum(t.rows * max(t.row_bytes, 4 * t.dim) for t in meta.tables)
    return [Need("the tables run.functional materialises", "run.functional",
                 4 * dim * meta.total_rows + stored + slots * (4 * dim + 16)
                 + int(FUNCTIONAL_LOOKUP_BYTES * dim * lookups))]


def processor_needs(exp: Experiment) -> list[Need]:
    """The private cache's tags and sets."""
    private = exp.system.compute.private_cache
    if private is None:
        return []
    lines = int(private.size // private.line)
    return [Need("the private cache's tags", "system.compute.private_cache.size",
                 LINE_BYTES * lines + 8 * (lines // private.ways))]


def estimate(exp: Experiment, meta: TraceMeta, slots: int, source: str) -> list[Need]:
    """Every part of the estimate for a point with a row cache of ``slots`` slots (0: none)."""
    lookups = batch_lookups(exp, meta, source)
    return [*cache_needs(exp, meta, slots, source), *row_needs(exp, meta),
            *workload_needs(exp, meta, lookups), *functional_needs(exp, meta, slots, lookups),
            *processor_needs(exp)]


def estimated_bytes(exp: Experiment, meta: TraceMeta, slots: int, source: str) -> int:
    """The host memory the point is estimated to need, in bytes."""
    return sum(need.bytes for need in estimate(exp, meta, slots, source))


def check_memory(exp: Experiment, meta: TraceMeta, slots: int, limit: int,
                 source: str) -> None:
    """``InputError`` naming the largest part's field when the estimate is above ``limit``."""
    needs = estimate(exp, meta, slots, source)
    largest = max(needs, key=lambda need: need.bytes)
    refuse_above(sum(need.bytes for need in needs), limit,
                 f"the point (most of it {largest.what}: {format_size(largest.bytes)})",
                 source=source, field=largest.field)
