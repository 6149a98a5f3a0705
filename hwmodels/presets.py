"""Named device presets: YAML files in ``hwmodels/presets/``, every value with a ``source:``.

A preset file looks like::

    name: hbm3-h100
    kind: memory
    description: ...
    params:
      bandwidth: {value: "3.35 TB/s", source: "NVIDIA H100 datasheet"}

``resolve`` merges a preset with user overrides and validates the result against the kind's
spec; overridden values record where they came from instead of the preset's source.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from embsim.errors import InputError
from hwmodels.specs import SPECS, Spec

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class Preset:
    """One preset file: raw values (human units) and the source of each."""

    name: str
    kind: str
    description: str
    values: dict[str, Any]
    sources: dict[str, str]


@cache
def all_presets() -> dict[str, Preset]:
    """Every shipped preset by name (files are read once)."""
    presets = {}
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        params = data.get("params", {})
        presets[data["name"]] = Preset(
            name=data["name"],
            kind=data["kind"],
            description=data.get("description", ""),
            values={k: v["value"] for k, v in params.items()},
            sources={k: v["source"] for k, v in params.items()},
        )
    return presets


def preset_names(kind: str | None = None) -> list[str]:
    return sorted(n for n, p in all_presets().items() if kind is None or p.kind == kind)


def load_preset(name: str, kind: str, *, source: str | None = None,
                field: str | None = None) -> Preset:
    """The preset called ``name`` of the given kind; an ``InputError`` listing choices if none."""
    preset = all_presets().get(name)
    if preset is None or preset.kind != kind:
        raise InputError(
            f"unknown {kind} preset {name!r}; expected one of: {', '.join(preset_names(kind))}",
            source=source, field=field,
        )
    return preset


def resolve(kind: str, preset: str | None, overrides: dict[str, Any], *,
            source: str | None = None, field: str | None = None) -> tuple[Spec, dict[str, str]]:
    """Spec of kind ``kind`` from a preset (optional) plus overrides, and each value's source."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if preset is not None:
        found = load_preset(preset, kind, source=source, field=f"{field}.preset" if field else None)
        values.update(found.values)
        sources.update({k: f"preset {preset}: {s}" for k, s in found.sources.items()})
    for key, value in overrides.items():
        values[key] = value
        sources[key] = f"set in {source or 'config'}"
    try:
        spec = SPECS[kind](**values)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = f"{field}.{loc}" if field else loc
        raise InputError(f"{first['msg']} (got {first.get('input')!r})", source=source,
                         field=where) from None
    return spec, sources
