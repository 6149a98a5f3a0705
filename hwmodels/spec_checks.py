"""Field validators shared by device specs (pydantic ``field_validator`` bodies).

Each raises ``ValueError`` naming the field, so pydantic reports it at that field and
``hwmodels.presets.resolve`` turns it into an ``InputError`` with the field's dotted path.
"""

from __future__ import annotations

from pydantic import ValidationInfo


def whole_bytes(value: float, info: ValidationInfo) -> float:
    """``value`` unchanged if it is a whole number of bytes."""
    if value != int(value):
        raise ValueError(f"{info.field_name} must be a whole number of bytes, got {value:g}")
    return value


def whole_multiple(value: float, info: ValidationInfo, of: str) -> float:
    """``value`` unchanged if it is a whole multiple of the (valid) field ``of``."""
    base = info.data.get(of)
    if base is not None and (value % base or value < base):
        raise ValueError(f"{info.field_name} must be a whole multiple of {of} ({base:g} B), "
                         f"got {value:g} B")
    return value
