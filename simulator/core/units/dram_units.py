"""What the near-memory units inside DRAM share (kinds ``rank``, ``bank_group``, ``dimm``): one
pooling engine per rank, bank group or DIMM of a DRAM tier, fed by the host's instructions.

One entry of ``system.units`` builds one unit of such a kind, whose engines work in parallel
(one SimPy process per query, the engines' timing compiled in ``engine_schedule``):

1. Instructions: the host sends one instruction per lookup to the engine that owns its row, in
   the query's order, over the command path of the row's channel: ``instructions_per_cycle``
   per cycle of the DRAM clock (``hwmodels.nmp``); engines of one channel that each pool a
   piece of the row (``dimm``) take the same instruction. The channel's command path is busy
   across queries. An engine can start a row only when its instruction has arrived.
2. Cache: an engine may keep a row cache (``cache``: any row cache kind that needs no profile,
   e.g. RecNMP's 128 KB RankCache). With hot-entry profiling (``hot_entry_threshold: t``) the
   host marks a row cacheable only when the query reads it more than ``t`` times (RecNMP's
   LocalityBit); other rows bypass the cache. A hit costs ``cache_hit_cycles``; a miss is read
   from DRAM and fills the cache.
3. Memory: each row the engine misses is read over the engine's private data path of the DRAM
   device (``hwmodels.dram.model``: per rank, per bank group); the reads reach the device when
   the query starts, and a row is ready for the engine when both its data and its instruction
   have arrived (the instruction stream bounds when the engine pools, not when the DRAM serves
   it).
4. Pooling: the engine adds its rows as they become ready, ``lanes`` FP32 elements a cycle,
   plus ``bag_cycles`` per bag and its pipeline's depth once: it finishes at the later of its
   last row's readiness plus that row's cycles, a bag's cycles and the pipeline, and its first
   row's readiness (or when it is free from the previous query) plus all its work.
5. Partial sums: each DIMM's buffer chip adds its engines' partial vectors (one per bag) and
   sends one vector per bag it touched to the host over ``link`` (the channels' DQ), which adds
   them into the outputs (``stages.combine``). The pseudo-channels of a channel (DDR5's two
   sub-channels of a DIMM, HBM's pseudo-channels) share one such buffer.

The unit counts its engines' lookups, cache hits, partial vectors, arithmetic and cache energy,
and the load imbalance between its engines (the slowest engine sets a query's time).

What it ignores: the order in which an engine's controller schedules its rows beyond the DRAM
model's own scheduling, RecNMP's table-aware packet scheduling, and the DIMM adder tree's time.
Training is refused (``run.mode``): the host's updates of rows inside such a tier would cross
the channel while the units use the private paths, which is not modelled. A row must lie
within one engine's part of the device (the mapping must keep it there; checked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from embsim.errors import InputError
from embsim.units import parse_size
from hwmodels.cache.row_cache import ROW_CACHES, RowCache, build_row_cache
from hwmodels.dram.model import DramModel
from hwmodels.nmp import NmpSpec, NmpTiming
from hwmodels.presets import resolve
from hwmodels.tier import TABLE_ALIGNMENT, DeviceTier, touched_units
from simulator.core.config import DIRECT
from simulator.core.fabric import Fabric, Process
from simulator.core.placement import align
from simulator.core.query import Query
from simulator.core.units import PlacedUnit, UnitOptions, UnitSite, table_tier_index
from simulator.core.units.engine_schedule import Param, burst_coordinates, schedule_query

DRAM_ROW_FIELDS = ("ro", "ch", "ra", "bg", "ba")
"""The mapping fields that change between DRAM rows of one bank or between banks."""


@dataclass
class Pieces:
    """What a query asks of the engines: each of ``lookup`` (indices into the query, or a
    slice of it) becomes ``fan`` pieces of ``size`` bytes, piece ``k`` on engine
    ``engine + k`` at flat DRAM bank ``bank + k * bank_stride`` and DRAM ``row`` (those of its
    first burst); a partial vector is ``1 / fan`` of a row. ``address`` is where a piece lies
    in the device, read only where rows may cross DRAM rows (units of ``fan`` 1)."""

    lookup: np.ndarray | slice
    engine: np.ndarray
    address: np.ndarray
    size: np.ndarray
    bank: np.ndarray
    row: np.ndarray
    fan: int = 1
    bank_stride: int = 0


class DramUnitOptions(UnitOptions):
    """Options every in-DRAM unit kind shares (see the module docstring)."""

    tier: str
    link: str
    preset: str | None = None
    params: dict[str, Any] = {}
    units: int | None = Field(default=None, gt=0)
    ranks_per_dimm: int | None = Field(default=None, gt=0)
    cache: dict[str, Any] | None = None
    hot_entry_threshold: int | None = Field(default=None, ge=0)


class DramUnits(PlacedUnit):
    """The engines of one in-DRAM unit kind at one DRAM tier."""

    options_model = DramUnitOptions
    level: ClassVar[str]
    """What one engine serves: ``rank``, ``bank_group`` or ``dimm``."""

    def __init__(self, name: str, index: int, options: DramUnitOptions, site: UnitSite):
        field = f"system.units.{name}"
        tier = site.tiers[options.tier]
        if not (isinstance(tier, DeviceTier) and isinstance(tier.device, DramModel)):
            raise InputError(f"a {self.kind} unit pools inside DRAM; tier {options.tier!r} is "
                             "not a dram tier", source=site.source, field=f"{field}.tier")
        tier_index = table_tier_index(name, options.tier, site)
        if options.link not in site.links or options.link == DIRECT:
            raise InputError(f"unknown link {options.link!r}; expected one of: "
                             f"{', '.join(sorted(site.links)) or 'none defined'} (the link "
                             "partial sums cross to the host)", source=site.source,
                             field=f"{field}.link")
        if site.training:
            raise InputError(f"a {self.kind} unit pools inside DRAM for inference; training's "
                             "updates of its rows over the channel are not modelled (use "
                             "run.mode: inference, or assignment: host)", source=site.source,
                             field="run.mode")
        super().__init__(name, index, tier_index)
        self.options = options
        self.tier = tier
        self.device: DramModel = tier.device
        dram = self.device.spec
        self.ranks_per_dimm = self._ranks_per_dimm(dram.ranks, site.source, field)
        self.engines = self.engine_count()
        self._check_rows_stay_in_engines(site, options.tier)
        if options.units is not None and options.units != self.engines:
            raise InputError(f"{options.units} units, but the device has {self.engines} "
                             f"{self.level.replace('_', ' ')}s ({self.organisation()})",
                             source=site.source, field=f"{field}.units")
        spec, self.sources = resolve("nmp", options.preset, options.params,
                                     source=site.source, field=field)
        assert isinstance(spec, NmpSpec)
        self.timing = NmpTiming(spec)
        self.link = options.link
        self.row_bytes = site.row_bytes
        self.piece_elements = self.elements_per_piece(site.row_elements)
        self.batch_size = site.batch_size
        self.caches = self._caches(options, site, field)
        channels = dram.bus_channels
        self.banks_per_engine = self.device.banks // self.engines
        self.dimm_of = self.dimms_of_engines()
        self.channel_of = np.arange(self.engines) // (self.engines // channels)
        self.command_free = np.zeros(channels)          # each channel's instruction stream
        self.engine_free = np.zeros(self.engines)
        self.schedule_timing = np.zeros(len(Param))
        self.schedule_timing[[Param.INSTRUCTION_S, Param.HIT_S, Param.CYCLE_S,
                              Param.PIPELINE_CYCLES, Param.BAG_CYCLES, Param.LANES]] = (
            self.timing.instruction_s(1, self.device.cycle_s),
            spec.cache_hit_cycles * self.timing.cycle_s, self.timing.cycle_s,
            spec.pipeline_cycles, spec.bag_cycles, spec.lanes)
        span = self.device.address_map.span_below(DRAM_ROW_FIELDS)
        self.within_dram_rows = bool(np.all(span % site.row_bytes == 0))
        """Whether every row lies within one DRAM row of one bank (rows tile their tables,
        which start on ``TABLE_ALIGNMENT``), so that its bursts need no decoding of their own."""
        self.engine_lookups = np.zeros(self.engines, dtype=np.int64)
        self.cache_hits = self.cache_accesses = 0
        self.imbalance_sum = 0.0
        self.queries = 0
        self.energy_j = 0.0

    # --- organisation ------------------------------------------------------------------

    def engine_count(self) -> int:
        """Engines of the device: one per rank, bank group or DIMM."""
        dram = self.device.spec
        ranks = dram.bus_channels * dram.ranks
        return {"rank": ranks, "bank_group": ranks * dram.bank_groups,
                "dimm": ranks // self.ranks_per_dimm}[self.level]

    def organisation(self) -> str:
        dram = self.device.spec
        return (f"{dram.channels} channel(s) x {dram.pseudo_channels} sub-channel(s) x "
                f"{dram.ranks} rank(s) x {dram.bank_groups} bank groups, "
                f"{self.ranks_per_dimm} rank(s) per DIMM")

    def dimms_of_engines(self) -> np.ndarray:
        """The DIMM of each engine (engines follow the device's flat banks: sub-channel, rank,
        bank group): a channel's DIMMs hold the ranks of all its sub-channels."""
        dram = self.device.spec
        rank = np.arange(self.engines) // (self.engines // (dram.bus_channels * dram.ranks))
        channel = rank // (dram.ranks * dram.pseudo_channels)
        per_dimm = self.ranks_per_dimm
        return channel * (dram.ranks // per_dimm) + rank % dram.ranks // per_dimm

    def elements_per_piece(self, row_elements: np.ndarray) -> np.ndarray:
        """Elements an engine adds per lookup, table by table: here the whole row's."""
        return np.asarray(row_elements, dtype=np.int64)

    engine_fields: ClassVar[tuple[str, ...]] = ("ch", "ra")
    """The mapping fields that name an engine's part of the device: bytes laid out below the
    lowest of them in the address stay with one engine."""

    def _check_rows_stay_in_engines(self, site: UnitSite, tier: str) -> None:
        """InputError unless every row lies within one engine's part of the device: the
        mapping keeps ``contiguous`` bytes together there, which must hold whole rows, their
        tables starting on ``TABLE_ALIGNMENT`` boundaries."""
        amap = self.device.address_map
        contiguous = amap.span_below(self.engine_fields)
        for row in np.unique(site.row_bytes):
            if contiguous % row or TABLE_ALIGNMENT % row:
                raise InputError(
                    f"rows of {row} B would straddle {self.level.replace('_', ' ')}s: mapping "
                    f"{''.join(amap.order)} keeps {contiguous} B together in one, which must be a "
                    f"multiple of every row size (and rows must tile {TABLE_ALIGNMENT} B); put the "
                    "column field below it (e.g. rochrabgbaco)", source=site.source,
                    field=f"system.memory.{tier}.params.mapping")

    def _ranks_per_dimm(self, ranks: int, source: str, field: str) -> int:
        given = self.options.ranks_per_dimm
        per_dimm = given if given is not None else (2 if ranks % 2 == 0 else 1)
        if ranks % per_dimm:
            raise InputError(f"{ranks} ranks per channel are not whole DIMMs of {per_dimm}",
                             source=source, field=f"{field}.ranks_per_dimm")
        return per_dimm

    def _caches(self, options: DramUnitOptions, site: UnitSite,
                field: str) -> list[RowCache] | None:
        """One row cache per engine, or None."""
        if options.cache is None:
            return None
        settings = dict(options.cache)
        kind = settings.pop("kind", "software")
        where = f"{field}.cache"
        if ROW_CACHES.get(kind, source=site.source, field=f"{where}.kind").needs_profile:
            raise InputError(f"cache kind {kind!r} needs a profile of the whole trace; a unit's "
                             "cache takes a kind that needs none (software, fbgemm_uvm, hugectr)",
                             source=site.source, field=f"{where}.kind")
        if "size" not in settings:
            raise InputError("give the cache's size", source=site.source, field=f"{where}.size")
        try:
            size = parse_size(settings.pop("size"))
        except ValueError as err:
            raise InputError(str(err), source=site.source, field=f"{where}.size") from None
        slot = align(int(self.cached_bytes(site.row_bytes).max()), self.device.request_bytes)
        return [build_row_cache(kind, settings, slots=int(size // slot),
                                table_rows=site.table_rows, seed=site.seed + e,
                                source=site.source, field=where)
                for e in range(self.engine_count())]

    def cached_bytes(self, row_bytes: np.ndarray) -> np.ndarray:
        """Bytes an engine's cache keeps per row, table by table: here the whole row."""
        return row_bytes

    # --- a query -----------------------------------------------------------------------

    def pieces(self, q: Query, lookups: np.ndarray | slice) -> Pieces:
        """What the engines read for ``lookups`` (indices into the query, or a slice): here
        each whole row, by the engine whose rank or bank group holds it."""
        addresses = q.home_addresses[lookups].copy()
        bank, row = self.device.address_map.bank_and_row(addresses)
        return Pieces(lookups, bank // self.banks_per_engine, addresses, q.row_bytes[lookups],
                      bank, row)

    def serve(self, q: Query, share: np.ndarray | slice, fabric: Fabric) -> Process:
        env = fabric.env
        now = env.now
        piece = self.pieces(q, share)
        hit, accesses = self._look_up(q, piece)
        bursts, finish, moved = self._read(now, piece, hit)
        bags = q.bags()[piece.lookup]
        done, work, instructions, per_engine, elements, sent, payload = schedule_query(
            now, piece.engine, piece.fan, bags, piece.size,
            self.piece_elements[bags // self.batch_size], hit, bursts, finish,
            self.command_free, self.engine_free, self.schedule_timing, self.channel_of,
            self.dimm_of, q.batch.offsets.size - 1)
        floor = max(self.tier.unloaded_time(moved), work,
                    instructions * self.timing.instruction_s(1, self.device.cycle_s))
        yield env.timeout(done - now)
        floor += yield from fabric.cross(self.link, payload, write=False)
        self.energy_j += self.timing.energy_j(elements, weighted=q.batch.weights is not None,
                                              cache_accesses=accesses)
        self._count(piece.engine.size, per_engine)
        self.report_partials(q, sent, payload)
        return floor

    def _read(self, now: float, piece: Pieces,
              hit: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Read the pieces the caches miss (``hit``: lookup by piece), all arriving at
        ``now``: each piece's bursts (0 for a hit), when each burst completes (lookup by
        lookup, piece by piece), and the bytes moved. Pieces within one DRAM row read their
        bursts at the piece's bank and row, decoded once per lookup."""
        unit = self.device.request_bytes
        if self.within_dram_rows:
            bank, row, bursts, requested = burst_coordinates(
                piece.bank, piece.row, piece.fan, piece.bank_stride, piece.size, unit, hit)
        else:
            missed = ~hit[:, 0]
            units, counts = touched_units(piece.address[missed], piece.size[missed], unit)
            bursts = np.zeros(hit.shape, dtype=np.int64)
            bursts[missed, 0] = counts
            bank, row = self.device.address_map.bank_and_row(units)
            requested = int(piece.size[missed].sum())
        finish = self.device.read_decoded(now, bank, row)
        return bursts, finish, self.tier.count_reads(bank.size, requested)

    def _look_up(self, q: Query, piece: Pieces) -> tuple[np.ndarray, int]:
        """Whether each piece's engine cache holds its row (lookup by piece), filling the
        cache on a miss; and how many pieces went through a cache."""
        hit = np.zeros((piece.engine.size, piece.fan), dtype=bool)
        if self.caches is None:
            return hit, 0
        rows = q.global_rows[piece.lookup]
        cacheable = np.ones(rows.size, dtype=bool)
        threshold = self.options.hot_entry_threshold
        if threshold is not None:
            _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
            cacheable = counts[inverse] > threshold
        for k in range(piece.fan):
            engine = piece.engine + k
            for e in np.unique(engine[cacheable]):
                mine = np.flatnonzero(cacheable & (engine == e))
                hit[mine, k], _ = self.caches[e].lookup(rows[mine])
        accesses = int(np.count_nonzero(cacheable)) * piece.fan
        self.cache_accesses += accesses
        self.cache_hits += int(np.count_nonzero(hit))
        return hit, accesses

    def _count(self, lookups: int, per_engine: np.ndarray) -> None:
        self.engine_lookups += per_engine
        self.imbalance_sum += float(per_engine.max() / per_engine.mean())
        self.queries += 1
        self.pooled_lookups += lookups

    def counters(self) -> dict[str, float]:
        accesses = self.cache_accesses
        return {
            "pooled_lookups": self.pooled_lookups,
            "partials": self.partials,
            "engines": self.engines,
            "load_imbalance": self.imbalance_sum / self.queries if self.queries else np.nan,
            "cache_hit_rate": self.cache_hits / accesses if accesses else np.nan,
        }
