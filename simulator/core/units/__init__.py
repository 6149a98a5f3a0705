"""Compute units: the places where pooling happens, registered by kind.

Every system has the host processor (``system.compute``, unit ``compute``, kind ``host``,
``units.host``): it pools every lookup no other unit takes, writes every bag's output and
combines the partial sums the others send. ``system.units`` adds more, each a kind registered
in ``UNITS`` by its own module of this package (every module here is imported on first use, so
a new kind is one module): a unit placed at a memory tier pools the lookups whose rows live
there, reading them through its own path to that memory, and sends one partial vector per bag
it touched to the host over a link.

A kind is a ``PlacedUnit`` subclass with an ``options_model`` (a pydantic model of its keys
in ``system.units.<name>``, unknown keys rejected) and a ``build`` class method that turns one
config entry into its units (a kind may build several: one per rank, say). A unit's ``serve``
is its SimPy process body for one query's share of lookups and returns its unloaded time;
A unit sends the host its partial vectors and names their bags in ``Query.partial_bags``, which
the host's ``combine`` stage adds (and the functional reference checks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from embsim.errors import InputError
from embsim.registry import Registry, submodules
from embsim.validation import first_problem

if TYPE_CHECKING:
    from hwmodels.link import Link
    from hwmodels.memory import Tier
    from simulator.core.fabric import Fabric, Process
    from simulator.core.query import Query

HOST = "compute"
"""The host processor's unit name (its results columns end in ``_compute``)."""

class UnitOptions(BaseModel):
    """Base of every unit kind's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class UnitSite:
    """What a unit kind may use when it builds its units: the system's tiers and links, the
    tables' tiers (in order) and the host's link to each, the row sizes, elements per row (the
    tables' dim), their element types and rows per table, the run's seed, the experiment file
    (for errors) and the trace's profile: reads per global row over its first N batches (None
    before a run)."""

    tiers: dict[str, Tier]
    links: dict[str, Link]
    table_tiers: list[str]
    host_links: list[str | None]
    row_bytes: np.ndarray
    row_elements: np.ndarray
    row_dtypes: tuple[str, ...]
    table_rows: np.ndarray
    batch_size: int
    seed: int
    source: str
    training: bool = False
    profile: Callable[[int | None], np.ndarray] | None = None
    functional: bool = False
    """``run.functional``: units that compute values for real check them."""
    table_tier: np.ndarray | None = None
    """The index (into ``table_tiers``) of the tier each table lives in, for whole-table
    placements (None when rows of a table may be split over tiers)."""


def table_tier_index(name: str, tier: str, site: UnitSite) -> int:
    """The index among the table tiers of ``tier``, where unit ``name`` sits; a unit pools
    rows where they live, so a tier without tables is an ``InputError``."""
    if tier not in site.table_tiers:
        raise InputError(f"unit sits at {tier!r}, where no tables live; expected one of: "
                         f"{', '.join(site.table_tiers)}", source=site.source,
                         field=f"system.units.{name}.tier")
    return site.table_tiers.index(tier)


class ComputeUnit(ABC):
    """A place where pooling happens: one unit of one kind."""

    kind: ClassVar[str]
    link: str | None = None
    """The link its partial vectors cross to the host (None: they land there directly)."""
    partial_share: float = 1.0
    """The share of a bag's output vector one of its partial vectors holds (a slice of it,
    for units that pool slices of rows)."""

    def __init__(self, name: str, index: int, tier_index: int | None):
        self.name = name
        self.index = index
        self.tier_index = tier_index
        """The table tier it sits at (None: it reaches rows through the host's paths)."""
        self.pooled_lookups = 0
        self.partials = 0
        self.partial_bytes = 0
        self.energy_j = 0.0
        """Energy the unit's own logic spent (its memory's is the tier's)."""

    def claims(self, q: Query, lookups: np.ndarray) -> np.ndarray:
        """Which of ``lookups`` (indices of rows in this unit's tier) this unit pools; a kind
        with several units per tier splits them here."""
        return np.ones(lookups.size, dtype=bool)

    @abstractmethod
    def serve(self, q: Query, share: np.ndarray | slice, fabric: Fabric) -> Process:
        """Pool ``share`` of ``q`` (SimPy process body); returns the unloaded time."""

    def partial_sizes(self, bags: np.ndarray, row_bytes: np.ndarray,
                      batch_size: int) -> np.ndarray:
        """Bytes of each partial vector the host receives for ``bags`` (indices of the query's
        bags, table by table), of tables with rows of ``row_bytes``: the host's own account of
        what a unit's partials hold, which the invariants compare with the unit's."""
        return np.ceil(row_bytes[bags // batch_size] * self.partial_share).astype(np.int64)

    def partial_offsets(self, bags: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Where in its bag's output each partial of ``bags`` (of ``sizes`` bytes) goes: at the
        start, for units whose partials are whole vectors."""
        return np.zeros(bags.size, dtype=np.int64)

    def report_partials(self, q: Query, bags: np.ndarray, payload: int) -> None:
        """Record the partial vectors sent for ``bags`` (``payload`` bytes in all, as the unit
        counts them from the rows it pooled) for the host's combine stage, the invariants and
        the functional check."""
        self.partials += bags.size
        self.partial_bytes += payload
        q.partials += bags.size
        q.partial_bags[self.index] = bags

    def warm(self, q: Query, share: np.ndarray | slice) -> None:  # noqa: B027 (optional)
        """Pass ``share`` through the unit's own caches, taking no time (a warm-up pass)."""

    def counters(self) -> dict[str, float]:
        """Results columns of this unit, named ``<counter>_<unit name>`` by the caller."""
        return {"pooled_lookups": self.pooled_lookups, "partials": self.partials}


class PlacedUnit(ComputeUnit):
    """A unit of ``system.units``: built from its config entry, it sits at a memory tier."""

    options_model: ClassVar[type[UnitOptions]] = UnitOptions
    data_path: ClassVar[str] = "channel"
    """The data path its tier's device serves it over (``hwmodels.dram.model.PATHS``)."""

    @classmethod
    def reserved_bytes(cls, options: Any, tier: Tier, row_bytes: np.ndarray) -> int:
        """Bytes at the top of its tier the unit keeps for itself (not for the tables)."""
        return 0

    @classmethod
    def build(cls, name: str, options: Any, first_index: int,
              site: UnitSite) -> list[PlacedUnit]:
        """The units one config entry ``name`` describes, indexed from ``first_index`` (one,
        unless a kind builds several)."""
        return [cls(name, first_index, options, site)]


UNITS: Registry[type[PlacedUnit]] = Registry("compute unit kind", load=submodules(__name__))


def unit_options(kind: str, options: dict[str, Any], *, source: str | None,
                 field: str) -> tuple[type[PlacedUnit], UnitOptions]:
    """The unit kind called ``kind`` and its validated ``options``."""
    cls = UNITS.get(kind, source=source, field=f"{field}.kind")
    try:
        return cls, cls.options_model.model_validate(options)
    except ValidationError as err:
        where, message = first_problem(err)
        raise InputError(message, source=source,
                         field=f"{field}.{where}" if where else field) from None
