"""``embsim presets``: list the shipped hardware presets and show one with its sources."""

from __future__ import annotations

import json
from typing import Any

import click
import numpy as np

from embsim.errors import InputError
from embsim.units import format_size
from hwmodels.presets import Preset, all_presets, kinds_of, load_preset, preset_names, resolve


@click.group("presets")
def presets() -> None:
    """List the hardware presets and show their parameters with sources."""


@presets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_presets(as_json: bool) -> None:
    """Name, kind and description of every preset."""
    rows = [{"name": p.name, "kind": p.kind, "description": p.description}
            for p in sorted(all_presets().values(), key=lambda p: (p.name, p.kind))]
    if as_json:
        click.echo(json.dumps({"presets": rows}))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    click.echo(f"{'name':<{width}}  {'kind':<6}  description")
    for row in rows:
        click.echo(f"{row['name']:<{width}}  {row['kind']:<6}  {row['description']}")


@presets.command("show")
@click.argument("name")
@click.option("--kind", default=None,
              help="Kind of the preset, needed only where a name exists in several kinds.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(name: str, kind: str | None, as_json: bool) -> None:
    """Every parameter of preset NAME with its value and source, and derived figures."""
    preset = _find(name, kind)
    spec, _ = resolve(preset.kind, preset.name, {}, source=str(preset.path))
    derived = {k: v.item() if isinstance(v, np.generic) else v
               for k, v in (spec.derived() if hasattr(spec, "derived") else {}).items()}
    if as_json:
        click.echo(json.dumps({
            "name": preset.name, "kind": preset.kind, "description": preset.description,
            "params": {k: {"value": preset.values[k], "source": preset.sources[k]}
                       for k in preset.values},
            "derived": derived,
        }))
        return
    click.echo(_render(preset, derived))


def _find(name: str, kind: str | None) -> Preset:
    """The preset ``name`` (of ``kind`` if given); an ``InputError`` listing names if none."""
    if kind is not None:
        return load_preset(name, kind, field="--kind")
    kinds = kinds_of(name)
    if not kinds:
        raise InputError(f"unknown preset {name!r}; expected one of: "
                         f"{', '.join(preset_names())}", field="NAME")
    if len(kinds) > 1:
        raise InputError(f"preset {name!r} exists as kinds {', '.join(kinds)}; pick one with "
                         "--kind", field="--kind")
    return load_preset(name, kinds[0])


def _render(preset: Preset, derived: dict[str, Any]) -> str:
    width = max(len(k) for k in [*preset.values, *derived, "parameter"])
    values = {k: str(v) for k, v in preset.values.items()}
    value_width = max(len(v) for v in [*values.values(), "value"])
    lines = [f"{preset.name} ({preset.kind}): {preset.description}", "",
             f"{'parameter':<{width}}  {'value':<{value_width}}  source"]
    lines += [f"{k:<{width}}  {values[k]:<{value_width}}  {preset.sources[k]}" for k in values]
    if derived:
        lines += ["", "derived:"]
        lines += [f"{k:<{width}}  {human(k, v)}" for k, v in derived.items()]
    return "\n".join(lines)


def human(key: str, value: Any) -> str:
    """A derived figure in readable units, judged by its name (``*_s`` seconds, ``*bandwidth*``
    bytes/s, ``capacity`` and ``*bytes*`` bytes, ``*_j`` joules)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if key.endswith("_s"):
        return _scaled(value, "s", [(1e-9, "ns"), (1e-6, "us"), (1e-3, "ms"), (1.0, "s")])
    if "bandwidth" in key:
        return _scaled(value, "B/s", [(1e6, "MB/s"), (1e9, "GB/s"), (1e12, "TB/s")])
    if key == "capacity" or "bytes" in key:
        return format_size(value)
    if key.endswith("_j"):
        return _scaled(value, "J", [(1e-12, "pJ"), (1e-9, "nJ"), (1e-6, "uJ"), (1e-3, "mJ"),
                                    (1.0, "J")])
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _scaled(value: float, base: str, scales: list[tuple[float, str]]) -> str:
    """``value`` in the largest unit of ``scales`` that keeps it >= 1 (else the smallest)."""
    factor, unit = scales[0]
    for candidate, name in scales:
        if abs(value) >= candidate:
            factor, unit = candidate, name
    return f"{value / factor:.4g} {unit}" if value else f"0 {base}"
