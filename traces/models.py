"""Model presets: the embedding-layer shape of published DLRM model classes.

Each preset in ``traces/presets/models.yaml`` gives the number of tables, rows per table,
embedding dimension, element type and pooling factor, with a ``source:`` naming where the
numbers come from. ``model_preset("rm2")`` returns them ready for ``synthesize``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt, ValidationError

from embsim.registry import Registry
from traces.schema import TableSpec

PRESET_FILE = "presets/models.yaml"


@dataclass(frozen=True)
class ModelPreset:
    """Tables and per-table pooling factors of one model, with the source of the numbers."""

    tables: list[TableSpec]
    pooling: list[float]
    source: str


class _PresetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tables: PositiveInt
    rows: PositiveInt
    dim: PositiveInt
    dtype: str = "float32"
    pooling: PositiveFloat
    source: str

    def preset(self) -> ModelPreset:
        table = TableSpec(rows=self.rows, dim=self.dim, dtype=self.dtype)
        return ModelPreset([table] * self.tables, [self.pooling] * self.tables, self.source)


MODELS: Registry[ModelPreset] = Registry("model preset")


def _load_presets() -> None:
    text = resources.files("traces").joinpath(PRESET_FILE).read_text()
    for name, entry in yaml.safe_load(text).items():
        try:
            MODELS.register(name)(_PresetEntry(**entry).preset())
        except ValidationError as err:
            raise ValueError(f"traces/{PRESET_FILE}: {name}: {err}") from None


def model_preset(name: str) -> ModelPreset:
    """The preset called ``name``; an ``InputError`` listing the known presets otherwise."""
    return MODELS.get(name, field="model")


_load_presets()
