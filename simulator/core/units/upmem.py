"""Unit kind ``upmem``: UPMEM DPUs pooling the tables partitioned over their MRAM banks (as
UpDLRM does, Chen et al., DAC 2024).

The tier is the UPMEM DIMMs' memory: its capacity must be ``ranks`` x the preset's DPUs per
rank x MRAM per DPU. The unit lays every row out in one DPU's MRAM by its ``partition`` policy:

- ``uniform``: rows in turn over the DPUs (row ``r`` of the concatenated tables on DPU
  ``r mod DPUs``), so each DPU holds the same number of rows;
- ``balanced``: rows, most read first (a profile of the trace's first ``profile_batches``
  batches), each onto the DPU with the fewest reads so far, so the DPUs share the reads;
- ``cache_aware``: as ``balanced``, and the most read rows that fit ``wram_cache`` bytes are
  copied into every DPU's WRAM, where any DPU serves them without an MRAM transfer: each such
  lookup goes to the DPU with the fewest lookups of the query.

A query: the host writes each DPU its lookups (4 B index each) and bags (4 B offset each) in
one parallel transfer per rank; every DPU reads its rows from MRAM (one DMA per row) while its
tasklets add them (``hwmodels.upmem``); the host reads back each DPU's partial vectors (one per
bag it touched) in one parallel transfer per rank and adds them (``stages.combine``). DPUs and
the host's transfers are busy across queries.

What it ignores: DPU energy (no sourced figure: ``energy_j_<unit>`` and
``energy_uj_per_query`` are NaN; the MRAM reads are ``mram_bytes_<unit>``, not the tier's
``bytes_``), the UPMEM SDK's transposition of host buffers,
the program launch, and rows larger than one DMA transfer (2 KiB).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from numba import njit
from pydantic import Field

from embsim.errors import InputError
from embsim.units import format_size
from hwmodels.presets import resolve
from hwmodels.specs import PositiveSize
from hwmodels.upmem import UpmemSpec, UpmemTiming
from simulator.core.fabric import Fabric, Process
from simulator.core.query import Query
from simulator.core.units import UNITS, PlacedUnit, UnitOptions, UnitSite, table_tier_index
from simulator.core.units.balancing import balance, distinct_pairs

INDEX_BYTES = 4
"""Bytes the host writes a DPU per lookup (its row's index) and per bag (its offset)."""


class UpmemOptions(UnitOptions):
    """The DPUs' tier, preset and rank count; their tasklets and element type; the
    partitioning of rows over them."""

    tier: str
    ranks: Annotated[int, Field(gt=0)]
    preset: str | None = None
    params: dict[str, Any] = {}
    tasklets: Annotated[int, Field(gt=0)] = 16
    element_type: Literal["int32", "float32"] = "int32"
    partition: Literal["uniform", "balanced", "cache_aware"] = "uniform"
    wram_cache: PositiveSize = 32768
    profile_batches: Annotated[int, Field(gt=0)] | None = None


@UNITS.register("upmem")
class UpmemUnits(PlacedUnit):
    """Every DPU of the tier's UPMEM ranks, pooling the rows partitioned onto it."""

    kind = "upmem"
    options_model = UpmemOptions

    def __init__(self, name: str, index: int, options: UpmemOptions, site: UnitSite):
        field = f"system.units.{name}"
        spec, self.sources = resolve("upmem", options.preset, options.params,
                                     source=site.source, field=field)
        assert isinstance(spec, UpmemSpec)
        tier_index = table_tier_index(name, options.tier, site)
        capacity = int(site.tiers[options.tier].spec.capacity)
        per_rank = int(spec.dpus_per_rank * spec.mram_bytes)
        if capacity != options.ranks * per_rank:
            raise InputError(f"{options.ranks} ranks of {spec.dpus_per_rank} DPUs hold "
                             f"{format_size(options.ranks * per_rank)}, but tier "
                             f"{options.tier!r} holds {format_size(capacity)}",
                             source=site.source, field=f"{field}.ranks")
        if options.partition == "cache_aware" and options.wram_cache > spec.wram_bytes:
            raise InputError(f"a DPU's WRAM holds {format_size(spec.wram_bytes)}; the rows "
                             f"copied into it cannot take {format_size(options.wram_cache)}",
                             source=site.source, field=f"{field}.wram_cache")
        if options.tasklets > spec.hardware_threads:
            raise InputError(f"a DPU runs at most {spec.hardware_threads} tasklets",
                             source=site.source, field=f"{field}.tasklets")
        super().__init__(name, index, tier_index)
        self.options = options
        self.spec = spec
        self.timing = UpmemTiming(spec, options.tasklets, options.element_type)
        self.dpus = options.ranks * spec.dpus_per_rank
        self.row_bytes = site.row_bytes
        self.row_elements = site.row_elements
        self.batch_size = site.batch_size
        self.energy_j = float("nan")           # not modelled: no sourced figure
        self.row_dpu, self.in_wram = self._partition(options, site, field)
        self.dpu_free = np.zeros(self.dpus)
        self.bus_free = 0.0
        self.mram_bytes = self.wram_hits = 0
        self.imbalance_sum = 0.0
        self.queries = 0

    def _partition(self, options: UpmemOptions, site: UnitSite,
                   field: str) -> tuple[np.ndarray, np.ndarray]:
        """The DPU of every global row, and which rows every DPU's WRAM holds."""
        rows = int(site.table_rows.sum())
        row_bytes = np.repeat(site.row_bytes, site.table_rows)
        in_wram = np.zeros(rows, dtype=bool)
        if options.partition == "uniform":
            dpu = np.arange(rows) % self.dpus
        else:
            reads = (site.profile(options.profile_batches) if site.profile is not None
                     else np.zeros(rows, dtype=np.int64))
            order = np.argsort(-reads, kind="stable")
            if options.partition == "cache_aware":
                fits = np.cumsum(row_bytes[order]) <= options.wram_cache
                in_wram[order[fits]] = reads[order[fits]] > 0
            dpu = _least_read_first(reads, order, self.dpus)
        held = np.bincount(dpu, weights=row_bytes, minlength=self.dpus)
        if held.max() > self.spec.mram_bytes:
            raise InputError(f"partition {options.partition!r} puts {format_size(held.max())} "
                             f"of rows on one DPU, whose MRAM holds "
                             f"{format_size(self.spec.mram_bytes)}", source=site.source,
                             field=f"{field}.partition")
        return dpu, in_wram

    def serve(self, q: Query, share: np.ndarray | slice, fabric: Fabric) -> Process:
        env = fabric.env
        lookups = np.arange(q.global_rows.size)[share]
        rows = q.global_rows[lookups]
        sizes = q.row_bytes[lookups]
        dpu = self.row_dpu[rows].copy()
        cached = self.in_wram[rows]
        if cached.any():
            loads = np.bincount(dpu[~cached], minlength=self.dpus)
            dpu[np.flatnonzero(cached)] = balance(loads, int(cached.sum()))
        bags = q.bags()[lookups]
        elements = self.row_elements[bags // self.batch_size]
        per_query = q.batch.offsets.size - 1
        touched = distinct_pairs(dpu, bags, per_query)
        bag_dpu, sent = touched // per_query, touched % per_query
        timing, n = self.timing, self.dpus
        from_mram = ~cached
        mram = timing.mram_s(np.bincount(dpu[from_mram], minlength=n),
                             np.bincount(dpu[from_mram], weights=sizes[from_mram], minlength=n))
        work = np.maximum(mram, timing.compute_s(
            np.bincount(dpu, weights=elements, minlength=n)))
        lookups_per_dpu = np.bincount(dpu, minlength=n)
        inputs = INDEX_BYTES * (lookups_per_dpu + np.bincount(bag_dpu, minlength=n))
        outputs = np.bincount(bag_dpu, weights=self.row_bytes[sent // self.batch_size],
                              minlength=n)
        to_dpus, from_dpus = timing.transfer_s(inputs, True), timing.transfer_s(outputs, False)
        written = max(env.now, self.bus_free) + to_dpus
        done = np.maximum(self.dpu_free, written) + work
        busy = lookups_per_dpu > 0
        self.dpu_free[busy] = done[busy]
        finish = max(float(done[busy].max()), written) + from_dpus
        self.bus_free = finish
        yield env.timeout(finish - env.now)
        self.pooled_lookups += lookups.size
        self.report_partials(q, sent, int(outputs.sum()))
        self.mram_bytes += int(sizes[from_mram].sum())
        self.wram_hits += int(cached.sum())
        self.imbalance_sum += float(lookups_per_dpu.max() / lookups_per_dpu.mean())
        self.queries += 1
        return to_dpus + float(work[busy].max()) + from_dpus

    def counters(self) -> dict[str, float]:
        return {
            "pooled_lookups": self.pooled_lookups,
            "partials": self.partials,
            "dpus": self.dpus,
            "mram_bytes": self.mram_bytes,
            "wram_hits": self.wram_hits,
            "load_imbalance": self.imbalance_sum / self.queries if self.queries else np.nan,
        }


@njit(cache=True)
def _least_read_first(reads: np.ndarray, order: np.ndarray, dpus: int) -> np.ndarray:
    """Rows in ``order`` (most read first), each onto the DPU with the fewest reads so far:
    rows of equal reads go round the DPUs, so a DPU's reads are within one row's of any
    other's. Rows never read go round the DPUs in order. (Compiled: one short sort per
    ``dpus`` rows.)"""
    dpu = np.empty(reads.size, dtype=np.int64)
    load = np.zeros(dpus)
    read = np.count_nonzero(reads)
    for k in range(read, order.size):
        dpu[order[k]] = (k - read) % dpus
    for start in range(0, read, dpus):
        stop = min(start + dpus, read)
        targets = np.argsort(load, kind="mergesort")
        for k in range(start, stop):
            target = targets[k - start]
            dpu[order[k]] = target
            load[target] += reads[order[k]]
    return dpu
