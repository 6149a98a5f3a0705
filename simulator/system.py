"""Assemble the devices of an experiment's ``system`` and lay the tables out in memory.

A ``System`` holds one timing model per memory tier, the links, the optional software cache and
the address layout: each table contiguous in its tier (bases aligned to the channel interleave),
cache slots from address 0 of the cache's tier, pooled outputs after them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from embsim.errors import InputError
from embsim.units import format_size
from hwmodels.cache import SoftwareCache
from hwmodels.link import Link
from hwmodels.memory import MemoryModel, memory_model
from hwmodels.presets import resolve
from hwmodels.specs import LinkSpec, MemorySpec
from simulator.config import CacheConfig, ComputeConfig, Experiment
from traces.schema import TraceMeta


def _align(value: int, unit: int) -> int:
    return -(-value // unit) * unit


@dataclass
class Layout:
    """Byte addresses of tables and cache slots in their tiers."""

    table_base: np.ndarray          # per table, in the tables' tier
    row_bytes: np.ndarray           # per table
    slot_bytes: int = 0             # one cache slot, in the cache's tier
    output_base: int = 0            # pooled outputs, in the compute tier


@dataclass
class System:
    """Devices and layout of one simulated point."""

    tiers: dict[str, MemoryModel]
    links: dict[str, Link]
    table_tier: str
    table_link: str | None
    compute_tier: str
    compute: ComputeConfig
    cache: SoftwareCache | None
    layout: Layout
    cache_config: CacheConfig | None = None
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def overlap_fetch(self) -> bool:
        """Whether fetching misses overlaps pooling (a hardware cache)."""
        return self.cache_config is not None and self.cache_config.hardware

    @property
    def tables_local(self) -> bool:
        """Whether the compute reads the tables directly, with no link in between."""
        return self.table_tier == self.compute_tier


def _check_name(name: str | None, known: dict, what: str, source: str, field_: str) -> None:
    if name is not None and name not in known:
        choices = ", ".join(sorted(known)) or "none defined"
        raise InputError(f"unknown {what} {name!r}; expected one of: {choices}", source=source,
                         field=field_)


def _cache_slots(exp: Experiment, meta: TraceMeta, slot_bytes: int, source: str) -> int:
    cache = exp.system.cache
    assert cache is not None
    if cache.load_factor is not None:
        return max(1, int(np.ceil(cache.load_factor * meta.total_rows)))
    slots = int(cache.size // slot_bytes)
    if slots < 1:
        raise InputError(f"{format_size(cache.size)} holds no row of {slot_bytes} B",
                         source=source, field="system.cache.size")
    return slots


def build_system(exp: Experiment, meta: TraceMeta, source: str) -> System:
    """Validate the system's cross references and capacities; instantiate its models."""
    sys_cfg = exp.system
    tiers: dict[str, MemoryModel] = {}
    sources: dict[str, dict[str, str]] = {}
    for name, tier_cfg in sys_cfg.memory.items():
        spec, spec_sources = resolve("memory", tier_cfg.preset, tier_cfg.overrides(),
                                     source=source, field=f"system.memory.{name}")
        assert isinstance(spec, MemorySpec)
        tiers[name] = memory_model(spec, exp.run.fidelity, source=source)
        sources[name] = spec_sources
    links: dict[str, Link] = {}
    for name, link_cfg in sys_cfg.links.items():
        spec, spec_sources = resolve("link", link_cfg.preset, link_cfg.overrides(),
                                     source=source, field=f"system.links.{name}")
        assert isinstance(spec, LinkSpec)
        links[name] = Link(spec)
        sources[name] = spec_sources

    _check_name(sys_cfg.tables.tier, tiers, "memory tier", source, "system.tables.tier")
    _check_name(sys_cfg.compute.tier, tiers, "memory tier", source, "system.compute.tier")
    for name, tier_cfg in sys_cfg.memory.items():
        _check_name(tier_cfg.link, links, "link", source, f"system.memory.{name}.link")
    _check_name(sys_cfg.tables.link, links, "link", source, "system.tables.link")
    table_link = sys_cfg.tables.link or sys_cfg.memory[sys_cfg.tables.tier].link
    remote = sys_cfg.tables.tier != sys_cfg.compute.tier
    if remote and table_link is None:
        raise InputError(
            f"tables live in {sys_cfg.tables.tier!r} but pooling runs on "
            f"{sys_cfg.compute.tier!r}: name the link between them", source=source,
            field="system.tables.link")

    table_tier = tiers[sys_cfg.tables.tier]
    row_bytes = meta.row_bytes
    table_bytes = np.array([_align(int(r * b), int(table_tier.spec.interleave))
                            for r, b in zip(meta.rows, row_bytes, strict=True)], dtype=np.int64)
    table_base = np.concatenate([[0], np.cumsum(table_bytes)[:-1]]).astype(np.int64)
    total = int(table_bytes.sum())
    if total > table_tier.spec.capacity:
        raise InputError(
            f"the tables need {format_size(total)} but tier {sys_cfg.tables.tier!r} holds "
            f"{format_size(table_tier.spec.capacity)}", source=source, field="system.tables.tier")
    layout = Layout(table_base=table_base, row_bytes=row_bytes)

    cache = None
    compute = tiers[sys_cfg.compute.tier]
    used_in_compute = total if not remote else 0
    cache_cfg = sys_cfg.cache
    if cache_cfg is not None:
        for name in cache_cfg.caches or []:
            _check_name(name, tiers, "memory tier", source, "system.cache.caches")
        if cache_cfg.caches is not None and sys_cfg.tables.tier not in cache_cfg.caches:
            cache_cfg = None
    if cache_cfg is not None:
        _check_name(cache_cfg.tier, tiers, "memory tier", source, "system.cache.tier")
        if cache_cfg.tier != sys_cfg.compute.tier or not remote:
            raise InputError(
                f"a cache must sit in the compute tier ({sys_cfg.compute.tier!r}) in front of "
                f"tables in another tier; got cache in {cache_cfg.tier!r}, tables in "
                f"{sys_cfg.tables.tier!r}", source=source, field="system.cache.tier")
        layout.slot_bytes = _align(int(row_bytes.max()), compute.granularity)
        slots = _cache_slots(exp, meta, layout.slot_bytes, source)
        ways = None if cache_cfg.ways == "full" else int(cache_cfg.ways)
        try:
            cache = SoftwareCache(slots, ways, cache_cfg.policy, meta.total_rows)
        except InputError as err:
            raise InputError(err.detail, source=source, field=err.field) from None
        used_in_compute = cache.slots * layout.slot_bytes
        if used_in_compute > compute.spec.capacity:
            raise InputError(
                f"the cache needs {format_size(used_in_compute)} but tier {cache_cfg.tier!r} "
                f"holds {format_size(compute.spec.capacity)}", source=source,
                field="system.cache.size")
    layout.output_base = _align(used_in_compute, int(compute.spec.interleave))
    return System(tiers=tiers, links=links, table_tier=sys_cfg.tables.tier,
                  table_link=table_link if remote else None, compute_tier=sys_cfg.compute.tier,
                  compute=sys_cfg.compute, cache=cache,
                  cache_config=cache_cfg if cache else None, layout=layout, sources=sources)
