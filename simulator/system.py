"""Assemble the devices of an experiment's ``system`` and lay the tables out in memory.

A ``System`` holds one timing model per memory tier (a generic bandwidth/latency tier, or a
DRAM, SCM or SSD device model), the links, the optional row cache, the placement of every row
(``simulator.placement``) and the compute tier's layout: cache slots from address 0, pooled
outputs after them. In training each row's optimizer state sits right after the row in its home
tier (FBGEMM keeps optimizer state out of its cache), so a row takes ``stride`` bytes there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from embsim.errors import InputError
from embsim.units import format_size
from hwmodels.cache.row_cache import ROW_CACHES, RowCache, build_row_cache, parse_options
from hwmodels.device import make_device
from hwmodels.link import Link
from hwmodels.memory import Tier, memory_model
from hwmodels.presets import kinds_of, preset_names, resolve
from hwmodels.specs import LinkSpec, MemorySpec
from hwmodels.tier import DeviceTier
from simulator.config import DIRECT, CacheConfig, ComputeConfig, Experiment, MemoryTierConfig
from simulator.placement import RANKED, Placement, TierRoom, align, place
from simulator.processor import Processor
from traces.schema import TraceMeta

STATE_BYTES = {"sgd": lambda dim: 0, "rowwise_adagrad": lambda dim: 4,
               "adagrad": lambda dim: 4 * dim}
"""Optimizer state per row (float32), by optimizer: FBGEMM's TBE optimizers."""


@dataclass
class Layout:
    """Row sizes, their footprint in their home tier, and the compute tier's cache and outputs."""

    row_bytes: np.ndarray           # per table
    stride: np.ndarray              # per table: row + optimizer state in the home tier
    slot_bytes: int = 0             # one cache slot, in the cache's tier
    slot_base: int = 0              # first cache slot's address in the compute tier
    output_base: int = 0            # pooled outputs, in the compute tier


@dataclass
class System:
    """Devices, placement and layout of one simulated point."""

    tiers: dict[str, Tier]
    links: dict[str, Link]
    table_tiers: list[str]          # the tiers tables may use, fastest first
    tier_links: list[str | None]    # per table tier: the link to the compute (None: none)
    compute_tier: str
    compute: ComputeConfig
    cache: RowCache | None
    cached: np.ndarray              # per table tier: whether the cache holds its rows
    placement: Placement
    layout: Layout
    training: bool = False
    cache_config: CacheConfig | None = None
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    processor: Processor | None = None      # the compute's TLB and private cache, if any

    @property
    def overlap_fetch(self) -> bool:
        """Whether fetching misses overlaps pooling (a hardware cache)."""
        return self.cache_config is not None and self.cache_config.hardware

    @property
    def compute_index(self) -> int:
        """Index of the compute tier among the table tiers (-1 if tables never live there)."""
        names = self.table_tiers
        return names.index(self.compute_tier) if self.compute_tier in names else -1


def _check_name(name: str | None, known: dict, what: str, source: str, field_: str) -> None:
    if name is not None and name not in known:
        choices = ", ".join(sorted(known)) or "none defined"
        raise InputError(f"unknown {what} {name!r}; expected one of: {choices}", source=source,
                         field=field_)


TIER_KINDS = ("dram", "scm", "ssd", "memory")


def preset_kind(name: str, source: str, field_: str) -> str:
    """The kind of the memory preset called ``name`` (device kinds first)."""
    kinds = kinds_of(name)
    for kind in TIER_KINDS:
        if kind in kinds:
            return kind
    known = sorted({n for kind in TIER_KINDS for n in preset_names(kind)})
    raise InputError(f"unknown memory preset {name!r}; expected one of: {', '.join(known)}",
                     source=source, field=field_)


def build_tier(name: str, cfg: MemoryTierConfig, fidelity: str,
               source: str) -> tuple[Tier, dict[str, str]]:
    """The timing model of one memory tier and each parameter's source."""
    where = f"system.memory.{name}"
    kind = cfg.kind or (preset_kind(cfg.preset, source, f"{where}.preset") if cfg.preset
                        else "memory")
    if kind == "memory":
        if cfg.params:
            raise InputError("'params' are for device tiers (kind dram, scm or ssd); give a "
                             "generic tier's fields directly", source=source,
                             field=f"{where}.params")
        spec, sources = resolve("memory", cfg.preset, cfg.overrides(), source=source,
                                field=where)
        assert isinstance(spec, MemorySpec)
        return memory_model(spec, fidelity, source=source), sources
    generic = sorted(cfg.overrides())
    if generic:
        raise InputError(f"a {kind} tier takes its parameters under 'params', not "
                         f"{generic[0]!r}", source=source, field=f"{where}.{generic[0]}")
    spec, sources = resolve(kind, cfg.preset, cfg.params, source=source, field=f"{where}.params")
    device = make_device(kind, spec, fidelity, source=source)
    return DeviceTier(device), sources


def _cache_slots(cache: CacheConfig, kind: type[RowCache], meta: TraceMeta, slot_bytes: int,
                 source: str) -> int:
    if cache.load_factor is not None:
        return kind.slots_for_load_factor(cache.load_factor, meta.total_rows)
    slots = int(cache.size // slot_bytes)
    if slots < 1:
        raise InputError(f"{format_size(cache.size)} holds no row of {slot_bytes} B",
                         source=source, field="system.cache.size")
    return slots


def _links(exp: Experiment, source: str) -> tuple[dict[str, Link], dict[str, dict[str, str]]]:
    links: dict[str, Link] = {}
    sources: dict[str, dict[str, str]] = {}
    for name, link_cfg in exp.system.links.items():
        if name == DIRECT:
            raise InputError(f"'{DIRECT}' is reserved (a tier read on the processor's own bus)",
                             source=source, field=f"system.links.{name}")
        spec, spec_sources = resolve("link", link_cfg.preset, link_cfg.overrides(),
                                     source=source, field=f"system.links.{name}")
        assert isinstance(spec, LinkSpec)
        links[name] = Link(spec)
        sources[name] = spec_sources
    return links, sources


def _tier_links(exp: Experiment, links: dict[str, Link], source: str) -> list[str | None]:
    """Per table tier, the link the compute reads it over (None: the compute tier, direct)."""
    sys_cfg = exp.system
    known = {**links, DIRECT: None}
    for name, tier_cfg in sys_cfg.memory.items():
        _check_name(tier_cfg.link, known, "link", source, f"system.memory.{name}.link")
    _check_name(sys_cfg.tables.link, known, "link", source, "system.tables.link")
    out: list[str | None] = []
    for name in sys_cfg.tables.tiers:
        link = sys_cfg.tables.link or sys_cfg.memory[name].link
        if name == sys_cfg.compute.tier:
            out.append(None)
        elif link is None:
            raise InputError(
                f"tables live in {name!r} but pooling runs on {sys_cfg.compute.tier!r}: name "
                f"the link between them (or '{DIRECT}' when the processor reads {name!r} on its "
                f"own memory bus)", source=source, field="system.tables.link")
        else:
            out.append(None if link == DIRECT else link)
    return out


def _row_cache(exp: Experiment, meta: TraceMeta, slot_bytes: int, source: str,
               profile: Profile | None) -> RowCache:
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
        return build_row_cache(cache_cfg.kind, options,
                               slots=_cache_slots(cache_cfg, kind, meta, slot_bytes, source),
                               table_rows=meta.rows, frequency=frequency, seed=exp.run.seed,
                               source=source)
    except InputError as err:
        raise InputError(err.detail, source=source, field=err.field) from None


Profile = Callable[[int | None], np.ndarray]
"""Reads per global row over the first N batches of the trace (all when None)."""


def build_system(exp: Experiment, meta: TraceMeta, source: str,
                 profile: Profile | None = None) -> System:
    """Validate the system's cross references and capacities; instantiate its models and
    place the rows. ``profile`` serves the placements and caches that rank rows by how often
    they are read; without it (validation before a run) every row counts as unread."""
    sys_cfg = exp.system
    tiers: dict[str, Tier] = {}
    sources: dict[str, dict[str, str]] = {}
    for name, tier_cfg in sys_cfg.memory.items():
        tiers[name], sources[name] = build_tier(name, tier_cfg, exp.run.fidelity, source)
    links, link_sources = _links(exp, source)
    sources.update(link_sources)
    for i, name in enumerate(sys_cfg.tables.tiers):
        _check_name(name, tiers, "memory tier", source, "system.tables.tier" +
                    ("" if isinstance(sys_cfg.tables.tier, str) else f".{i}"))
    _check_name(sys_cfg.compute.tier, tiers, "memory tier", source, "system.compute.tier")
    for name in sys_cfg.tables.budget:
        _check_name(name, {n: 0 for n in sys_cfg.tables.tiers}, "table tier", source,
                    f"system.tables.budget.{name}")
    tier_links = _tier_links(exp, links, source)

    training = exp.run.mode == "training"
    state = STATE_BYTES[exp.run.optimizer]
    row_bytes = meta.row_bytes
    stride = row_bytes + (np.array([state(t.dim) for t in meta.tables], dtype=np.int64)
                          if training else 0)
    layout = Layout(row_bytes=row_bytes, stride=stride)
    compute = tiers[sys_cfg.compute.tier]
    table_tiers = sys_cfg.tables.tiers

    cache_cfg = sys_cfg.cache
    cached = np.zeros(len(table_tiers), dtype=bool)
    cache = None
    cache_bytes = 0
    if cache_cfg is not None:
        for name in cache_cfg.caches or []:
            _check_name(name, tiers, "memory tier", source, "system.cache.caches")
        _check_name(cache_cfg.tier, tiers, "memory tier", source, "system.cache.tier")
        if cache_cfg.tier != sys_cfg.compute.tier:
            raise InputError(
                f"a cache must sit in the compute tier ({sys_cfg.compute.tier!r}); got "
                f"{cache_cfg.tier!r}", source=source, field="system.cache.tier")
        wanted = cache_cfg.caches if cache_cfg.caches is not None else list(tiers)
        cached = np.array([t in wanted and t != sys_cfg.compute.tier for t in table_tiers])
        if not cached.any():
            if cache_cfg.caches is None:
                raise InputError(
                    f"the cache in {cache_cfg.tier!r} has nothing to cache: every table tier "
                    "is the compute tier", source=source, field="system.cache.tier")
            cache_cfg = None
    if cache_cfg is not None:
        layout.slot_bytes = align(int(row_bytes.max()), compute.granularity)
        cache = _row_cache(exp, meta, layout.slot_bytes, source, profile)
        cache_bytes = cache.slots * layout.slot_bytes
        if cache_bytes > compute.spec.capacity:
            raise InputError(
                f"the cache needs {format_size(cache_bytes)} but tier {cache_cfg.tier!r} "
                f"holds {format_size(compute.spec.capacity)}", source=source,
                field="system.cache.size")

    rooms = []
    for name in table_tiers:
        capacity = int(tiers[name].spec.capacity)
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
    return System(tiers=tiers, links=links, table_tiers=table_tiers, tier_links=tier_links,
                  compute_tier=sys_cfg.compute.tier, compute=sys_cfg.compute, cache=cache,
                  cached=cached, placement=placement, layout=layout, training=training,
                  cache_config=cache_cfg if cache else None, sources=sources,
                  processor=_processor(sys_cfg.compute, source))


def _processor(compute: ComputeConfig, source: str) -> Processor | None:
    """The compute's TLB and private cache, when it has either."""
    if compute.tlb is None and compute.private_cache is None:
        return None
    return Processor(compute, source)
