"""The dense stage: a DLRM model's bottom MLP, feature interaction and top MLP on the host's
processor, each layer a roofline of the engine's effective peak and the bytes it moves through
the memory tier that holds the weights (``hwmodels.dense``).

``build_dense`` resolves ``system.dense`` against the workload (the tables' count and widths
fix the interaction's shape; the batch size fixes every layer's rows) and places the weights
and two activation buffers at the top of their tier (``reserved_bytes`` are kept out of the
tables' room there). ``DenseModel.run`` is the SimPy process body of a list of layers: each
layer's bytes go through the tier's device model (so they queue behind, and delay, the
embeddings' traffic) unless the layer's working set fits the engine's ``cache`` (then they
stream from there at its ``cache_bandwidth``); it waits for the longer of its compute and
memory times plus the layer overhead, and returns the same on an idle tier (the unloaded
time). The engine runs ``engines`` layers at a time (``Fabric.dense_engine``): more queries
in flight take turns, layer by layer.

What is ignored: the layers of one query never overlap each other; the processor's time on
the dense layers is not taken from the embedding stage's pooling (the host's processor is
modelled as having room for both: a GPU's SMs or a CPU's cores split between them); the
final sigmoid is not counted, and the interaction pays a layer's overhead.
"""

from __future__ import annotations

import numpy as np

from embsim.errors import InputError
from hwmodels.dense import DenseSpec, Layer, cache_time, interaction, mlp, roofline_time
from hwmodels.memory import Tier
from hwmodels.presets import resolve
from simulator.core.config import DenseConfig
from simulator.core.fabric import Fabric, Process
from traces.models import DenseShape, model_preset
from traces.schema import DTYPE_BYTES, TraceMeta

FIELD = "system.dense"


def dense_shape(cfg: DenseConfig, source: str) -> DenseShape:
    """The model preset's dense layers with the config's fields in their place."""
    bottom, top, kind = cfg.bottom_mlp, cfg.top_mlp, cfg.interaction
    if cfg.model is not None:
        try:
            preset = model_preset(cfg.model)
        except InputError as err:
            raise InputError(err.detail, source=source, field=f"{FIELD}.model") from None
        if preset.dense is None:
            raise InputError(f"model {cfg.model!r} gives no dense layers; give bottom_mlp and "
                             "top_mlp", source=source, field=f"{FIELD}.model")
        bottom = bottom or preset.dense.bottom_mlp
        top = top or preset.dense.top_mlp
        kind = kind or preset.dense.interaction
    assert bottom is not None and top is not None
    if cfg.dense_features is not None:
        bottom = [cfg.dense_features, *bottom[1:]]
    return DenseShape(list(bottom), list(top), kind or "dot", source)


def dense_layers(shape: DenseShape, batch: int, dims: list[int], element_bytes: int,
                 source: str = "config") -> tuple[list[Layer], list[Layer]]:
    """The bottom MLP's layers, and the interaction's then the top MLP's, for a batch of
    ``batch`` samples over tables of widths ``dims``."""
    width = shape.bottom_mlp[-1]
    if shape.interaction == "dot" and any(d != width for d in dims):
        raise InputError(f"the dot interaction needs every table's dim to equal the bottom "
                         f"MLP's output ({width}); the tables have {sorted(set(dims))}",
                         source=source, field=f"{FIELD}.bottom_mlp")
    bottom = mlp("bottom", batch, shape.bottom_mlp, element_bytes)
    joined, top_in = interaction(shape.interaction, batch, width, dims, element_bytes)
    return bottom, [joined, *mlp("top", batch, [top_in, *shape.top_mlp], element_bytes)]


def _align_down(value: int, unit: int) -> int:
    return value // unit * unit


class DenseModel:
    """The dense layers of one system, their engine, and where their bytes live."""

    def __init__(self, spec: DenseSpec, tier_name: str, tier: Tier, bottom: list[Layer],
                 top: list[Layer]):
        self.spec = spec
        self.tier_name = tier_name
        self.tier = tier
        self.bottom = bottom
        self.top = top
        layers = bottom + top
        unit = int(tier.spec.interleave)
        weights = sum(-(-layer.weight_bytes // unit) * unit for layer in layers)
        buffer = -(-max(max(layer.in_bytes, layer.out_bytes) for layer in layers) // unit) * unit
        self.reserved_bytes = weights + 2 * buffer
        base = _align_down(int(tier.spec.capacity) - self.reserved_bytes, unit)
        if base < 0:
            raise InputError(f"the dense layers need {self.reserved_bytes} B but tier "
                             f"{tier_name!r} holds {int(tier.spec.capacity)} B",
                             field=f"{FIELD}.tier")
        self.addresses: dict[str, np.ndarray] = {}
        buffers = (base + weights, base + weights + buffer)
        for i, layer in enumerate(layers):
            self.addresses[layer.name] = np.array([base, buffers[i % 2], buffers[1 - i % 2]],
                                                  dtype=np.int64)
            base += -(-layer.weight_bytes // unit) * unit
        self.flops = sum(layer.flops for layer in layers)
        self.busy_s = 0.0
        """The layers' unloaded time summed over every query (the engine's work)."""
        self.floor_s = 0.0
        """What the layers added to the queries' unloaded latencies (less than ``busy_s``
        where the bottom MLP hid behind the embeddings)."""

    def run(self, layers: list[Layer], fabric: Fabric) -> Process:
        """Run ``layers`` one after another; returns their unloaded time."""
        env, spec, tier = fabric.env, self.spec, self.tier
        unloaded = 0.0
        for layer in layers:
            with fabric.dense_engine.request() as turn:
                yield turn
                memory_s = idle_s = cache_time(layer, spec)
                if layer.footprint > spec.cache:
                    sizes = np.array([layer.weight_bytes, layer.in_bytes, layer.out_bytes])
                    keep = sizes > 0
                    done, moved = tier.access(env.now, self.addresses[layer.name][keep],
                                              sizes[keep], np.array([False, False, True])[keep])
                    memory_s, idle_s = done - env.now, tier.unloaded_time(moved)
                yield env.timeout(roofline_time(layer, spec, memory_s))
            unloaded += roofline_time(layer, spec, idle_s)
        self.busy_s += unloaded
        return unloaded


def build_dense(cfg: DenseConfig, meta: TraceMeta, tiers: dict[str, Tier], compute_tier: str,
                source: str) -> DenseModel:
    """The dense stage of ``cfg`` for a workload of ``meta``'s tables and batch size."""
    shape = dense_shape(cfg, source)
    spec, _ = resolve("dense", cfg.preset, cfg.params, source=source, field=FIELD)
    tier_name = cfg.tier or compute_tier
    if tier_name not in tiers:
        raise InputError(f"unknown memory tier {tier_name!r}; expected one of: "
                         f"{', '.join(tiers)}", source=source, field=f"{FIELD}.tier")
    bottom, top = dense_layers(shape, meta.batch_size, [t.dim for t in meta.tables],
                               DTYPE_BYTES[cfg.dtype], source)
    try:
        return DenseModel(spec, tier_name, tiers[tier_name], bottom, top)
    except InputError as err:
        raise InputError(err.detail, source=source, field=err.field) from None
