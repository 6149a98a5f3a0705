"""The experiment format: YAML validated by pydantic models (unknown keys are errors).

An experiment has four sections: ``system`` (memory tiers, links, where tables live, an optional
cache, the host processor and any other compute units), ``workload`` (a trace file or a
generator), ``run`` (arrivals, seed, fidelity, functional check) and an optional ``sweep``.
Human units ("2 GiB", "14 ns") are accepted wherever a size, time or bandwidth goes.
``parse_experiment`` turns any validation problem into an ``InputError`` naming the file, the
dotted field, what was given and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from embsim import limits
from embsim.errors import InputError
from embsim.limits import Seed, count
from embsim.validation import first_problem
from embsim.yaml_input import YamlTooLarge, load_bounded
from hwmodels.device import FIDELITIES
from hwmodels.specs import (
    NonNegativeEnergy,
    NonNegativeSize,
    NonNegativeTime,
    PositiveBandwidth,
    PositiveSize,
)

Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
TableRows = count(limits.MAX_ROWS)
TableDim = count(limits.MAX_DIM)
TableCount = count(limits.MAX_TABLES)
BatchCount = count(limits.MAX_BATCHES)
BatchSize = count(limits.MAX_BATCH_SIZE)
Pooling = Annotated[float, Field(gt=0, le=limits.MAX_POOLING)]
Concurrency = count(limits.MAX_CONCURRENCY)
RepeatCount = count(limits.MAX_REPEATS)
Ways = count(limits.MAX_WAYS)
TlbEntries = count(2**24)
Oversample = count(1000)
CoreCount = count(1024)


def require_one(first: Any, second: Any, message: str) -> None:
    """Raise (as a validation error) unless exactly one of two optional fields is given."""
    if (first is None) == (second is None):
        raise ValueError(message)


class Strict(BaseModel):
    """Base of every config section: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")


class DeviceConfig(Strict):
    """A device: a preset name and/or any of its parameters (which override the preset's)."""

    preset: str | None = None

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude={"preset", "link", "host_memory", "kind", "params"},
                               exclude_none=True)


DIRECT = "direct"
"""The link name of a tier the processor reads on its own memory bus (no link stage)."""


class MemoryTierConfig(DeviceConfig):
    """A memory tier: a device model (``kind`` dram, scm or ssd: a kind of
    ``hwmodels.device.DEVICE_KINDS``, from a preset of that kind, with ``params`` overriding
    any of the device's parameters) or a generic bandwidth/latency tier (``kind: memory``; see
    ``hwmodels.specs.MemorySpec`` for its fields). ``kind`` defaults to the preset's kind, else
    ``memory``.

    ``link`` names the link the compute reaches this tier over (the default of
    ``system.tables.link`` for the tables that live here); ``direct`` means the processor reads
    the tier on its own memory bus. ``host_memory: true`` marks the host's main memory:
    reference backends that measure on an accelerator place tables that live in this tier in
    pinned host memory.
    """

    kind: str | None = None
    params: dict[str, Any] = {}
    link: str | None = None
    host_memory: bool = False
    capacity: PositiveSize | None = None
    bandwidth: PositiveBandwidth | None = None
    latency: NonNegativeTime | None = None
    access_granularity: PositiveSize | None = None
    channels: PositiveInt | None = None
    interleave: PositiveSize | None = None
    energy_per_bit: NonNegativeEnergy | None = None


class LinkConfig(DeviceConfig):
    """A link (see ``hwmodels.specs.LinkSpec`` for the fields)."""

    bandwidth: PositiveBandwidth | None = None
    latency: NonNegativeTime | None = None
    max_payload: PositiveSize | None = None
    energy_per_bit: NonNegativeEnergy | None = None
    message_overhead: NonNegativeSize | None = None


class TablesConfig(Strict):
    """Where the embedding tables live: one ``tier``, or rows spread over several ``tiers``
    (fastest first) by a ``placement`` policy (see ``simulator.core.placement``). ``budget``
    caps the bytes of a tier the tables may use (default: its capacity, less a cache kept
    there).
    ``profile_batches`` is how many leading batches of the trace ``hot_rows`` profiles (default:
    all). ``link`` overrides the tiers' own links for the compute's reads of the tables.
    """

    tier: str | list[str]
    placement: str = "whole_tables"
    budget: dict[str, PositiveSize] = {}
    profile_batches: BatchCount | None = None
    link: str | None = None

    @property
    def tiers(self) -> list[str]:
        """The tiers the tables may use, fastest first."""
        return [self.tier] if isinstance(self.tier, str) else list(self.tier)

    @property
    def home(self) -> str:
        """The first tier the tables use (where one-tier tables live)."""
        return self.tiers[0]

    @model_validator(mode="after")
    def _some_tier(self) -> TablesConfig:
        if not self.tiers or len(set(self.tiers)) != len(self.tiers):
            raise ValueError("'tier' must name one tier or a list of distinct tiers")
        return self


def require_power_of_two(value: float, name: str) -> None:
    """ValueError unless ``value`` is a whole power of two."""
    if value != int(value) or int(value) & (int(value) - 1):
        raise ValueError(f"'{name}' must be a power of two bytes, got {value:g}")


class TlbConfig(Strict):
    """The processor's translation lookaside buffer: ``entries`` pages of ``page`` bytes,
    ``ways``-way set associative (default: fully associative), LRU. A lookup whose row's page
    misses it adds ``miss_time`` (a page walk, as the processor overlaps it) to pooling. The
    walk reads the page's 8-byte page-table entry through the private cache (when there is
    one); a walk whose entry misses it adds ``walk_miss_time`` more (the entry comes from the
    LLC or memory: tables far larger than the caches)."""

    entries: TlbEntries
    page: PositiveSize = 4096
    ways: Ways | None = None
    miss_time: NonNegativeTime
    walk_miss_time: NonNegativeTime = 0.0

    @property
    def associativity(self) -> int:
        """``ways``, or 16 (at most ``entries``) when not given."""
        return self.ways if self.ways is not None else min(16, self.entries)

    @model_validator(mode="after")
    def _whole_sets(self) -> TlbConfig:
        if self.entries % self.associativity:
            raise ValueError(f"'entries' ({self.entries}) must be a multiple of 'ways' "
                             f"({self.associativity})")
        require_power_of_two(self.page, "page")
        return self


class PrivateCacheConfig(Strict):
    """The cores' private cache (a CPU's L2), in front of the compute tier: ``size`` bytes of
    ``line``-byte lines, ``ways``-way, LRU. A row whose lines all hit it is read there, at
    ``line_time`` per line, instead of from the compute tier."""

    size: PositiveSize
    ways: Ways = 16
    line: PositiveSize = 64
    line_time: NonNegativeTime

    @model_validator(mode="after")
    def _whole_sets(self) -> PrivateCacheConfig:
        require_power_of_two(self.line, "line")
        if self.size % (self.line * self.ways):
            raise ValueError(f"'size' ({self.size:g} B) must be a multiple of line x ways "
                             f"({self.line:g} B x {self.ways})")
        return self


class CoresConfig(Strict):
    """The host's cores (``simulator.core.units.core_mapping``): ``count`` cores, each with its
    relative lookup throughput (``speed``, one number for all or one per core; 1 = the
    per-lookup costs as given), the ``mapping`` policy that gives tables (or rows of them) to
    cores, its per-core lookup ``strategy`` (``gm``: rows read from the compute tier; ``l1``:
    the tables a core owns whole are preloaded into its ``l1_bytes`` buffer while they fit)
    and the leading batches of the trace the ``asymmetric`` mapping profiles."""

    count: CoreCount = 1
    speed: Positive | list[Positive] = 1.0
    mapping: str = "round_robin"
    strategy: Literal["gm", "l1"] = "gm"
    l1_bytes: NonNegativeSize = 0.0
    profile_batches: BatchCount | None = None


HALF_FLOATS = frozenset({"float16", "bfloat16"})
"""Element types of 16 bits that a CPU kernel widens to float32 lanes to add them."""


def is_half_remainder(dtype: str | None, dim: int, vector_elements: int | None) -> bool:
    """Whether rows of ``dim`` elements of ``dtype`` pay ``half_remainder_overhead`` where the
    private cache does not hold them: 16-bit floats that are not whole vectors of
    ``vector_elements`` (never where that width is unknown)."""
    return bool(vector_elements) and dtype in HALF_FLOATS and dim % vector_elements != 0


class ComputeConfig(Strict):
    """The host processor (compute unit ``compute``): the memory tier it reads directly, and
    its fixed costs. It pools every lookup no other unit takes and combines the partial sums
    other units send it.

    The overheads are processor time added to each query's pooling stage: per query
    (dispatch and synchronisation), per table (operator call or kernel launch), per bag and
    per lookup, and per element a lookup adds (``element_overhead``: a row of ``dim`` elements
    costs ``dim`` of them whatever its type, so an fp16 row reads half the bytes of an fp32 one
    but is added as slowly). ``lookup_chain_latency`` is paid per row along each table's
    longest bag: a bag's rows are walked one after another, so a table's pooling lasts at
    least that long. ``lookup_floor`` is the least processor time a lookup takes, whatever
    its row: a lookup of a table costs ``max(lookup_floor, lookup_overhead + dim x
    element_overhead)`` (a core issues the index load, address arithmetic and loop of each
    lookup; the adds of a wide row hide them, a narrow row's do not). A lookup into a table
    whose ``dim`` is not a multiple of ``vector_elements`` (the kernel's SIMD width in
    elements; unset: no such cost) costs ``remainder_overhead`` more: the masked or scalar
    tail the kernel runs after a row's full vectors. Where such a row is of 16-bit floats
    (``HALF_FLOATS``) and the private cache does not hold it (every such row, without one),
    the lookup costs ``half_remainder_overhead`` more again: ATen's CPU kernel pools those
    rows more slowly the farther they come from (measured against whole-vector dims on
    either side: 0.4-0.8 ns more in the L2, 1.8-5.1 ns in the LLC), unlike float32 rows or
    whole vectors of float16. With ``cores`` it is part of each core's per-lookup work.
    All default to zero; ``embsim calibrate`` fits them from microbenchmarks. ``tlb`` and
    ``private_cache`` (both optional) model a CPU's address translation and its private
    cache level (``simulator.core.processor``); ``threads`` gives each of that many cores (an
    operator call's bags spread over them, as ATen's intra-op threads) a TLB and private cache
    of its own: it changes only what those caches hold, not the costs, which are the whole
    call's (their TLB and line times add up over the cores). ``partial_overhead`` is its time
    to add one partial vector that another compute unit sent into the bag's output. ``cores``
    (optional) splits its per-lookup costs over several cores (``CoresConfig``).
    """

    tier: str
    pooling: Literal["sum", "mean"] = "sum"
    query_overhead: NonNegativeTime = 0.0
    call_overhead: NonNegativeTime = 0.0
    bag_overhead: NonNegativeTime = 0.0
    lookup_overhead: NonNegativeTime = 0.0
    element_overhead: NonNegativeTime = 0.0
    lookup_chain_latency: NonNegativeTime = 0.0
    lookup_floor: NonNegativeTime = 0.0
    vector_elements: PositiveInt | None = None
    remainder_overhead: NonNegativeTime = 0.0
    half_remainder_overhead: NonNegativeTime = 0.0
    partial_overhead: NonNegativeTime = 0.0
    tlb: TlbConfig | None = None
    private_cache: PrivateCacheConfig | None = None
    threads: CoreCount = 1
    cores: CoresConfig | None = None

    def lookup_extra(self, row_elements: np.ndarray) -> np.ndarray:
        """What one lookup into each table (``row_elements``: each table's ``dim``) costs
        beyond its per-lookup and per-element costs: the shortfall of ``lookup_floor`` (zero
        where they reach it) and, for a ``dim`` that is not a whole number of vectors,
        ``remainder_overhead``."""
        shortfall = np.maximum(0.0, self.lookup_floor
                               - (self.lookup_overhead + row_elements * self.element_overhead))
        if self.vector_elements is None:
            return shortfall
        return shortfall + np.where(row_elements % self.vector_elements != 0,
                                    self.remainder_overhead, 0.0)

    def half_remainder_tables(self, row_elements: np.ndarray,
                              dtypes: tuple[str, ...]) -> np.ndarray:
        """Per table (``row_elements``: each table's ``dim``; ``dtypes``: its element type),
        whether a lookup of it that misses the private cache pays
        ``half_remainder_overhead``: rows of 16-bit floats that are not whole vectors (none
        where the cost is zero or the vector width unset)."""
        if not self.half_remainder_overhead:
            return np.zeros(row_elements.size, dtype=bool)
        return np.array([is_half_remainder(dtype, int(dim), self.vector_elements)
                         for dtype, dim in zip(dtypes, row_elements, strict=True)], dtype=bool)


class KindConfig(BaseModel):
    """A section that picks an implementation by ``kind`` and passes it its other keys."""

    model_config = ConfigDict(extra="allow")

    def options(self) -> dict[str, Any]:
        """The keys that belong to the kind; one set to null is left out (so a sweep case can
        switch kinds and unset the options of the previous one)."""
        return {k: v for k, v in (self.model_extra or {}).items() if v is not None}


class CacheConfig(KindConfig):
    """A cache of rows kept in ``tier`` (the compute tier), in front of the tables' tiers.

    ``kind`` picks the cache (``hwmodels.cache.row_cache.ROW_CACHES``: ``software``, the
    generic set-associative or fully associative row cache with ``ways`` and ``policy``;
    ``fbgemm_uvm``, ``colossal``, ``hugectr`` and ``pinned``: the caches of those systems).
    Every other key is an option of that kind, checked against it. Give the size either in
    bytes (``size``; a slot holds the widest row) or as a fraction of all rows
    (``load_factor``), unless the kind's own options size it (``hugectr``'s ``fraction``).
    ``caches`` lists the tiers whose rows it holds (default: every tier but the compute tier
    and those a compute unit pools at); rows elsewhere bypass it.
    ``hardware: true`` models a processor cache: misses are fetched while hits are read,
    instead of all misses being fetched before pooling starts.
    """

    tier: str
    kind: str = "software"
    caches: list[str] | None = None
    hardware: bool = False
    size: PositiveSize | None = None
    load_factor: Annotated[float, Field(gt=0, le=1)] | None = None

    @model_validator(mode="after")
    def _at_most_one_size(self) -> CacheConfig:
        if self.size is not None and self.load_factor is not None:
            raise ValueError("give exactly one of 'size' or 'load_factor'")
        return self

class UnitConfig(KindConfig):
    """A compute unit besides the host processor: ``kind`` picks it
    (``simulator.core.units.UNITS``); every other key is an option of that kind, checked
    against it (``tier``: the memory tier it sits at, for units placed in memory)."""

    kind: str


RPC_OVERHEAD = 10e-6
"""Default software cost of one remote request (``rpc_overhead``: both ends' serialisation and
the node's dispatch, paid at the node). An assumption
(see docs/scaleout.md): the order of a kernel TCP/IP RPC stack's per-request cost with
serialisation; a userspace stack is several times cheaper (eRPC, Kalia et al., NSDI 2019)."""


class NodeConfig(Strict):
    """A remote node that holds table shards (``simulator.core.nodes``): its own memory tiers,
    links, tables' tiers, host processor and row cache, the network link (``link``, one of
    ``system.links``) between it and the main node, its RPC worker threads and the software
    cost of one request."""

    memory: Annotated[dict[str, MemoryTierConfig], Field(min_length=1)]
    links: dict[str, LinkConfig] = {}
    tables: TablesConfig
    compute: ComputeConfig
    cache: CacheConfig | None = None
    link: str
    rpc_workers: PositiveInt = 1
    rpc_overhead: NonNegativeTime = RPC_OVERHEAD


class ShardingConfig(Strict):
    """How tables are spread over ``system.nodes`` (``simulator.core.sharding``): the
    ``strategy``, how many of the nodes (in order) take shards (``shards``; default all; 0:
    the main node holds every table, the single-server baseline), the tables' nets for
    ``net_specific_bin_packing`` (``nets``: lists of table indices) and the leading batches
    the load profile reads (``profile_batches``; default all)."""

    strategy: str = "capacity_balanced"
    shards: Annotated[int, Field(ge=0)] | None = None
    nets: list[list[Annotated[int, Field(ge=0)]]] | None = None
    profile_batches: BatchCount | None = None


Width = Annotated[int, Field(gt=0, le=1 << 20)]


class DenseConfig(Strict):
    """The model's dense layers (``simulator.core.dense``, docs/dense.md): DLRM's bottom MLP
    (``bottom_mlp``: the dense features, then each layer's width), feature ``interaction`` and
    top MLP (``top_mlp``: each layer's width; its input is the interaction's output), from a
    ``model`` preset or given here (given fields replace the model's). They run on the host's
    processor with the engine of ``preset`` (hwmodels/presets/dense/, or a file ``embsim
    calibrate --stage dense`` wrote) and ``params`` overriding it; weights and activations
    live in ``tier`` (default: the host's tier)."""

    model: str | None = None
    bottom_mlp: Annotated[list[Width], Field(min_length=2)] | None = None
    top_mlp: Annotated[list[Width], Field(min_length=1)] | None = None
    interaction: Literal["dot", "cat"] | None = None
    dense_features: Width | None = None
    """The bottom MLP's input width, in place of the first entry of ``bottom_mlp``."""
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    tier: str | None = None
    preset: str | None = None
    params: dict[str, Any] = {}

    @model_validator(mode="after")
    def _shapes_given(self) -> DenseConfig:
        if self.model is None and (self.bottom_mlp is None or self.top_mlp is None):
            raise ValueError("give 'model' (a model preset with dense layers) or both "
                             "'bottom_mlp' and 'top_mlp'")
        if self.preset is None and not self.params:
            raise ValueError("give the engine: 'preset' (hwmodels/presets/dense/) or 'params'")
        return self


class SystemConfig(Strict):
    """The hardware: memory tiers, links, where tables live, an optional row cache, the host
    processor (``compute``) and other compute units (``units``, by name). ``assignment``
    names the policy that gives each lookup to the unit that pools it
    (``simulator.core.units.assignment``). ``nodes`` and ``sharding``: remote nodes that hold
    table shards, and how tables are spread over them (``simulator.core.nodes``)."""

    memory: Annotated[dict[str, MemoryTierConfig], Field(min_length=1)]
    links: dict[str, LinkConfig] = {}
    tables: TablesConfig
    compute: ComputeConfig
    cache: CacheConfig | None = None
    units: dict[str, UnitConfig] = {}
    assignment: str = "nearest"
    nodes: dict[str, NodeConfig] = {}
    sharding: ShardingConfig | None = None
    dense: DenseConfig | None = None


ElementType = Literal["float32", "float16", "bfloat16", "int8", "float64"]
"""Element types a table may store."""


class TableConfig(Strict):
    rows: TableRows
    dim: TableDim
    dtype: ElementType = "float32"
    pooling: Pooling | None = None


class GeneratorConfig(Strict):
    """Synthetic lookups with FBGEMM ``generate_requests`` semantics (see traces.generators)."""

    model: str | None = None
    tables: Annotated[list[TableConfig], Field(max_length=limits.MAX_TABLES)] | None = None
    num_tables: TableCount | None = None
    rows: TableRows | None = None
    dim: TableDim | None = None
    dtype: ElementType | None = None
    """Every table's element type, in place of the model's or the tables' own."""
    pooling: Pooling | None = None
    batches: BatchCount = 10
    batch_size: BatchSize = 64
    alpha: Annotated[float, Field(ge=0)] = 1.05
    reuse: Fraction = 0.0
    pooling_dist: Literal["fixed", "normal", "lognormal"] = "fixed"
    pooling_sigma: Annotated[float, Field(ge=0)] = 0.0
    zipf_oversample: Oversample = 3
    seed: Seed = 0
    weighted: bool = False
    sampler: Literal["numpy", "inversion"] = "numpy"
    """How skewed rows are drawn: ``numpy`` (FBGEMM's folded Zipf, the default) or
    ``inversion`` (bounded Zipf by rejection-inversion, every alpha > 0; see
    traces.generators)."""

    @model_validator(mode="after")
    def _model_or_tables(self) -> GeneratorConfig:
        require_one(self.model, self.tables,
                    "give exactly one of 'model' (rm1, rm2, rm3) or 'tables'")
        if self.tables is not None and any(
            t.pooling is None for t in self.tables) and self.pooling is None:
            raise ValueError("give 'pooling', or 'pooling' for every table")
        return self


class WorkloadConfig(Strict):
    trace: Path | None = None
    generator: GeneratorConfig | None = None
    max_batches: BatchCount | None = None

    @field_validator("trace", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty; expected the path of a Parquet trace")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> WorkloadConfig:
        require_one(self.trace, self.generator,
                    "give exactly one of 'trace' (a Parquet file) or 'generator'")
        return self


class ArrivalConfig(Strict):
    """Closed loop keeps ``concurrency`` queries in flight; open loop is Poisson at ``qps``."""

    mode: Literal["closed", "open"] = "closed"
    concurrency: Concurrency = 1
    qps: Positive | None = None

    @model_validator(mode="after")
    def _rate_for_open(self) -> ArrivalConfig:
        if self.mode == "open" and self.qps is None:
            raise ValueError("open-loop arrivals need 'qps'")
        return self


class RunConfig(Strict):
    """How a point runs. ``mode: training`` adds, after each query's pooling, the update of
    every row it looked up: a read-modify-write of the row and its ``optimizer`` state
    (``sgd``: none; ``rowwise_adagrad``: one float per row; ``adagrad``: one float per
    element), as FBGEMM's TBE training kernels do. ``warm_caches`` looks every batch up once
    through the caches (row cache, TLB, private cache) before the timed replay, untimed, so
    they start as a measurement's later passes find them when it does not flush caches; the
    caches' counters include that pass."""

    mode: Literal["inference", "training"] = "inference"
    optimizer: Literal["sgd", "rowwise_adagrad", "adagrad"] = "rowwise_adagrad"
    arrivals: ArrivalConfig = ArrivalConfig()
    seed: Seed = 0
    fidelity: Literal[FIDELITIES] = "fast"  # type: ignore[valid-type]
    functional: bool = False
    warm_caches: bool = False


Values = Annotated[list[Any], Field(min_length=1)]
Condition = Annotated[dict[str, Any], Field(min_length=1)]


class RepeatConfig(Strict):
    """Run every point ``count`` times; repeat r > 0 derives new values for the ``seeds``."""

    count: RepeatCount
    seeds: Annotated[list[str], Field(min_length=1)] = ["run.seed", "workload.generator.seed"]


class SweepConfig(Strict):
    """Which points an experiment runs (see ``simulator.runs.sweep`` for the semantics).

    ``grid``: dotted paths to lists, their cartesian product. ``zip``: one or several groups of
    equally long lists advanced together. ``cases``: named override sets. ``repeats``: a count
    (or ``{count, seeds}``). ``include``/``exclude``: conditions (path -> value or list of
    values) that keep or drop points.
    """

    grid: dict[str, Values] = {}
    zip: dict[str, Values] | list[dict[str, Values]] = {}
    cases: dict[str, dict[str, Any]] = {}
    repeats: RepeatCount | RepeatConfig = 1
    include: list[Condition] = []
    exclude: list[Condition] = []


class PlotConfig(Strict):
    """A figure ``embsim run`` draws from the results: each metric against ``x``, one line per
    ``by`` value, over the points whose columns match ``where`` (path -> value, or a list of
    values any of which matches)."""

    file: Annotated[str, Field(pattern=r"^[\w.-]+\.(png|pdf|svg)$")]
    x: str
    by: str | None = None
    metrics: Annotated[list[str], Field(min_length=1)] = ["cache_hit_rate", "latency_p99_us"]
    where: dict[str, Any] = {}
    log: list[Literal["x", "y"]] = []
    """Axes drawn on a log scale (``x``, ``y``: every panel's metric)."""


class Experiment(Strict):
    name: str = "experiment"
    description: str = ""
    system: SystemConfig
    workload: WorkloadConfig
    run: RunConfig = RunConfig()
    sweep: SweepConfig | None = None
    plots: list[PlotConfig] = []

    @model_validator(mode="after")
    def _weights_need_sums(self) -> Experiment:
        generator = self.workload.generator
        if generator is not None and generator.weighted and self.system.compute.pooling != "sum":
            raise ValueError("per-sample weights pool as a weighted sum: give "
                             "system.compute.pooling: sum (or drop workload.generator.weighted)")
        return self


def parse_experiment(data: Any, source: str) -> Experiment:
    """Validate a loaded mapping as an ``Experiment``; problems become ``InputError``."""
    if not isinstance(data, dict):
        raise InputError("expected a mapping with 'system', 'workload' and 'run'", source=source)
    try:
        return Experiment.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]["loc"]
        device_tier = len(first) == 4 and first[:2] == ("system", "memory")
        field, message = first_problem(err, "unknown key (a device tier's own parameters go "
                                            "under 'params')" if device_tier else "unknown key")
        raise InputError(message, source=source, field=field) from None


def read_yaml(path: Path) -> Any:
    """Load a YAML file (bounded: see ``embsim.yaml_input``); a missing, unreadable, malformed
    or oversized file is an ``InputError``."""
    source = str(path)
    try:
        return load_bounded(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except IsADirectoryError:
        raise InputError("expected a YAML file, got a folder", source=source) from None
    except UnicodeDecodeError as err:
        raise InputError(f"not a UTF-8 text file (byte {err.start})", source=source) from None
    except OSError as err:
        raise InputError(f"cannot read the file ({err.strerror})", source=source) from None
    except YamlTooLarge as err:
        raise InputError(f"the YAML document {err}; see the limits in docs/configuration.md",
                         source=source) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise InputError(f"not valid YAML ({getattr(err, 'problem', None) or err})",
                         source=source, field=where) from None


def set_dotted(data: dict[str, Any], path: str, value: Any, *, source: str) -> None:
    """Set ``a.b.c = value`` inside nested mappings, creating levels as needed."""
    keys = path.split(".")
    node = data
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise InputError(f"cannot set inside a {type(child).__name__}", source=source,
                             field=".".join(keys[: depth + 1]))
        node = child
    node[keys[-1]] = value
