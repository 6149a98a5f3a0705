"""Assemble a simulated system from an experiment's ``system``: tiers, links, the row cache, the
placement of every row, the compute units and the stages each query walks.

The host's tier holds, in order: the tables kept there, the cache slots, the pooled outputs and
(when other units send partial sums) a landing area for the partial vectors. In training each
row's optimizer state sits right after the row in its home tier (FBGEMM keeps optimizer state
out of its cache), so a row takes ``stride`` bytes there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from embsim.errors import InputError
from embsim.units import format_size
from hwmodels.cache.row_cache import ROW_CACHES, RowCache, build_row_cache, parse_options
from hwmodels.cache.write_back import WriteBackRows
from hwmodels.link import Link
from hwmodels.memory import Tier
from simulator.core.config import DIRECT, CacheConfig, ComputeConfig, Experiment
from simulator.core.memory_estimate import check_memory
from simulator.core.placement import RANKED, Placement, TierRoom, align, align_each, place
from simulator.core.processor import Processor
from simulator.core.tiers import BuiltTier, build_links, build_tier, check_name, host_links
from simulator.core.units import (
    HOST,
    ComputeUnit,
    PlacedUnit,
    UnitOptions,
    UnitSite,
    unit_options,
)
from simulator.core.units.assignment import ASSIGNMENTS, Assignment
from simulator.core.units.host import HostUnit
from traces.schema import TraceMeta

if TYPE_CHECKING:
    from simulator.core.dense import DenseModel
    from simulator.core.nodes import Cluster
    from simulator.core.stages import Stage

STATE_BYTES = {"sgd": lambda dim: 0, "rowwise_adagrad": lambda dim: 4,
               "adagrad": lambda dim: 4 * dim}
"""Optimizer state per row (float32), by optimizer: FBGEMM's TBE optimizers."""


@dataclass
class Layout:
    """Row sizes, their footprint in their home tier, and the host tier's cache, outputs and
    partial-sum landing area."""

    row_bytes: np.ndarray           # per table
    stride: np.ndarray              # per table: row + optimizer state in the home tier
    slot_bytes: int = 0             # one cache slot, in the cache's tier
    slot_base: int = 0              # first cache slot's address in the host's tier
    output_base: int = 0            # pooled outputs, in the host's tier
    partial_base: int = 0           # partial vectors other units send, in the host's tier


@dataclass
class System:
    """Devices, placement, layout, compute units and stages of one simulated point."""

    tiers: dict[str, Tier]
    links: dict[str, Link]
    table_tiers: list[str]          # the tiers tables may use, fastest first
    tier_links: list[str | None]    # per table tier: the host's link to it (None: none)
    compute_tier: str
    compute: ComputeConfig
    cache: RowCache | None
    cached: np.ndarray              # per table tier: whether the cache holds its rows
    placement: Placement
    layout: Layout
    training: bool = False
    cache_config: CacheConfig | None = None
    built: dict[str, BuiltTier] = field(default_factory=dict)
    link_sources: dict[str, dict[str, str]] = field(default_factory=dict)
    units: list[ComputeUnit] = field(default_factory=list)      # the host first
    assignment: type[Assignment] = ASSIGNMENTS.get("nearest")
    write_back: WriteBackRows | None = None
    stages: list[Stage] = field(default_factory=list)
    cluster: Cluster | None = None  # remote nodes holding table shards (simulator.core.nodes)
    dense: DenseModel | None = None             # the model's MLPs (system.dense)

    @property
    def compute_index(self) -> int:
        """Index of the host's tier among the table tiers (-1 if tables never live there)."""
        names = self.table_tiers
        return names.index(self.compute_tier) if self.compute_tier in names else -1

    @property
    def host(self) -> HostUnit:
        unit = self.units[0]
        assert isinstance(unit, HostUnit)
        return unit

    @property
    def processor(self) -> Processor | None:
        """The host's TLB and private cache, if it has either."""
        return self.host.processor


def _cache_slots(cache: CacheConfig, kind: type[RowCache], meta: TraceMeta, slot_bytes: int,
                 source: str) -> int:
    """Slots the cache asks for: from ``size``, ``load_factor`` or the kind's own options."""
    load_factor = cache.load_factor
    if load_factor is None and cache.size is None:
        load_factor = kind.own_load_factor(parse_options(cache.kind, cache.options(),
                                                         source=source))
        if load_factor is None:
            raise InputError("give exactly one of 'size' or 'load_factor'", source=source,
                             field="system.cache.size")
    if load_factor is not None:
        return kind.slots_for_load_factor(load_factor, meta.total_rows)
    slots = int(cache.size // slot_bytes)
    if slots < 1:
        raise InputError(f"{format_size(cache.size)} holds no row of {slot_bytes} B",
                         source=source, field="system.cache.size")
    return slots


Profile = Callable[[int | None], np.ndarray]
"""Reads per global row over the first N batches of the trace (all when None)."""


def _check_cache_fits(cache_bytes: int, tier: Tier, name: str, source: str) -> None:
    if cache_bytes > tier.spec.capacity:
        raise InputError(f"the cache needs {format_size(cache_bytes)} but tier {name!r} holds "
                         f"{format_size(tier.spec.capacity)}", source=source,
                         field="system.cache.size")


def _asked_slots(exp: Experiment, meta: TraceMeta, slot_bytes: int, tier: Tier,
                 source: str) -> int:
    """The slots the row cache asks for, checked against ``tier`` before any of its arrays is
    allocated (a cache far beyond the tier would not fit this machine either)."""
    cache_cfg = exp.system.cache
    assert cache_cfg is not None
    kind = ROW_CACHES.get(cache_cfg.kind, source=source, field="system.cache.kind")
    slots = _cache_slots(cache_cfg, kind, meta, slot_bytes, source)
    _check_cache_fits(slots * slot_bytes, tier, cache_cfg.tier, source)
    return slots


def _row_cache(exp: Experiment, meta: TraceMeta, slots: int, source: str,
               profile: Profile | None) -> RowCache:
    """The row cache of ``slots`` rows (as asked; a kind may round them)."""
    cache_cfg = exp.system.cache
    assert cache_cfg is not None
    options = cache_cfg.options()
    kind = ROW_CACHES.get(cache_cfg.kind, source=source, field="system.cache.kind")
    frequency = None
    if kind.needs_profile:
        limit = parse_options(cache_cfg.kind, options, source=source).profile_batches
        frequency = (profile(limit) if profile is not None
                     else np.zeros(meta.total_rows, dtype=np.int64))
    try:
        return build_row_cache(cache_cfg.kind, options, slots=slots, table_rows=meta.rows,
                               frequency=frequency, seed=exp.run.seed, source=source)
    except InputError as err:
        raise InputError(err.detail, source=source, field=err.field) from None


def _fitted_row_cache(exp: Experiment, meta: TraceMeta, slots: int, slot_bytes: int,
                      tier: Tier, source: str, profile: Profile | None) -> RowCache:
    """The row cache of ``slots`` rows; where the kind rounds them up (whole sets of ways)
    past the tier's capacity, the largest one that fits instead: a cache as large as its
    tier, with rows that do not divide it, loses part of its last set."""
    cache = _row_cache(exp, meta, slots, source, profile)
    fits = int(tier.spec.capacity) // slot_bytes
    asked = slots
    while cache.slots > fits >= slots and asked > 1:
        asked = max(1, asked - (cache.slots - fits))
        cache = _row_cache(exp, meta, asked, source, profile)
    return cache


UnitEntries = dict[str, tuple[type[PlacedUnit], UnitOptions]]


def _unit_entries(exp: Experiment, source: str) -> UnitEntries:
    """Each ``system.units`` entry's kind and validated options; checks their names against
    tiers and links, and that a tier hosts one entry at most."""
    taken = {**exp.system.memory, **exp.system.links, HOST: None}
    entries: UnitEntries = {}
    hosted: dict[str, str] = {}
    for name, cfg in exp.system.units.items():
        field_ = f"system.units.{name}"
        if name in taken:
            raise InputError(f"a compute unit may not share its name with a memory tier, a "
                             f"link or the host ({name!r}): their result columns would "
                             "collide", source=source, field=field_)
        entries[name] = unit_options(cfg.kind, cfg.options(), source=source, field=field_)
        tier = getattr(entries[name][1], "tier", None)
        if tier is not None:
            check_name(tier, exp.system.memory, "memory tier", source, f"{field_}.tier")
            if tier in hosted:
                raise InputError(f"tier {tier!r} already hosts unit {hosted[tier]!r}; one "
                                 "entry per tier (a kind with one unit per rank or bank "
                                 "group builds them all)", source=source, field=f"{field_}.tier")
            hosted[tier] = name
    return entries


def _cached_tiers(exp: Experiment, unit_tiers: set[str], source: str) -> np.ndarray:
    """Per table tier, whether the row cache holds its rows (never a tier a unit pools at:
    ``unit_tiers``)."""
    sys_cfg = exp.system
    cache_cfg = sys_cfg.cache
    table_tiers = sys_cfg.tables.tiers
    if cache_cfg is None:
        return np.zeros(len(table_tiers), dtype=bool)
    for name in cache_cfg.caches or []:
        check_name(name, sys_cfg.memory, "memory tier", source, "system.cache.caches")
        if name in unit_tiers:
            raise InputError(f"a compute unit pools the rows of {name!r} where they live; the "
                             "host's cache cannot hold them too", source=source,
                             field="system.cache.caches")
    check_name(cache_cfg.tier, sys_cfg.memory, "memory tier", source, "system.cache.tier")
    if cache_cfg.tier != sys_cfg.compute.tier:
        raise InputError(
            f"a cache must sit in the compute tier ({sys_cfg.compute.tier!r}); got "
            f"{cache_cfg.tier!r}", source=source, field="system.cache.tier")
    wanted = (cache_cfg.caches if cache_cfg.caches is not None
              else [t for t in sys_cfg.memory if t not in unit_tiers])
    return np.array([t in wanted and t != sys_cfg.compute.tier for t in table_tiers],
                    dtype=bool)


def build_system(exp: Experiment, meta: TraceMeta, source: str,
                 profile: Profile | None = None, memory_limit: int | None = None) -> System:
    """Validate the system's cross references and capacities; instantiate its models, place
    the rows and assemble its units and stages. ``profile`` serves the placements and caches
    that rank rows by how often they are read; without it (validation before a run) every row
    counts as unread. With ``memory_limit`` (bytes), a point whose estimated host memory is
    above it is refused before the cache, the placement or the units allocate anything."""
    from simulator.core.stages import pipeline

    if exp.system.nodes or exp.system.sharding is not None:
        from simulator.core.nodes import build_cluster
        cluster = build_cluster(exp, meta, source, profile, memory_limit)
        if cluster is not None:
            return cluster
    sys_cfg = exp.system
    assignment = ASSIGNMENTS.get(sys_cfg.assignment, source=source, field="system.assignment")
    entries = _unit_entries(exp, source)
    placed = {options.tier: (kind, options) for kind, options in entries.values()
              if assignment.uses_units and getattr(options, "tier", None) is not None}
    unit_of = {getattr(options, "tier", None): name for name, (_, options) in entries.items()}
    built = {name: build_tier(name, cfg, exp.run.fidelity, source,
                              path=placed[name][0].data_path if name in placed else "channel",
                              path_field=f"system.units.{unit_of.get(name)}.tier")
             for name, cfg in sys_cfg.memory.items()}
    tiers = {name: b.model for name, b in built.items()}
    links, link_sources = build_links(exp, source)
    for i, name in enumerate(sys_cfg.tables.tiers):
        check_name(name, tiers, "memory tier", source, "system.tables.tier" +
                   ("" if isinstance(sys_cfg.tables.tier, str) else f".{i}"))
    check_name(sys_cfg.compute.tier, tiers, "memory tier", source, "system.compute.tier")
    for name in sys_cfg.tables.budget:
        check_name(name, {n: 0 for n in sys_cfg.tables.tiers}, "table tier", source,
                   f"system.tables.budget.{name}")
    tier_links = host_links(exp, links, source)
    unit_tiers = set(placed)

    training = exp.run.mode == "training"
    state = STATE_BYTES[exp.run.optimizer]
    row_bytes = meta.row_bytes
    stride = row_bytes + (np.array([state(t.dim) for t in meta.tables], dtype=np.int64)
                          if training else 0)
    layout = Layout(row_bytes=row_bytes, stride=stride)
    compute = tiers[sys_cfg.compute.tier]
    table_tiers = sys_cfg.tables.tiers

    cached = _cached_tiers(exp, unit_tiers, source)
    cache_cfg = sys_cfg.cache if cached.any() else None
    if sys_cfg.cache is not None and cache_cfg is None and sys_cfg.cache.caches is None:
        pooled = " or pooled by a compute unit" if unit_tiers else ""
        raise InputError(f"the cache in {sys_cfg.cache.tier!r} has nothing to cache: every "
                         f"table tier is the compute tier{pooled}", source=source,
                         field="system.cache.tier")
    cache = None
    cache_bytes = 0
    slots = 0
    if cache_cfg is not None:
        layout.slot_bytes = align(int(row_bytes.max()), compute.granularity)
        slots = _asked_slots(exp, meta, layout.slot_bytes, compute, source)
    if memory_limit is not None:
        check_memory(exp, meta, slots, memory_limit, source)
    if cache_cfg is not None:
        cache = _fitted_row_cache(exp, meta, slots, layout.slot_bytes, compute, source, profile)
        cache_bytes = cache.slots * layout.slot_bytes
        _check_cache_fits(cache_bytes, compute, cache_cfg.tier, source)

    dense = _dense(exp, meta, tiers, source)
    rooms = []
    for name in table_tiers:
        capacity = int(tiers[name].spec.capacity)
        if dense is not None and name == dense.tier_name:
            capacity -= dense.reserved_bytes
        if name in placed:
            kind, options = placed[name]
            capacity -= kind.reserved_bytes(options, tiers[name], row_bytes)
        budget = int(sys_cfg.tables.budget.get(name, capacity))
        if name == sys_cfg.compute.tier:
            budget = min(budget, capacity - align(cache_bytes, int(compute.spec.interleave)))
        rooms.append(TierRoom(name, budget, int(tiers[name].spec.interleave)))
    frequency = (profile(sys_cfg.tables.profile_batches)
                 if profile is not None and sys_cfg.tables.placement in RANKED else None)
    placement = place(sys_cfg.tables.placement, rooms, np.asarray(meta.rows, dtype=np.int64),
                      stride, frequency, source=source)
    in_compute = (int(placement.bytes_used[table_tiers.index(sys_cfg.compute.tier)])
                  if sys_cfg.compute.tier in table_tiers else 0)
    unit = int(compute.spec.interleave)
    layout.slot_base = align(in_compute, unit)          # after the tables kept there
    layout.output_base = align(layout.slot_base + cache_bytes, unit)
    outputs = int(np.sum(align_each(row_bytes, compute.granularity))) * meta.batch_size
    layout.partial_base = align(layout.output_base + outputs, unit)
    if dense is not None and dense.tier_name == sys_cfg.compute.tier:
        _check_dense_fits(dense, layout.partial_base + (outputs if entries else 0), compute,
                          source)

    site = UnitSite(tiers=tiers, links=links, table_tiers=table_tiers, host_links=tier_links,
                    row_bytes=row_bytes,
                    row_elements=np.array([t.dim for t in meta.tables], dtype=np.int64),
                    row_dtypes=tuple(t.dtype for t in meta.tables),
                    table_rows=np.asarray(meta.rows, dtype=np.int64),
                    batch_size=meta.batch_size, seed=exp.run.seed, source=source,
                    training=training, profile=profile, functional=exp.run.functional,
                    table_tier=placement.table_tier)
    units: list[ComputeUnit] = [HostUnit(sys_cfg.compute, site, layout,
                                         hardware_cache=bool(cache_cfg and cache_cfg.hardware),
                                         source=source)]
    for name, (kind, options) in entries.items():
        units += kind.build(name, options, len(units), site)
    system = System(tiers=tiers, links=links, table_tiers=table_tiers, tier_links=tier_links,
                    compute_tier=sys_cfg.compute.tier, compute=sys_cfg.compute, cache=cache,
                    cached=cached, placement=placement, layout=layout, training=training,
                    cache_config=cache_cfg if cache else None, built=built,
                    link_sources=link_sources, units=units, assignment=assignment,
                    write_back=(WriteBackRows(cache.slots, cache.preloaded())
                                if training and cache is not None else None),
                    dense=dense)
    system.stages = pipeline(system)
    return system


def _check_dense_fits(dense: DenseModel, used: int, tier: Tier, source: str) -> None:
    """The dense layers' weights and buffers (kept at the top of the host's tier) must not
    reach the tables, cache slots, outputs and partial sums laid out from its bottom."""
    capacity = int(tier.spec.capacity)
    if used + dense.reserved_bytes > capacity:
        raise InputError(f"the dense layers need {format_size(dense.reserved_bytes)} but tier "
                         f"{dense.tier_name!r} has {format_size(max(capacity - used, 0))} left "
                         "after the tables, cache slots and outputs kept there",
                         source=source, field="system.dense.tier")


def _dense(exp: Experiment, meta: TraceMeta, tiers: dict[str, Tier],
           source: str) -> DenseModel | None:
    """The dense stage of ``system.dense`` (inference only), if the config has one."""
    if exp.system.dense is None:
        return None
    from simulator.core.dense import build_dense

    if exp.run.mode == "training":
        raise InputError("the dense stage models inference (the forward pass); drop "
                         "system.dense for run.mode: training", source=source,
                         field="system.dense")
    name = exp.system.dense.tier
    link = exp.system.memory[name].link if name in exp.system.memory else None
    if link is None and name in exp.system.tables.tiers:
        link = exp.system.tables.link           # the link the host reaches that tier over
    if name not in (None, exp.system.compute.tier) and link not in (None, DIRECT):
        raise InputError(f"the dense layers read their weights and activations from the host's "
                         f"tier or one on its own memory bus (link: direct); {name!r} is reached "
                         f"over link {link!r}, which the dense stage does not model",
                         source=source, field="system.dense.tier")
    return build_dense(exp.system.dense, meta, tiers, exp.system.compute.tier, source)
