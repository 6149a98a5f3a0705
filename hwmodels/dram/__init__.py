"""DRAM and HBM devices: a declarative spec (``DramSpec``) and three timing models.

Registers device kind ``dram`` (``hwmodels.device.make_device("dram", spec, fidelity)``):
``analytic``, ``fast`` and ``detailed`` are each a model of their own, each serving the host's
channel data path or the private per-rank and per-bank-group paths of near-memory units.
"""

from __future__ import annotations

from hwmodels.device import DeviceKind, register_kind
from hwmodels.dram.analytic import AnalyticDram
from hwmodels.dram.detailed import DetailedDram
from hwmodels.dram.fast import FastDram
from hwmodels.dram.model import PATHS, DramModel
from hwmodels.dram.spec import DramSpec

DRAM = register_kind(DeviceKind(
    name="dram", spec=DramSpec,
    levels={model.fidelity: model for model in (AnalyticDram, FastDram, DetailedDram)},
    paths=PATHS))

__all__ = ["DRAM", "AnalyticDram", "DetailedDram", "DramModel", "DramSpec", "FastDram"]
