"""Named device presets: YAML files under ``hwmodels/presets/`` (any depth), every value with a
``source:``.

A preset file looks like::

    name: hbm3-h100
    kind: dram
    description: ...
    extends: hbm3-base          # optional: start from another preset of the same kind
    params:
      tCK: {value: "0.3818 ns", source: "Derived: ..."}

Presets are keyed by (kind, name): the same name may exist once per kind. With ``extends`` a
preset holds the base's params (and their sources) and then its own, which replace the base's.
``resolve`` merges a preset with user overrides and validates the result against the kind's
spec (``spec_class(kind)``); overridden values record where they came from instead of the preset's
source.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from embsim.errors import InputError
from embsim.validation import first_problem
from embsim.yaml_input import YamlTooLarge, load_bounded
from hwmodels.device import DEVICE_KINDS
from hwmodels.specs import PRESET_KINDS, Spec

PRESET_DIR = Path(__file__).parent / "presets"
FILE_KEYS = {"name", "kind", "description", "params", "extends", "provenance",
             "microbenchmarks"}
"""A preset file's keys: a calibrated preset also records the machine it was measured on
(``provenance``) and every microbenchmark run it was fitted to (``microbenchmarks``)."""
PARAM_KEYS = {"value", "source"}


@dataclass(frozen=True)
class Preset:
    """One preset (after ``extends``): raw values (human units) and the source of each."""

    name: str
    kind: str
    description: str
    values: dict[str, Any]
    sources: dict[str, str]
    path: Path


@dataclass(frozen=True)
class _PresetFile:
    name: str
    kind: str
    description: str
    extends: str | None
    values: dict[str, Any]
    sources: dict[str, str]
    path: Path


SHIPPED_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""Preset files are read with libyaml's safe loader where PyYAML has it: the same values as
``yaml.safe_load``, parsed in C (every command that names a preset reads them all; this took
0.1 to 0.25 s off ``embsim presets list`` and ``embsim memtrace`` here, docs/benchmarks.md)."""


def preset_files(root: Path = PRESET_DIR) -> list[Path]:
    """Every preset file under ``root`` (any depth), in a stable order."""
    return sorted(root.rglob("*.yaml"))


def _read_file(path: Path, shipped: bool = False) -> _PresetFile:
    """One preset file, its shape checked (every param a ``{value, source}`` pair); a user's
    file is read with the bounded loader (``embsim.yaml_input``), a shipped one with
    ``SHIPPED_LOADER``."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = (yaml.load(text, Loader=SHIPPED_LOADER) if shipped  # noqa: S506 (a safe loader)
                else load_bounded(text))
    except UnicodeDecodeError as err:
        raise InputError(f"not a UTF-8 text file (byte {err.start})", source=source) from None
    except YamlTooLarge as err:
        raise InputError(f"the YAML document {err}", source=source) from None
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML: {err}", source=source) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping with name, kind, description, params",
                         source=source)
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r}; expected {', '.join(sorted(FILE_KEYS))}",
                         source=source, field=unknown[0])
    for key in ("name", "kind"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InputError("expected a non-empty string", source=source, field=key)
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise InputError("expected a mapping of NAME: {value, source}", source=source,
                         field="params")
    for key, entry in params.items():
        where = f"params.{key}"
        if not isinstance(entry, dict) or set(entry) != PARAM_KEYS:
            raise InputError(f"expected exactly the keys value and source, got {entry!r}",
                             source=source, field=where)
        if not isinstance(entry["source"], str) or not entry["source"].strip():
            raise InputError("expected a non-empty source string", source=source,
                             field=f"{where}.source")
    extends = data.get("extends")
    if extends is not None and not isinstance(extends, str):
        raise InputError("expected the name of a preset of the same kind", source=source,
                         field="extends")
    return _PresetFile(data["name"], data["kind"], data.get("description", ""), extends,
                       {k: v["value"] for k, v in params.items()},
                       {k: v["source"] for k, v in params.items()}, path)


def _flatten(key: tuple[str, str], files: dict[tuple[str, str], _PresetFile],
             chain: tuple[tuple[str, str], ...] = ()) -> Preset:
    """The preset ``key`` with its ``extends`` chain applied (base first)."""
    entry = files[key]
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if entry.extends is not None:
        base = (entry.kind, entry.extends)
        if base not in files:
            known = sorted(n for k, n in files if k == entry.kind)
            raise InputError(f"extends unknown {entry.kind} preset {entry.extends!r}; expected "
                             f"one of: {', '.join(known)}", source=str(entry.path),
                             field="extends")
        if base in chain or base == key:
            raise InputError(f"extends chain loops back to {entry.extends!r}",
                             source=str(entry.path), field="extends")
        parent = _flatten(base, files, (*chain, key))
        values.update(parent.values)
        sources.update(parent.sources)
    values.update(entry.values)
    sources.update(entry.sources)
    return Preset(entry.name, entry.kind, entry.description, values, sources, entry.path)


@cache
def all_presets() -> dict[tuple[str, str], Preset]:
    """Every shipped preset by (kind, name), ``extends`` applied (files are read once)."""
    return read_presets(PRESET_DIR, shipped=True)


def read_presets(root: Path, shipped: bool = False) -> dict[tuple[str, str], Preset]:
    """The presets of the YAML files under ``root`` by (kind, name), ``extends`` applied."""
    files: dict[tuple[str, str], _PresetFile] = {}
    for path in preset_files(root):
        entry = _read_file(path, shipped)
        key = (entry.kind, entry.name)
        if key in files:
            raise InputError(f"{entry.kind} preset {entry.name!r} is also defined in "
                             f"{files[key].path}", source=str(path), field="name")
        files[key] = entry
    return {key: _flatten(key, files) for key in sorted(files)}


def preset_names(kind: str | None = None) -> list[str]:
    """Names of the presets of ``kind`` (of every kind if None), sorted, each once."""
    return sorted({n for k, n in all_presets() if kind is None or k == kind})


def kinds_of(name: str) -> list[str]:
    """The kinds that have a preset called ``name``."""
    return sorted(k for k, n in all_presets() if n == name)


def load_preset(name: str, kind: str, *, source: str | None = None,
                field: str | None = None) -> Preset:
    """The preset called ``name`` of the given kind; an ``InputError`` listing choices if none."""
    if name.endswith((".yaml", ".yml")):        # a file: here (the working folder), else beside
                                                # the experiment
        path = Path(name)
        if not path.is_absolute() and not path.exists() and source:
            path = Path(source).parent / path
        return preset_file(path, kind, source=source, field=field)
    preset = all_presets().get((kind, name))
    if preset is None:
        raise InputError(
            f"unknown {kind} preset {name!r}; expected one of: {', '.join(preset_names(kind))}",
            source=source, field=field,
        )
    return preset


def preset_file(path: Path, kind: str, *, source: str | None = None,
                field: str | None = None) -> Preset:
    """A preset of ``kind`` read from its own file (one ``embsim calibrate`` wrote, say);
    its ``extends`` may name a shipped preset."""
    if not path.is_file():
        raise InputError(f"preset file {path} not found", source=source, field=field)
    entry = _read_file(path)
    if entry.kind != kind:
        raise InputError(f"{path} is a {entry.kind} preset; expected a {kind} preset",
                         source=source, field=field)
    files = {k: read for k, read in _shipped_files().items() if k != (kind, entry.name)}
    files[(kind, entry.name)] = entry
    return _flatten((kind, entry.name), files)


@cache
def _shipped_files() -> dict[tuple[str, str], _PresetFile]:
    return {(f.kind, f.name): f for f in (_read_file(path, shipped=True)
                                          for path in preset_files(PRESET_DIR))}


def spec_class(kind: str, *, source: str | None = None, field: str | None = None) -> type[Spec]:
    """The spec class of a preset kind: a device kind's record, or another registered kind."""
    if kind in PRESET_KINDS:
        return PRESET_KINDS.get(kind)
    if kind not in DEVICE_KINDS:
        known = sorted([*DEVICE_KINDS.names(), *PRESET_KINDS.names()])
        raise InputError(f"unknown kind {kind!r}; expected one of: {', '.join(known)}",
                         source=source, field=field)
    return DEVICE_KINDS.get(kind).spec


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
    cls = spec_class(kind, source=source, field=f"{field}.kind" if field else "kind")
    try:
        spec = cls(**values)
    except ValidationError as err:
        loc, message = first_problem(err, f"unknown {kind} parameter; expected one of: "
                                          f"{', '.join(cls.model_fields)}")
        where = ".".join(p for p in (field, loc) if p) or None
        raise InputError(message, source=source, field=where) from None
    except InputError as err:
        where = ".".join(p for p in (field, err.field) if p) or None
        raise InputError(err.detail, source=source or err.source, field=where) from None
    return spec, sources
