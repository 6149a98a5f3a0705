"""The dense layers' engine: a roofline of a compute unit's effective peak and the bytes a layer
moves, plus a fixed cost per layer (an operator call or kernel launch).

A layer of ``batch`` rows from ``n_in`` to ``n_out`` features (``nn.Linear`` then ReLU) does
``2 * batch * n_in * n_out`` FLOPs and touches ``n_out`` activations per row (bias and
activation function, at ``element_time`` each); it reads its weights and bias and its input
activations and writes its output. Its time is ``max(FLOPs / peak_flops + elements *
element_time, memory time) + layer_overhead`` (the peak scaled by ``batch / (batch +
half_batch)``), where the memory time is what the memory tier
holding the weights takes for those bytes (``simulator.core.dense`` sends them through the
tier's device model, so they contend with the embeddings' traffic) unless the layer's whole
working set fits in ``cache`` (then it is read there, at ``cache_bandwidth``: weights and
activations reused from one query to the next stay in a CPU's last-level cache or a GPU's L2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from embsim.units import Bandwidth, Size
from hwmodels.specs import PRESET_KINDS, NonNegativeTime, Spec


@PRESET_KINDS.register("dense")
class DenseSpec(Spec):
    """A compute unit's effective speed on the dense layers (``embsim calibrate --stage
    dense`` fits the first three on this machine)."""

    peak_flops: Annotated[float, Field(gt=0)]
    """Effective FLOP/s of its matrix multiplications."""
    half_batch: Annotated[float, Field(ge=0)] = 0.0
    """The batch at which a layer reaches half the peak (small batches fill the vector units'
    tiles only partly): the peak a batch of B rows gets is peak_flops * B / (B + half_batch)."""
    layer_overhead: NonNegativeTime = 0.0
    element_time: NonNegativeTime = 0.0
    cache: Annotated[Size, Field(ge=0)] = 0.0
    """Bytes of a layer's working set (weights and activations) that stay on chip."""
    cache_bandwidth: Annotated[Bandwidth | None, Field(gt=0)] = None
    """How fast a layer that fits ``cache`` streams its bytes from there (None: free)."""
    engines: Annotated[int, Field(gt=0, le=4096)] = 1
    """Layers it runs at once, each at the full speed above (CPU cores that each run one
    query's MLPs, as co-located inference does); queries beyond that take turns."""


@dataclass(frozen=True)
class Layer:
    """One step of the dense stage: ``flops`` of work, ``elements`` written through the
    activation function, ``weight_bytes`` read from the weights and ``in_bytes`` /
    ``out_bytes`` of activations read and written."""

    name: str
    batch: int
    flops: float
    elements: float
    weight_bytes: int
    in_bytes: int
    out_bytes: int

    @property
    def footprint(self) -> int:
        return self.weight_bytes + self.in_bytes + self.out_bytes


def linear(name: str, batch: int, n_in: int, n_out: int, element_bytes: int) -> Layer:
    """``nn.Linear(n_in, n_out)`` then its activation over ``batch`` rows."""
    return Layer(name, batch, 2.0 * batch * n_in * n_out, float(batch * n_out),
                 (n_in * n_out + n_out) * element_bytes, batch * n_in * element_bytes,
                 batch * n_out * element_bytes)


def mlp(prefix: str, batch: int, widths: list[int], element_bytes: int) -> list[Layer]:
    """The layers of an MLP whose widths (input first) are ``widths``."""
    return [linear(f"{prefix}{i}", batch, n_in, n_out, element_bytes)
            for i, (n_in, n_out) in enumerate(zip(widths, widths[1:], strict=False))]


def interaction(kind: str, batch: int, dense_width: int, dims: list[int],
                element_bytes: int) -> tuple[Layer, int]:
    """DLRM's feature interaction of the bottom MLP's output (``dense_width``) and the pooled
    embeddings (``dims``), and the width of its output (the top MLP's input). ``dot``: the
    pairwise dot products of the F + 1 vectors (each ``dense_width`` long; the strictly lower
    triangle is kept) concatenated with the bottom MLP's output; ``cat``: the concatenation."""
    vectors = len(dims) + 1
    in_bytes = batch * (dense_width + sum(dims)) * element_bytes
    if kind == "dot":
        pairs = vectors * (vectors - 1) // 2
        width = dense_width + pairs
        flops = 2.0 * batch * vectors * vectors * dense_width     # the batched X @ X^T
    else:
        width = dense_width + sum(dims)
        flops = 0.0
    out_bytes = batch * width * element_bytes
    return Layer("interaction", batch, flops, 0.0, 0, in_bytes, out_bytes), width


def compute_time(layer: Layer, spec: DenseSpec) -> float:
    """The layer's time at the unit's effective peak, as if its bytes cost nothing."""
    peak = spec.peak_flops * layer.batch / (layer.batch + spec.half_batch)
    return layer.flops / peak + layer.elements * spec.element_time


def cache_time(layer: Layer, spec: DenseSpec) -> float:
    """The time a layer that fits the engine's cache takes to stream its bytes from it."""
    return layer.footprint / spec.cache_bandwidth if spec.cache_bandwidth else 0.0


def roofline_time(layer: Layer, spec: DenseSpec, memory_s: float) -> float:
    """The layer's time when its bytes take ``memory_s`` through memory."""
    return max(compute_time(layer, spec), memory_s) + spec.layer_overhead
