"""The memory tiers and links of a system, built from the experiment's ``system`` section.

A tier is a timing model (``hwmodels.memory.Tier``): a generic bandwidth/latency tier or a
request-level device behind ``hwmodels.tier.DeviceTier``. What a kind is, which spec it takes
and which model runs at the requested fidelity all come from its ``DeviceKind`` record.
"""

from __future__ import annotations

from dataclasses import dataclass

from embsim.errors import InputError
from hwmodels.device import DEVICE_KINDS, DeviceKind, device_kind
from hwmodels.link import Link
from hwmodels.memory import Tier
from hwmodels.presets import kinds_of, preset_names, resolve
from hwmodels.specs import LinkSpec
from hwmodels.tier import DeviceTier
from simulator.core.config import DIRECT, Experiment, MemoryTierConfig


@dataclass
class BuiltTier:
    """A tier's model and what the results' provenance records of it."""

    model: Tier
    kind: str
    fidelity_asked: str
    sources: dict[str, str]


def check_name(name: str | None, known: dict, what: str, source: str, field_: str) -> None:
    """InputError unless ``name`` (when given) is one of ``known``'s keys."""
    if name is not None and name not in known:
        choices = ", ".join(sorted(known)) or "none defined"
        raise InputError(f"unknown {what} {name!r}; expected one of: {choices}", source=source,
                         field=field_)


def preset_kind(name: str, source: str, field_: str) -> DeviceKind:
    """The device kind of the memory preset called ``name`` (request-level kinds first)."""
    found = [DEVICE_KINDS.get(k) for k in kinds_of(name) if k in DEVICE_KINDS]
    found.sort(key=lambda kind: not kind.request_level)
    if found:
        return found[0]
    known = sorted({n for kind in DEVICE_KINDS for n in preset_names(kind)})
    raise InputError(f"unknown memory preset {name!r}; expected one of: {', '.join(known)}",
                     source=source, field=field_)


def build_tier(name: str, cfg: MemoryTierConfig, fidelity: str, source: str,
               path: str = "channel", path_field: str | None = None) -> BuiltTier:
    """The timing model of one memory tier, its kind and each parameter's source; ``path``:
    the data path its device serves (``channel``, the host's, unless a compute unit in the
    tier reads it over its own, the unit's ``path_field`` naming it in errors)."""
    where = f"system.memory.{name}"
    if cfg.kind is not None:
        kind = device_kind(cfg.kind, source=source, field=f"{where}.kind")
    elif cfg.preset is not None:
        kind = preset_kind(cfg.preset, source, f"{where}.preset")
    else:
        kind = device_kind("memory")
    generic = sorted(cfg.overrides())
    if kind.request_level and generic:
        raise InputError(f"a {kind.name} tier takes its parameters under 'params', not "
                         f"{generic[0]!r}", source=source, field=f"{where}.{generic[0]}")
    if not kind.request_level and cfg.params:
        raise InputError("'params' are for device tiers (kind dram, scm or ssd); give a "
                         "generic tier's fields directly", source=source,
                         field=f"{where}.params")
    if kind.request_level:
        spec, sources = resolve(kind.name, cfg.preset, cfg.params, source=source,
                                field=f"{where}.params")
    else:
        spec, sources = resolve(kind.name, cfg.preset, cfg.overrides(), source=source,
                                field=where)
    if path not in kind.paths:
        raise InputError(f"the unit pools over a {path.replace('_', ' ')}-level path inside "
                         f"DRAM, but tier {name!r} is a {kind.name} tier; expected a dram tier",
                         source=source, field=path_field)
    model = kind.model(spec, fidelity, path=path, source=source)
    tier = DeviceTier(model, block_reads=kind.block_reads) if kind.request_level else model
    return BuiltTier(tier, kind.name, fidelity, sources)


def build_links(exp: Experiment, source: str) -> tuple[dict[str, Link], dict[str, dict[str, str]]]:
    """Every link of the system and each parameter's source."""
    links: dict[str, Link] = {}
    sources: dict[str, dict[str, str]] = {}
    for name, link_cfg in exp.system.links.items():
        if name == DIRECT:
            raise InputError(f"'{DIRECT}' is reserved (a tier read on the processor's own bus)",
                             source=source, field=f"system.links.{name}")
        if name in exp.system.memory:
            raise InputError(f"a link may not share its name with memory tier {name!r} (their "
                             f"result columns bytes_{name} would collide)", source=source,
                             field=f"system.links.{name}")
        spec, spec_sources = resolve("link", link_cfg.preset, link_cfg.overrides(),
                                     source=source, field=f"system.links.{name}")
        assert isinstance(spec, LinkSpec)
        links[name] = Link(spec)
        sources[name] = spec_sources
    return links, sources


def host_links(exp: Experiment, links: dict[str, Link], source: str) -> list[str | None]:
    """Per table tier, the link the host processor reads it over (None: its own tier, or a
    tier it reads on its own memory bus)."""
    sys_cfg = exp.system
    known = {**links, DIRECT: None}
    for name, tier_cfg in sys_cfg.memory.items():
        check_name(tier_cfg.link, known, "link", source, f"system.memory.{name}.link")
    check_name(sys_cfg.tables.link, known, "link", source, "system.tables.link")
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
