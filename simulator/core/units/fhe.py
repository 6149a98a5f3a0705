"""Unit kind ``fhe``: a server that answers encrypted embedding lookups (HE-LRM) on a CKKS
engine, with the client's encryption and decryption around it.

For each query the unit takes the lookups of the tables at its ``tier`` (where their encoded
tables live). The client encodes and encrypts one count vector per block (one per sample,
table and digit, or several per ciphertext when packed) and sends the ciphertexts over ``link``;
the server runs the plan of ``simulator.core.fhe.lookup`` (plaintext-ciphertext products of
encoded diagonals, rotations, a rescale, a fold, bootstrapping where a level budget runs out)
on its engine (an ``fhe`` preset); the results cross ``link`` back and the client decrypts and
decodes them, then hands one pooled vector per bag to the host (``stages.combine``).

Compute and memory overlap: the server's time is the longer of its engine's work and the
traffic of what does not stay in its ``scratchpad``: evaluation keys (from the ``keys`` tier),
encoded diagonals (from the unit's ``tier``) and ciphertexts (the engine's own memory,
``workspace``, by default its tier). Keys or tables in a tier other than the engine's own
memory cross ``keys_link`` or ``tables_link`` (an accelerator reading host DDR over PCIe).
What stays on chip is chosen in that order of need: ciphertexts in flight, then the keys, then
the encoded tables, each whole or not at all; a resident set is there in steady state (its
first load is not charged). With
``table_encoding: on_the_fly`` the server keeps the plain rows and encodes each diagonal when
it needs it (compute instead of memory). One unit serves one query at a time: queries queue
for its engine.

The cost of an encrypted lookup does not depend on which rows are read: only the shapes
(tables, rows, dims, batch), the scheme and the parameters set it. The trace still decides
those shapes, and with ``run.functional: true`` its real indices are encrypted and looked up
with Microsoft SEAL (``simulator.grounding.fhe_seal``) and the decrypted bags are checked
against ``torch.nn.functional.embedding_bag`` on the model's table (for digits, the sum of the
digit tables' rows) within ``ckks_tolerance(scale_bits)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import simpy
from pydantic import Field

from embsim.errors import InputError
from embsim.units import format_size
from hwmodels.presets import resolve
from simulator.core.config import DIRECT
from simulator.core.fabric import Fabric, Process
from simulator.core.fhe.ckks import CkksParams
from simulator.core.fhe.lookup import LookupPlan, PlanError, Scheme, digit_rows, plan_lookups
from simulator.core.query import Query
from simulator.core.units import UNITS, PlacedUnit, UnitOptions, UnitSite
from simulator.core.units.near_memory import partial_link

RAW_VALUE_BYTES = 4
"""Bytes of one plain table value the server reads to encode a diagonal on the fly (fp32)."""

FUNCTIONAL_MAX_ROWS = 1 << 16
"""Largest table the functional check encrypts lookups into (its composed table is built)."""


class FheOptions(UnitOptions):
    """The unit's place, engines, CKKS parameters and lookup scheme (module docstring)."""

    tier: str
    link: str | None = None
    keys: str | None = None
    keys_link: str | None = None
    tables_link: str | None = None
    workspace: str | None = None
    preset: str | None = None
    params: dict[str, Any] = {}
    client_preset: str = "seal-cpu"
    ring_dim: int = 16384
    levels: int = Field(default=2, ge=0)
    scale_bits: int = Field(default=40, ge=20, le=60)
    first_bits: int = Field(default=60, ge=20, le=60)
    special_bits: int = Field(default=60, ge=20, le=60)
    key_digits: int | None = Field(default=None, gt=0)
    digits: int = Field(default=1, ge=1, le=8)
    packing: bool = False
    clients: Literal["batch", "sample"] = "batch"
    levels_after: int = Field(default=0, ge=0)
    table_encoding: Literal["stored", "on_the_fly"] = "stored"


@dataclass
class FheTotals:
    """What the unit did over a run: the server's seconds run from when its engine takes the
    query (no queueing); memory's until its last stream is done."""

    queries: int = 0
    compute_s: float = 0.0
    memory_s: float = 0.0
    server_s: float = 0.0
    client_s: float = 0.0
    link_s: float = 0.0
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("key", "plaintext", "ciphertext", "upload", "download"), 0))
    server_ops: int = 0
    bootstraps: int = 0


@UNITS.register("fhe")
class FheUnit(PlacedUnit):
    """Encrypted lookups of the tables at its tier (module docstring)."""

    kind = "fhe"
    options_model = FheOptions

    def __init__(self, name: str, index: int, options: FheOptions, site: UnitSite):
        field_ = f"system.units.{name}"
        self.link = partial_link(name, options, site)
        super().__init__(name, index, site.table_tiers.index(options.tier))
        self.options, self.site = options, site
        if options.preset is None and not options.params:
            raise InputError("give the server's engine: an fhe preset (hwmodels/presets/fhe/) "
                             "or its params", source=site.source, field=f"{field_}.preset")
        self.server, _ = resolve("fhe", options.preset, options.params, source=site.source,
                                 field=field_)
        try:
            self.client, _ = resolve("fhe", options.client_preset, {})
        except InputError as err:
            raise InputError(err.detail, source=site.source,
                             field=f"{field_}.client_preset") from None
        self.ckks = ckks_params(options, self.server.word_bits, site.source, field_)
        self.scheme = lookup_scheme(options)
        self.tier = site.tiers[options.tier]
        self.keys_tier, self.keys_link = self._path(name, "keys", options.keys or options.tier,
                                                    options.keys_link, site)
        self.tables_link = self._path(name, "tables", options.tier, options.tables_link,
                                      site)[1]
        self.workspace = self._path(name, "workspace", options.workspace or options.tier,
                                    None, site)[0]
        self.tables = self._own_tables(field_)
        self.shapes = tuple((int(site.table_rows[t]), int(site.row_elements[t]))
                            for t in self.tables)
        whole = self._plan(site.batch_size)
        if whole.bootstraps and self.server.bootstrap_time is None:
            raise InputError(f"results must keep {options.levels_after} levels but the lookup "
                             f"leaves {options.levels - 1}, and preset {options.preset!r} has "
                             f"no bootstrapping cost; raise levels", source=site.source,
                             field=f"{field_}.levels")
        self._check_room(whole, field_)
        self.totals = FheTotals()
        self.engine: simpy.Resource | None = None
        self.reference = (EncryptedReference(self, list(self.shapes), site.seed)
                          if site.functional else None)

    def _own_tables(self, field_: str) -> np.ndarray:
        """The tables whose rows all live at the unit's tier: it encrypts lookups into whole
        tables, so a placement that splits tables over tiers cannot feed it."""
        site = self.site
        if site.table_tier is None:
            raise InputError("an fhe unit looks up whole tables; use a whole-table placement "
                             "(placement: whole_tables)", source=site.source,
                             field="system.tables.placement")
        return np.flatnonzero(site.table_tier == self.tier_index)

    def _path(self, name: str, what: str, tier: str, link: str | None,
              site: UnitSite) -> tuple[Any, str | None]:
        """The tier holding ``what`` and the link it crosses to the engine (None: it is the
        engine's own memory, ``workspace``, or the link is ``direct``)."""
        field_ = f"system.units.{name}"
        local = self.options.workspace or self.options.tier
        if tier not in site.tiers:
            raise InputError(f"unknown memory tier {tier!r}; expected one of: "
                             f"{', '.join(site.tiers)}", source=site.source,
                             field=f"{field_}.{what}")
        if tier == local or link == DIRECT:
            return site.tiers[tier], None
        if link not in site.links:
            raise InputError(f"{what} live in {tier!r}, not in the engine's memory {local!r}: "
                             f"name the link they cross ({what}_link, or '{DIRECT}'); expected "
                             f"one of: {', '.join([*sorted(site.links), DIRECT])}",
                             source=site.source, field=f"{field_}.{what}_link")
        return site.tiers[tier], link

    def _plan(self, batch_size: int) -> LookupPlan:
        """The plan of a batch of ``batch_size``: every table at the unit's tier, whichever
        rows it reads."""
        try:
            return _cached_plan(self.shapes, batch_size, self.scheme, self.ckks)
        except PlanError as err:
            raise InputError(str(err), source=self.site.source,
                             field=f"system.units.{self.name}.{err.field}") from None

    def _check_room(self, plan: LookupPlan, field_: str) -> None:
        """The encoded tables (and keys) must fit their tiers beside the plain tables."""
        mine = self.tables
        tables = int((self.site.table_rows[mine] * self.site.row_bytes[mine]).sum())
        encoded = (plan.stored_plaintexts * self.ckks.plaintext_bytes(plan.limbs_in)
                   if self.options.table_encoding == "stored" else 0)
        keys = plan.key_bytes()
        here = encoded + tables + (keys if self.keys_tier is self.tier else 0)
        if here > self.tier.spec.capacity:
            raise InputError(f"the encoded tables ({format_size(encoded)}), keys and plain "
                             f"tables need {format_size(here)}; tier {self.options.tier!r} "
                             f"holds {format_size(self.tier.spec.capacity)} (use "
                             f"table_encoding: on_the_fly, packing or digits)",
                             source=self.site.source, field=f"{field_}.tier")
        if self.keys_tier is not self.tier and keys > self.keys_tier.spec.capacity:
            raise InputError(f"the keys need {format_size(keys)}; the keys tier holds "
                             f"{format_size(self.keys_tier.spec.capacity)}",
                             source=self.site.source, field=f"{field_}.keys")

    def resident(self, plan: LookupPlan) -> dict[str, bool]:
        """Which of ciphertexts, keys and encoded tables stay in the scratchpad."""
        room = self.server.scratchpad or 0.0
        sizes = {"ciphertext": plan.working_ciphertexts * self.ckks.ciphertext_bytes(
                     plan.limbs_in),
                 "key": plan.key_bytes(),
                 "plaintext": plan.stored_plaintexts * self.ckks.plaintext_bytes(plan.limbs_in)}
        out = {}
        for kind, size in sizes.items():
            out[kind] = size <= room
            room -= size if out[kind] else 0
        return out

    def traffic(self, plan: LookupPlan) -> dict[str, int]:
        """Bytes the server streams from memory per query: keys, encoded diagonals,
        ciphertexts (what stays in its scratchpad moves nothing)."""
        stays = self.resident(plan)
        moved = dict.fromkeys(("key", "plaintext", "ciphertext"), 0)
        for (op, limbs), count in plan.server.items():
            ct, key = self.ckks.traffic(op, limbs)
            moved["ciphertext"] += count * ct
            moved["key"] += count * key
        moved["plaintext"] = (plan.plaintext_reads * self.ckks.plaintext_bytes(plan.limbs_in)
                              if self.options.table_encoding == "stored"
                              else plan.raw_values * RAW_VALUE_BYTES)
        return {k: 0 if stays[k] else v for k, v in moved.items()}

    def compute_time(self, plan: LookupPlan) -> float:
        """The server engine's seconds for the plan (threads sharing independent work)."""
        spec, ckks = self.server, self.ckks
        work = sum(count * ckks.work(op, limbs) * spec.op_time(op)
                   for (op, limbs), count in plan.server.items())
        if self.options.table_encoding == "on_the_fly":
            work += plan.plaintext_reads * ckks.work("encode", plan.limbs_in) * spec.op_time(
                "encode")
        work += plan.bootstraps * self.bootstrap_time()
        return work / (spec.threads * spec.parallel_efficiency)

    def bootstrap_time(self) -> float:
        spec, n = self.server, self.ckks.ring_dim
        if spec.bootstrap_time is None:
            return 0.0
        ref = spec.bootstrap_ring_dim
        return spec.bootstrap_time * (n * n.bit_length()) / (ref * ref.bit_length())

    def client_time(self, plan: LookupPlan, ops: tuple[str, ...]) -> float:
        """The client's seconds for its ``ops`` of the plan (one thread per ciphertext)."""
        spec = self.client
        return sum(count * self.ckks.work(op, limbs) * spec.op_time(op)
                   for (op, limbs), count in plan.client.items() if op in ops)

    def serve(self, q: Query, share: np.ndarray | slice, fabric: Fabric) -> Process:
        env = fabric.env
        if self.engine is None:
            self.engine = simpy.Resource(env, capacity=1)
        plan, tables = self._plan(q.batch.batch_size), self.tables
        totals = self.totals
        before = self.client_time(plan, ("encode", "encrypt"))
        after = self.client_time(plan, ("decrypt", "decode"))
        yield env.timeout(before)
        floor = before
        link_s = 0.0
        if self.link is not None:
            link_s += yield from fabric.cross(self.link, plan.upload_bytes(), write=True)
        with self.engine.request() as turn:
            yield turn
            start = env.now
            compute = self.compute_time(plan)
            moved = self.traffic(plan)
            streams = [env.process(self._stream(fabric, kind, nbytes))
                       for kind, nbytes in moved.items() if nbytes]
            finished = yield env.all_of([env.timeout(compute), *streams])
            # streams sharing a tier or a link delay each other: the memory time is until the
            # last one is done; the floor only knows each alone
            memory = max([start, *[finished[s][1] for s in streams]]) - start
            alone = max([0.0, *[finished[s][0] for s in streams]])
            server = env.now - start
        if self.link is not None:
            link_s += yield from fabric.cross(self.link, plan.download_bytes(), write=False)
        yield env.timeout(after)
        floor += max(compute, alone) + link_s + after
        totals.queries += 1
        totals.compute_s += compute
        totals.memory_s += memory
        totals.server_s += server
        totals.client_s += before + after
        totals.link_s += link_s
        for kind, nbytes in moved.items():
            totals.bytes[kind] += nbytes
        totals.bytes["upload"] += plan.upload_bytes()
        totals.bytes["download"] += plan.download_bytes()
        totals.server_ops += sum(plan.server.values())
        totals.bootstraps += plan.bootstraps
        if self.reference is not None:
            self.reference.check(q)
        B = q.batch.batch_size
        bags = (tables[:, None] * B + np.arange(B)[None, :]).ravel()
        self.pooled_lookups += int(np.size(q.unit[share]))
        self.report_partials(q, bags, int(self.site.row_bytes[bags // B].sum()))
        return floor

    def _stream(self, fabric: Fabric, kind: str, nbytes: int) -> Process:
        """``nbytes`` of one kind of data between its tier and the engine; returns (its
        unloaded time, when it finished)."""
        env = fabric.env
        tier, link = {"key": (self.keys_tier, self.keys_link),
                      "plaintext": (self.tier, self.tables_link),
                      "ciphertext": (self.workspace, None)}[kind]
        chunk = self.ckks.ciphertext_bytes(self.ckks.top_limbs)
        count = -(-nbytes // chunk)
        base = max(int(tier.spec.capacity) - chunk * min(count, 64), 0)
        addresses = base + (np.arange(count, dtype=np.int64) % 64) * chunk
        sizes = np.full(count, chunk, dtype=np.int64)
        done, moved = tier.access(env.now, addresses, sizes,
                                  np.full(count, kind == "ciphertext"))
        if link is None:
            yield env.timeout(done - env.now)
            return tier.unloaded_time(moved), env.now
        unloaded = yield from fabric.cross(link, nbytes, False, done, tier.unloaded_time(moved))
        return unloaded, env.now

    def counters(self) -> dict[str, float]:
        t = self.totals
        per = max(t.queries, 1)
        return super().counters() | {
            "fhe_compute_ms": t.compute_s / per * 1e3, "fhe_memory_ms": t.memory_s / per * 1e3,
            "fhe_server_ms": t.server_s / per * 1e3, "fhe_client_ms": t.client_s / per * 1e3,
            "fhe_link_ms": t.link_s / per * 1e3,
            "fhe_memory_share": t.memory_s / t.server_s if t.server_s else 0.0,
            **{f"fhe_{kind}_mb": nbytes / per / 1e6 for kind, nbytes in t.bytes.items()},
            "fhe_server_ops": t.server_ops / per, "fhe_bootstraps": t.bootstraps / per,
            "fhe_checked_bags": self.reference.checked if self.reference else 0}


def ckks_params(options: FheOptions, word_bits: int, source: str | None,
                field_: str) -> CkksParams:
    """The unit's CKKS parameters (an InputError naming the field when unusable). Every
    prime must fit the engine's words: an engine of 28-bit words runs 28-bit primes."""
    for key in ("first_bits", "scale_bits", "special_bits"):
        bits = getattr(options, key)
        if bits > word_bits:
            raise InputError(f"{bits}-bit primes do not fit the engine's {word_bits}-bit words; "
                             f"use at most {word_bits}", source=source, field=f"{field_}.{key}")
    params = CkksParams(options.ring_dim, options.levels, options.scale_bits,
                        options.first_bits, options.special_bits, options.key_digits,
                        word_bytes=-(-word_bits // 8))
    for where, message in params.problems():
        raise InputError(message, source=source, field=f"{field_}.{where}")
    return params


def lookup_scheme(options: FheOptions) -> Scheme:
    return Scheme(options.digits, options.packing, options.clients, options.levels_after)


@lru_cache(maxsize=256)
def _cached_plan(shapes: tuple[tuple[int, int], ...], batch_size: int, scheme: Scheme,
                 params: CkksParams) -> LookupPlan:
    return plan_lookups(list(shapes), batch_size, scheme, params)


def digit_tables(shapes: list[tuple[int, int]], digits: int,
                 seed: int) -> list[list[np.ndarray]]:
    """Seeded digit tables (``digits`` per table of (rows, dim) ``shapes``), scaled so that the
    model's rows (sums of ``digits`` of them) have unit variance."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal((digit_rows(n, digits), d)) / np.sqrt(digits)
             for _ in range(digits)] for n, d in shapes]


class EncryptedReference:
    """The functional check of an FHE unit: seeded digit tables, the real encrypted lookup
    of every query's bags (SEAL) and the comparison with torch's ``embedding_bag``."""

    def __init__(self, unit: FheUnit, shapes: list[tuple[int, int]], seed: int):
        from simulator.grounding.fhe_seal import EncryptedLookup, ckks_tolerance, sealapi

        field_ = f"system.units.{unit.name}"
        source = unit.site.source
        too_big = [n for n, _ in shapes if n > FUNCTIONAL_MAX_ROWS]
        if too_big:
            raise InputError(f"the functional check encrypts lookups into tables of at most "
                             f"{FUNCTIONAL_MAX_ROWS} rows (a table has {max(too_big)}); "
                             f"use smaller tables", source=source, field="run.functional")
        try:
            sealapi()
        except InputError as err:
            raise InputError(err.detail, source=source, field="run.functional") from None
        self.unit = unit
        self.rows = [n for n, _ in shapes]
        self.lookup = EncryptedLookup(unit.ckks, unit.scheme, self.rows,
                                      digit_tables(shapes, unit.scheme.digits, seed),
                                      source=source, field=field_)
        self.tolerance = ckks_tolerance(unit.options.scale_bits)
        self.checked = 0

    def check(self, q: Query) -> None:
        """Encrypt ``q``'s bags of the unit's tables, look them up, decrypt and compare with
        torch on the model's tables."""
        from simulator.grounding.fhe_seal import bag_counts, check_bags, torch_bags

        batch, B, lookup = q.batch, q.batch.batch_size, self.lookup
        indices, offsets, weights = [], [0], []
        for t in self.unit.tables:
            lo, hi = batch.offsets[t * B], batch.offsets[(t + 1) * B]
            indices.append(batch.indices[lo:hi])
            offsets += list(batch.offsets[t * B + 1:(t + 1) * B + 1] - lo + offsets[-1])
            if batch.weights is not None:
                weights.append(batch.weights[lo:hi])
        flat = np.concatenate(indices)
        bounds = np.array(offsets, dtype=np.int64)
        wts = np.concatenate(weights) if weights else None
        got = lookup.pooled(bag_counts(flat, bounds, wts, self.rows, self.unit.scheme.digits,
                                       B), B)
        check_bags(got, torch_bags(lookup, flat, bounds, wts, B), self.tolerance,
                   f"batch {batch.index}, tables {list(map(int, self.unit.tables))}")
        self.checked += len(self.rows) * B
