"""Metrics of a finished run, and the invariants every run checks before its results count."""

from __future__ import annotations

from typing import Any

import numpy as np

from embsim.errors import InvariantError
from simulator.core.engine import QueryLog
from simulator.core.system import System


def check_invariants(log: QueryLog, system: System, queries_started: int,
                     warm_lookups: int = 0) -> None:
    """Raise ``InvariantError`` (a bug report) if the run broke one of its own invariants.
    ``warm_lookups``: the row cache's lookups in a warm-up pass (``run.warm_caches``)."""
    ids = np.asarray(log.ids)
    if ids.size != queries_started or np.unique(ids).size != ids.size:
        raise InvariantError(f"{queries_started} queries started but {ids.size} completions "
                             f"({np.unique(ids).size} distinct)")
    latency = log.latency_s()
    if not np.all(np.isfinite(latency)) or np.any(latency < 0):
        raise InvariantError("a query has a negative or undefined latency")
    floor = np.asarray(log.unloaded_s)
    below = latency < floor * (1 - 1e-9) - 1e-15
    if below.any():
        i = int(np.argmax(below))
        raise InvariantError(f"query {log.ids[i]} took {latency[i]:.3e} s, less than the "
                             f"unloaded latency of its path {floor[i]:.3e} s")
    cache = system.cache
    through = int(np.sum(log.cache_lookups)) + warm_lookups
    if cache is not None and cache.hits + cache.misses != through:
        raise InvariantError(f"cache hits {cache.hits} + misses {cache.misses} != "
                             f"{through} lookups of the tiers it caches")
    pooled = sum(unit.pooled_lookups for unit in system.units)
    if pooled != int(np.sum(log.lookups)):
        raise InvariantError(f"the compute units pooled {pooled} lookups but the queries "
                             f"had {int(np.sum(log.lookups))}")
    sent = sum(unit.partials for unit in system.units)
    if sent != system.host.combined:
        raise InvariantError(f"the units sent {sent} partial vectors but the host combined "
                             f"{system.host.combined}")
    sent_bytes = sum(unit.partial_bytes for unit in system.units)
    if sent_bytes != system.host.received_bytes:
        raise InvariantError(f"the units sent {sent_bytes} bytes of partial vectors but those "
                             f"the host combined hold {system.host.received_bytes}")
    cores = system.host.cores
    if cores is not None and int(cores.lookups.sum()) != system.host.pooled_lookups:
        raise InvariantError(f"the host's cores pooled {int(cores.lookups.sum())} lookups but "
                             f"the host {system.host.pooled_lookups}")
    for name, link in system.links.items():
        carried = sum(unit.partial_bytes for unit in system.units if unit.link == name)
        if carried > link.bytes:
            raise InvariantError(f"link {name}: units sent {carried} bytes of partial vectors "
                                 f"over it but it carried {link.bytes}")
    if system.cluster is not None:
        system.cluster.check(system)
    for name, tier in system.tiers.items():
        if tier.bytes_total != tier.requests * tier.granularity:
            raise InvariantError(f"tier {name}: {tier.bytes_total} bytes moved but "
                                 f"{tier.requests} requests of {tier.granularity} B")
        if tier.bytes_requested > tier.bytes_total:
            raise InvariantError(f"tier {name}: {tier.bytes_requested} bytes asked for but "
                                 f"only {tier.bytes_total} moved")


STATS = (("mean", None), ("p50", 50), ("p95", 95), ("p99", 99))


def _stat(values_us: np.ndarray, q: float | None) -> float:
    if not values_us.size:
        return float("nan")
    return float(np.mean(values_us)) if q is None else float(np.percentile(values_us, q))


def summarise(log: QueryLog, system: System) -> dict[str, Any]:
    """One results row's metric columns (wall_s is added by the caller)."""
    latency_us = log.latency_s() * 1e6
    queries = len(log.ids)
    lookups = int(np.sum(log.lookups))
    sim_time = float(np.max(log.finish_s)) if queries else 0.0
    per_s = 1.0 / sim_time if sim_time > 0 else float("nan")
    row: dict[str, Any] = {
        "queries": queries,
        "lookups": lookups,
        "sim_time_s": sim_time,
        "throughput_qps": queries * per_s,
        "lookups_per_s": lookups * per_s,
    }
    for name, q in STATS:
        row[f"latency_{name}_us"] = _stat(latency_us, q)
    if system.dense is not None:
        row.update(dense_metrics(log, latency_us))
    row["local_hit_rate"] = int(np.sum(log.hits)) / lookups if lookups else float("nan")
    per_tier = (np.sum(log.tier_lookups, axis=0) if log.tier_lookups
                else np.zeros(len(system.table_tiers), dtype=np.int64))
    row.update({f"lookups_{name}": int(n)
                for name, n in zip(system.table_tiers, per_tier, strict=True)})
    cache = system.cache
    row["cache_hit_rate"] = cache.hit_rate if cache is not None else float("nan")
    row["cache_hits"] = cache.hits if cache is not None else 0
    row["cache_misses"] = cache.misses if cache is not None else 0
    row["cache_evictions"] = cache.evictions if cache is not None else 0
    if cache is not None:
        row.update({f"cache_{key}": value for key, value in cache.counters().items()})
    row["cache_writebacks"] = int(np.sum(log.writebacks))
    if system.processor is not None:
        row.update(system.processor.counters())
    for unit in system.units:
        row.update({f"{key}_{unit.name}": value for key, value in unit.counters().items()})
    energy = 0.0
    for name, tier in system.tiers.items():
        row[f"bytes_{name}"] = tier.bytes_total
        row[f"bytes_read_{name}"] = tier.bytes_read
        row[f"bytes_written_{name}"] = tier.bytes_written
        row[f"requests_{name}"] = tier.requests
        row[f"bytes_wasted_{name}"] = tier.bytes_total - tier.bytes_requested
        row[f"bw_gbps_{name}"] = tier.bytes_total * per_s / 1e9
        row[f"energy_j_{name}"] = tier.energy_j
        energy += tier.energy_j
        counters = tier.counters()
        row.update({f"{key}_{name}": value for key, value in counters.items()})
        if "row_hits" in counters:
            opened = counters["row_hits"] + counters["row_misses"] + counters["row_conflicts"]
            row[f"row_hit_rate_{name}"] = counters["row_hits"] / opened if opened else float("nan")
    for name, link in system.links.items():
        row[f"bytes_{name}"] = link.bytes
        row[f"bw_gbps_{name}"] = link.bytes * per_s / 1e9
        energy += link.energy_j
    for unit in system.units[1:]:
        row[f"energy_j_{unit.name}"] = unit.energy_j
        energy += unit.energy_j
    row["energy_uj_per_query"] = energy * 1e6 / queries if queries else float("nan")
    row.update(system.cluster.summary(log) if system.cluster is not None
               else {"compute_s_total": float(np.sum(log.unloaded_s))})
    if system.dense is not None:     # the dense layers' work in full, overlapped or not
        row["compute_s_total"] += system.dense.busy_s - (0.0 if system.cluster is not None
                                                         else system.dense.floor_s)
    return row


def dense_metrics(log: QueryLog, latency_us: np.ndarray) -> dict[str, float]:
    """The dense stage's time per query (bottom MLP + interaction + top MLP, each as it ran)
    and each stage's share of the queries' latency: ``share_embedding`` is the embedding
    stages' time (arrival to their end) over the latency, summed over queries; ``share_dense``
    the rest (the bottom MLP's time beyond the embeddings', then the top MLP's)."""
    dense_us = (np.asarray(log.bottom_s) + np.asarray(log.top_s)) * 1e6
    row = {f"latency_dense_{name}_us": _stat(dense_us, q) for name, q in STATS}
    embedding_us = np.asarray(log.embedding_s) * 1e6
    row["latency_embedding_mean_us"] = _stat(embedding_us, None)
    total = float(np.sum(latency_us))
    row["share_embedding"] = float(np.sum(embedding_us)) / total if total > 0 else float("nan")
    row["share_dense"] = 1.0 - row["share_embedding"] if total > 0 else float("nan")
    return row


def metric_columns(system: System) -> set[str]:
    """The metric columns a run of ``system`` writes (known before it runs, so that a plot
    naming another is refused up front)."""
    return {*summarise(QueryLog(), system), "functional_checked_bags", "wall_s"}
