"""The stages a query walks, registered by name and assembled by the system from its config.

A stage is one step of a query's path: ``cache`` (look rows up in the row cache), ``assign``
(give each lookup to the compute unit that pools it), ``fetch`` (start moving rows to the unit
that pools them), ``pool`` (every unit pools its share, concurrently), ``combine`` (the host
adds the partial sums other units sent), ``update`` (training's read-modify-write of the rows
and their optimizer state). Each is a ``Stage`` subclass in its own module of this package,
registered in ``STAGES``; every module here is imported on first use, so a new stage is one
module.

The system puts a stage in a query's pipeline when its ``wanted(system)`` says the config
needs it, in ``order``. ``run`` is the stage's SimPy process body (one event per stage and
query, never per lookup) and returns the stage's contribution to the query's unloaded latency:
the floor that the latency invariant checks (``simulator.core.metrics``). ``warm`` replays the
stage's state changes without time, for ``run.warm_caches``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from embsim.registry import Registry, submodules

if TYPE_CHECKING:
    from simulator.core.fabric import Fabric, Process
    from simulator.core.query import Query
    from simulator.core.system import System


class Stage(ABC):
    """One step of every query's path through a system."""

    name: ClassVar[str]
    order: ClassVar[int]
    """Position in the pipeline: lower runs first."""

    def __init__(self, system: System):
        self.system = system

    @classmethod
    def wanted(cls, system: System) -> bool:
        """Whether a query through ``system`` walks this stage (by default: always)."""
        return True

    @abstractmethod
    def run(self, q: Query, fabric: Fabric) -> Process:
        """Do the stage's work for ``q``; returns its unloaded time."""

    def warm(self, q: Query) -> None:  # noqa: B027 (optional: most stages keep no state)
        """Change the stage's state as ``run`` would, taking no time (a warm-up pass)."""


STAGES: Registry[type[Stage]] = Registry("stage", load=submodules(__name__))


def register_stage(cls: type[Stage]) -> type[Stage]:
    """Class decorator: add a stage to ``STAGES`` under its ``name``."""
    return STAGES.register(cls.name)(cls)


def pipeline(system: System) -> list[Stage]:
    """The stages a query through ``system`` walks, in order."""
    chosen = [STAGES.get(name) for name in STAGES.names()]
    return [cls(system) for cls in sorted(chosen, key=lambda cls: cls.order)
            if cls.wanted(system)]


class InstantStage(Stage):
    """A stage that takes no simulated time: it only decides (and starts) things."""

    def run(self, q: Query, fabric: Fabric) -> Process:
        return self.apply(q, fabric)
        yield  # a process body, though it never waits

    @abstractmethod
    def apply(self, q: Query, fabric: Fabric | None) -> float:
        """Do the stage's work for ``q`` (``fabric`` is None in a warm-up pass); returns its
        unloaded time (zero: it takes none)."""

    def warm(self, q: Query) -> None:
        self.apply(q, None)
