"""Machine presets written by ``embsim calibrate``: a whole ``system`` with sourced values.

Numbers are stored as ``{value, source}`` in SI base units, so a preset round-trips exactly.
``apply_machine`` puts a preset under an experiment point: the machine's memory, links, cache
and processor costs replace the point's, while the point keeps where its tables live and its
pooling mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from embsim.errors import InputError
from simulator.core.config import Experiment, parse_experiment, read_yaml
from simulator.runs.results import write_text


def strip_sources(node: Any) -> Any:
    """The same structure with every ``{value, source}`` pair replaced by its value."""
    if isinstance(node, dict):
        if set(node) == {"value", "source"}:
            return node["value"]
        return {key: strip_sources(value) for key, value in node.items()}
    if isinstance(node, list):
        return [strip_sources(item) for item in node]
    return node


def save_machine_preset(preset: dict[str, Any], path: Path) -> None:
    """Write the preset as YAML, atomically."""
    write_text(yaml.safe_dump(preset, sort_keys=False), path)


def load_machine_preset(path: Path) -> dict[str, Any]:
    """The preset file as written; its system is checked against the experiment format."""
    preset = read_yaml(path)
    if not isinstance(preset, dict) or preset.get("kind") != "machine" or "system" not in preset:
        raise InputError("expected a machine preset written by 'embsim calibrate' (kind: "
                         "machine, with a system)", source=str(path))
    machine_system(preset, str(path))
    return preset


def machine_system(preset: dict[str, Any], source: str) -> dict[str, Any]:
    """The preset's system as plain config values, validated."""
    system = strip_sources(preset["system"])
    parse_experiment({"system": system, "workload": {"generator": {
        "model": "rm3", "batches": 1}}}, source)
    return system


def apply_machine(config: Experiment, preset: dict[str, Any], source: str) -> Experiment:
    """``config`` simulated on the machine of ``preset`` (tables' place and pooling kept)."""
    system = machine_system(preset, source)
    system["tables"] = config.system.tables.model_dump(exclude_none=True)
    system["compute"]["pooling"] = config.system.compute.pooling
    data = config.model_dump(mode="json", exclude_none=True)
    data["system"] = system
    tier = config.system.tables.home
    if tier not in system["memory"]:
        raise InputError(f"the experiment's tables live in {tier!r}, which the machine preset "
                         f"does not have (it has {', '.join(system['memory'])})",
                         source=source, field="system.tables.tier")
    return parse_experiment(data, source)
