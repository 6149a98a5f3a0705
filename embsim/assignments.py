"""``KEY=VALUE`` pairs from the command line (``--set``): one parser for every command.

Values are read as YAML scalars or flow collections (``4``, ``true``, ``64 MiB``,
``[lru, lfu]``), with YAML's safe loader: no tags that build Python objects.
"""

from __future__ import annotations

from typing import Any

import yaml

from embsim.errors import InputError
from embsim.validation import shown
from embsim.yaml_input import YamlTooLarge, load_bounded


def parse_assignments(pairs: tuple[str, ...] | list[str], option: str = "--set") -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``. A pair without ``=`` or key, a value
    that is not valid YAML, and a key given twice with different values are ``InputError``s
    naming the option and the key."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"expected KEY=VALUE, got {shown(pair)}", field=option)
        if "" in key.split("."):
            raise InputError(f"{key}: expected dotted names, with no empty part", field=option)
        try:
            value = load_bounded(text) if text.strip() else ""
        except (yaml.YAMLError, YamlTooLarge) as err:
            problem = getattr(err, "problem", None) or f"the value {err}"
            raise InputError(f"{key}: value {shown(text)} is not a YAML value ({problem})",
                             field=option) from None
        if key in out and (out[key] != value or type(out[key]) is not type(value)):
            raise InputError(f"{key} is set twice, to {shown(out[key])} and {shown(value)}",
                             field=option)
        out[key] = value
    return out
