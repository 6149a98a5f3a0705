"""Validated parameter sets of devices, in SI base units (bytes, seconds, bytes/s, joules)."""

from __future__ import annotations

import importlib
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from embsim.registry import Registry
from embsim.units import Bandwidth, Energy, Size, Time

PositiveSize = Annotated[Size, Field(gt=0)]
PositiveBandwidth = Annotated[Bandwidth, Field(gt=0)]
NonNegativeTime = Annotated[Time, Field(ge=0)]
NonNegativeEnergy = Annotated[Energy, Field(ge=0)]
NonNegativeSize = Annotated[Size, Field(ge=0)]


class Spec(BaseModel):
    """Base of device specs: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MemorySpec(Spec):
    """A memory tier: how much it holds and how fast it serves requests."""

    capacity: PositiveSize
    bandwidth: PositiveBandwidth
    latency: NonNegativeTime
    access_granularity: PositiveSize
    channels: Annotated[int, Field(gt=0)] = 1
    interleave: PositiveSize = 256.0
    energy_per_bit: NonNegativeEnergy = 0.0


PRESET_MODULES = ("hwmodels.nmp", "hwmodels.upmem", "hwmodels.fhe", "hwmodels.dense")
"""Modules that register preset kinds besides links (imported on the first lookup)."""


def _import_preset_modules() -> None:
    for module in PRESET_MODULES:
        importlib.import_module(module)


PRESET_KINDS: Registry[type[Spec]] = Registry("preset kind", load=_import_preset_modules)
"""Spec classes of the preset kinds that are not memory devices (those are ``DeviceKind``
records in ``hwmodels.device``), by the ``kind`` their preset files give."""


@PRESET_KINDS.register("link")
class LinkSpec(Spec):
    """A point-to-point link (PCIe, NVLink, CXL): per-direction bandwidth and latency."""

    bandwidth: PositiveBandwidth
    latency: NonNegativeTime
    max_payload: PositiveSize = 256.0
    energy_per_bit: NonNegativeEnergy = 0.0
    message_overhead: NonNegativeSize = 0.0
    """Bytes of framing each message adds on the wire (a network link's headers per RPC)."""
