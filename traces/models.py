"""Model presets: the embedding-layer shape of published DLRM model classes.

Each preset in ``traces/presets/models.yaml`` gives the number of tables, rows per table,
embedding dimension, element type and pooling factor, with a ``source:`` naming where the
numbers come from. ``model_preset("rm2")`` returns them ready for ``synthesize``. A preset may
also give its dense layers (``DenseShape``: DLRM's bottom and top MLPs and feature
interaction, with their own ``dense_source``), which the simulator's dense stage runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt, ValidationError

from embsim.registry import Registry
from traces.schema import TableSpec

PRESET_FILE = "presets/models.yaml"


@dataclass(frozen=True)
class DenseShape:
    """A DLRM model's dense layers: ``bottom_mlp`` lists the dense features then each layer's
    width; ``top_mlp`` each layer's width (its input is the interaction's output, as DLRM
    prepends it); ``interaction``: ``dot`` (pairwise dot products of the bottom MLP's output
    and the pooled embeddings, plus that output) or ``cat`` (their concatenation)."""

    bottom_mlp: list[int]
    top_mlp: list[int]
    interaction: Literal["dot", "cat"]
    source: str


@dataclass(frozen=True)
class ModelPreset:
    """Tables and per-table pooling factors of one model, with the source of the numbers, and
    its dense layers when the preset gives them."""

    tables: list[TableSpec]
    pooling: list[float]
    source: str
    dense: DenseShape | None = None


class _PresetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tables: PositiveInt
    rows: PositiveInt | list[PositiveInt]
    dim: PositiveInt
    dtype: str = "float32"
    pooling: PositiveFloat
    source: str
    bottom_mlp: list[PositiveInt] | None = None
    top_mlp: list[PositiveInt] | None = None
    interaction: Literal["dot", "cat"] | None = None
    dense_source: str | None = None

    def preset(self) -> ModelPreset:
        rows = self.rows if isinstance(self.rows, list) else [self.rows] * self.tables
        if len(rows) != self.tables:
            raise ValueError(f"{len(rows)} row counts for {self.tables} tables")
        tables = [TableSpec(rows=n, dim=self.dim, dtype=self.dtype) for n in rows]
        dense = None
        if self.bottom_mlp is not None:
            assert self.top_mlp and self.interaction and self.dense_source
            dense = DenseShape(self.bottom_mlp, self.top_mlp, self.interaction,
                               self.dense_source)
        return ModelPreset(tables, [self.pooling] * self.tables, self.source, dense)


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
