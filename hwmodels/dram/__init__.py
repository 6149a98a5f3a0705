"""DRAM and HBM devices: a declarative spec (``DramSpec``) and three timing models.

``make_dram(spec, fidelity)`` builds the model (``analytic``, ``fast`` or ``detailed``), and
is registered as device kind ``dram`` (``hwmodels.device.make_device("dram", spec, ...)``).
Importing this package also registers ``DramSpec`` as ``SPECS["dram"]`` for preset resolution.
"""

from __future__ import annotations

from embsim.registry import Registry
from hwmodels.device import DEVICES
from hwmodels.dram.analytic import AnalyticDram
from hwmodels.dram.detailed import DetailedDram
from hwmodels.dram.fast import FastDram
from hwmodels.dram.model import DramModel
from hwmodels.dram.spec import DramSpec

DRAM_FIDELITY: Registry[type[DramModel]] = Registry("DRAM fidelity")
for _model in (AnalyticDram, FastDram, DetailedDram):
    DRAM_FIDELITY.register(_model.fidelity)(_model)


@DEVICES.register("dram")
def make_dram(spec: DramSpec, fidelity: str) -> DramModel:
    """The ``fidelity`` model of ``spec`` (an InputError lists the levels known)."""
    return DRAM_FIDELITY.get(fidelity, field="fidelity")(spec)


__all__ = ["AnalyticDram", "DetailedDram", "DramModel", "DramSpec", "FastDram", "make_dram"]
