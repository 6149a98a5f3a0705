"""The sweep grammar: which override sets an experiment's points get.

``sweep`` in the experiment YAML combines four kinds of axes into points:

- ``cases``: named override sets (``{big: {system.memory.hbm.capacity: 80 GB}}``);
- ``grid``: dotted paths to lists, their cartesian product;
- ``zip``: one group (or a list of groups) of equally long lists, advanced together;
- ``repeats``: every point again with derived seeds (see ``repeat_seeds``).

Points are ordered cases first (outermost), then the grid (its last path varies fastest), then
the zip groups, then repeats (innermost). ``include`` keeps only the points that match one of
its conditions and ``exclude`` drops the points that match one of its; a condition maps swept
paths (or ``case``) to a value or a list of values, and a point matches when every path has
one of the listed values. A path may be swept by one kind of axis only, and filters may name
only swept paths and swept values, so a typo is an error instead of a silently empty filter.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass
from typing import Any

from embsim.errors import InputError
from embsim.limits import MAX_POINTS
from simulator.core.config import Experiment, RepeatConfig, SweepConfig


@dataclass(frozen=True)
class Variant:
    """One combination of the sweep's axes, before repeats: its case and its overrides."""

    case: str | None
    overrides: dict[str, Any]

    def coordinates(self) -> dict[str, Any]:
        """What filters match against: the overrides, and ``case`` when there is one."""
        return self.overrides if self.case is None else {"case": self.case, **self.overrides}


Axis = list[Variant]


def variants(sweep: SweepConfig | None, source: str) -> list[Variant]:
    """Every combination of the sweep's cases, grid and zip groups that the filters keep."""
    if sweep is None:
        return [Variant(None, {})]
    axes = _axes(sweep, source)
    check_points(math.prod(len(axis) for axis in axes), source)
    combos = [_combine(choice) for choice in itertools.product(*axes)]
    swept = _swept_values(axes)
    if sweep.include:
        include = _conditions(sweep.include, swept, "sweep.include", source)
        combos = [v for v in combos if _matches_any(v, include)]
    if sweep.exclude:
        exclude = _conditions(sweep.exclude, swept, "sweep.exclude", source)
        combos = [v for v in combos if not _matches_any(v, exclude)]
    if not combos:
        raise InputError("the filters leave no point to run", source=source,
                         field="sweep.include" if sweep.include else "sweep.exclude")
    return combos


def check_points(count: int, source: str) -> None:
    """``InputError`` when a sweep would have more than ``MAX_POINTS`` points (before its
    filters; repeats included), refused before they are listed."""
    if count > MAX_POINTS:
        raise InputError(f"the sweep has {count} points (cases x grid x zip x repeats); at "
                         f"most {MAX_POINTS}", source=source, field="sweep")


def repeat_config(sweep: SweepConfig | None) -> RepeatConfig:
    """``repeats`` as a ``RepeatConfig`` (a bare count keeps the default seed paths)."""
    repeats = sweep.repeats if sweep is not None else 1
    return repeats if isinstance(repeats, RepeatConfig) else RepeatConfig(count=repeats)


def repeat_seeds(config: Experiment, repeats: RepeatConfig, repeat: int,
                 source: str) -> dict[str, int]:
    """Seed overrides of repeat ``repeat`` of a point whose resolved config is ``config``.

    Repeat 0 keeps the configured seeds (so adding repeats reuses finished points); repeat r
    derives each seed from the configured one and r. The default seed paths skip
    ``workload.generator.seed`` when the workload is a trace file.
    """
    if repeats.count == 1:
        return {}
    explicit = "seeds" in repeats.model_fields_set
    data = config.model_dump()
    out = {}
    for path in repeats.seeds:
        value = _get_dotted(data, path)
        if value is None and not explicit:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{path!r} is {value!r} in this experiment; expected an integer seed",
                             source=source, field="sweep.repeats.seeds")
        out[path] = derive_seed(value, repeat)
    return out


def derive_seed(seed: int, repeat: int) -> int:
    """A 32-bit seed for repeat ``repeat`` of ``seed``, stable across platforms and versions."""
    if repeat == 0:
        return seed
    return int(hashlib.sha256(f"{seed}:{repeat}".encode()).hexdigest()[:8], 16)


def _axes(sweep: SweepConfig, source: str) -> list[Axis]:
    """Each axis as its list of choices: cases first, then grid paths, then zip groups."""
    owner: dict[str, str] = {}

    def claim(path: str, where: str) -> None:
        if path in owner and owner[path] != where:
            raise InputError(f"also swept in {owner[path]}; a path may be swept in one place",
                             source=source, field=f"{where}.{path}")
        owner[path] = where

    axes: list[Axis] = []
    if sweep.cases:
        for overrides in sweep.cases.values():
            for path in overrides:
                claim(path, "sweep.cases")
        axes.append([Variant(name, dict(overrides))
                     for name, overrides in sweep.cases.items()])
    for path, values in sweep.grid.items():
        claim(path, "sweep.grid")
        axes.append([Variant(None, {path: value}) for value in values])
    groups = sweep.zip if isinstance(sweep.zip, list) else [sweep.zip]
    for number, group in enumerate(groups):
        if not group:
            continue
        where = f"sweep.zip[{number}]" if isinstance(sweep.zip, list) else "sweep.zip"
        for path in group:
            claim(path, where)
        axes.append(_zip_axis(group, where, source))
    return axes


def _zip_axis(group: dict[str, list[Any]], where: str, source: str) -> Axis:
    first, *_ = group
    length = len(group[first])
    for path, values in group.items():
        if len(values) != length:
            raise InputError(f"has {len(values)} values but {where}.{first} has {length}; "
                             "zipped lists advance together", source=source,
                             field=f"{where}.{path}")
    return [Variant(None, {path: values[i] for path, values in group.items()})
            for i in range(length)]


def _combine(choice: tuple[Variant, ...]) -> Variant:
    case = next((v.case for v in choice if v.case is not None), None)
    overrides: dict[str, Any] = {}
    for variant in choice:
        overrides.update(variant.overrides)
    return Variant(case, overrides)


def _swept_values(axes: list[Axis]) -> dict[str, list[Any]]:
    """Every swept path (and ``case``) with the values it takes."""
    out: dict[str, list[Any]] = {}
    for axis in axes:
        for variant in axis:
            for key, value in variant.coordinates().items():
                seen = out.setdefault(key, [])
                if value not in seen:
                    seen.append(value)
    return out


Filter = dict[str, list[Any]]


def _conditions(given: list[dict[str, Any]], swept: dict[str, list[Any]], where: str,
                source: str) -> list[Filter]:
    """Each filter condition as path -> accepted values, every path and value checked."""
    out = []
    for index, condition in enumerate(given):
        field = f"{where}[{index}]"
        checked = {}
        for key, wanted in condition.items():
            if key not in swept:
                raise InputError(f"{key!r} is not swept; expected one of: {', '.join(swept)}",
                                 source=source, field=field)
            values = swept[key]
            accepted = [wanted] if wanted in values or not isinstance(wanted, list) else wanted
            for value in accepted:
                if value not in values:
                    raise InputError(f"{key} never takes the value {value!r}; it takes: "
                                     f"{', '.join(repr(v) for v in values)}", source=source,
                                     field=field)
            checked[key] = accepted
        out.append(checked)
    return out


def _matches_any(variant: Variant, conditions: list[Filter]) -> bool:
    coordinates = variant.coordinates()
    return any(all(key in coordinates and coordinates[key] in accepted
                   for key, accepted in condition.items()) for condition in conditions)


def _get_dotted(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node
