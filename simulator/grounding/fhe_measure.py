"""``embsim measure --backend fhe-cpu``: encrypted lookups of an experiment's points, run for
real with SEAL on this CPU (one thread) and timed whole: the client's encoding and encryption,
the server's products, rotations and rescales, the client's decryption and decoding.

A point must pool every table on one ``fhe`` unit. Its tables get seeded digit tables (the
functional reference's); the keys and the encoded tables are made before timing (a server
keeps them). Caches are not flushed between passes (the measurement records ``flush:
false``). Each point: ``warmup`` untimed passes over the first batch, then ``repeats`` passes
over every batch, each batch timed alone; every pass's decrypted bags are checked against
torch's ``embedding_bag`` (a wrong lookup is never timed as a right one), as the
functional check does. The time per batch
is the median over batches of the per-batch median over passes, as for ``torch-cpu``.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embsim.errors import InputError
from hwmodels.fhe import CLIENT_OPS
from simulator.core.fhe.lookup import PlanError, plan_lookups
from simulator.core.units import unit_options
from simulator.core.units.fhe import (
    FheOptions,
    ckks_params,
    digit_tables,
    lookup_scheme,
)
from simulator.core.workload import open_workload
from simulator.grounding.fhe_seal import (
    EncryptedLookup,
    bag_counts,
    check_bags,
    ckks_tolerance,
    sealapi,
    torch_bags,
)
from simulator.grounding.measure import MeasureSettings, workload_hash, write_measurements
from simulator.runs.experiment import Point, load_points


def fhe_options(point: Point, source: str) -> tuple[str, FheOptions]:
    """The point's one ``fhe`` unit (name, options); every table must live at its tier."""
    system = point.config.system
    found = [(name, entry) for name, entry in system.units.items() if entry.kind == "fhe"]
    if len(found) != 1:
        raise InputError(f"point {point.index}: measuring with fhe-cpu needs exactly one unit "
                         f"of kind fhe (found {len(found)})", source=source,
                         field="system.units")
    name, entry = found[0]
    _, options = unit_options("fhe", entry.options(), source=source,
                              field=f"system.units.{name}")
    if any(tier != options.tier for tier in system.tables.tiers):
        raise InputError(f"every table must live at the fhe unit's tier {options.tier!r} to "
                         f"be measured", source=source, field="system.tables.tier")
    return name, options


def time_fhe_point(point: Point, source: str, settings: MeasureSettings) -> dict[str, Any]:
    """Measure one point; returns its results row."""
    name, options = fhe_options(point, source)
    field = f"system.units.{name}"
    params = ckks_params(options, 64, source, field)
    scheme = lookup_scheme(options)
    meta, make_batches = open_workload(point.config.workload, source)
    batches = list(make_batches())
    if not batches:
        raise InputError("the workload has no batches", source=source, field="workload")
    shapes = [(t.rows, t.dim) for t in meta.tables]
    B = meta.batch_size
    try:
        plan_lookups(shapes, B, scheme, params)
    except PlanError as err:
        raise InputError(str(err), source=source, field=f"{field}.{err.field}") from None
    lookup = EncryptedLookup(params, scheme, [n for n, _ in shapes],
                             digit_tables(shapes, scheme.digits, point.config.run.seed),
                             source=source, field=field)
    lookup.prepare(B)
    tolerance = ckks_tolerance(options.scale_bits)
    inputs = [(b, bag_counts(b.indices, b.offsets, b.weights, lookup.rows, scheme.digits, B))
              for b in batches]
    for _ in range(settings.warmup):
        lookup.pooled(inputs[0][1], B)
    lookup.ckks.log.counts.clear()
    lookup.ckks.log.seconds.clear()
    passes = np.zeros((settings.repeats, len(batches)))
    for r in range(settings.repeats):
        for i, (batch, counts) in enumerate(inputs):
            start = time.perf_counter()
            got = lookup.pooled(counts, B)
            passes[r, i] = time.perf_counter() - start
            check_bags(got, torch_bags(lookup, batch.indices, batch.offsets, batch.weights,
                                       B), tolerance,
                       f"{source}: point {point.index}, batch {batch.index}")
    per_batch = np.median(passes, axis=0)
    runs = settings.repeats * len(batches)
    log = lookup.ckks.log
    client = sum(log.seconds[op] for op in CLIENT_OPS)
    return {"point": point.index, **point.overrides, "config_hash": point.config_hash,
            "workload_hash": workload_hash(point), "batches": len(batches),
            "repeats": settings.repeats, "rounds": 1, "warmup": settings.warmup,
            "flush": False, "table_location": "local",
            "lookups_per_batch": float(np.mean([b.num_lookups for b in batches])),
            "time_per_batch_us": float(np.median(per_batch)) * 1e6,
            "time_per_batch_min_us": float(passes.min()) * 1e6,
            "time_per_batch_max_us": float(passes.max()) * 1e6,
            "client_per_batch_us": client / runs * 1e6,
            "server_ops_per_batch": sum(c for (op, _), c in log.counts.items()
                                        if op not in CLIENT_OPS) / runs}


def measure_fhe(path: Path, out: Path, sets: dict[str, Any], settings: MeasureSettings,
                progress: bool = True) -> pd.DataFrame:
    """Measure every point of the experiment at ``path`` and write ``out``."""
    sealapi()                                   # an InputError saying how to install it
    import tenseal
    from tqdm import tqdm

    from simulator.grounding.backends.torch_cpu import cpu_model_name

    _, points = load_points(path, sets)
    provenance = {"backend": "fhe-cpu", "kernel": "seal", "device": cpu_model_name(),
                  "date": time.strftime("%Y-%m-%d"), "host": socket.gethostname(),
                  "torch": f"TenSEAL {tenseal.__version__}", "experiment": str(path),
                  "warmup": settings.warmup, "repeats": settings.repeats, "flush": False,
                  "rounds": 1, "threads": 1}
    rows = [time_fhe_point(point, str(path), settings)
            | {k: provenance[k] for k in ("backend", "kernel", "device", "date", "host")}
            for point in tqdm(points, unit="point", disable=None if progress else True,
                              leave=False, desc="measure fhe-cpu")]
    frame = pd.DataFrame(rows)
    write_measurements(frame, provenance, out)
    return frame
