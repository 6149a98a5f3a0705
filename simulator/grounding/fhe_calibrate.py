"""``embsim calibrate --backend fhe-cpu``: time each CKKS operation with SEAL on this CPU over
ring dimensions and levels, and fit one cost per modular operation for each operation kind.

Each (ring dimension, levels) point of ``GRID`` that 128-bit security allows gets a SEAL
context with one rotation key; every operation runs ``repeats`` times after one untimed run
and its median is kept. An operation's cost is the geometric mean over points of measured
seconds / modular operations (``CkksParams.work``): if the structural counts are right the
ratio is flat over N and levels, and the fit's own error (reported per operation, and kept in
the preset) says how flat. ``threads`` worker processes then run rotations at once to measure
the parallel efficiency of a multi-threaded server (SEAL runs one operation on one thread).
"""

from __future__ import annotations

import datetime
import os
import platform
import socket
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from simulator.core.fhe.ckks import MAX_MODULUS_BITS, OPS, CkksParams
from simulator.grounding.backends.torch_cpu import cpu_model_name, os_cache_bytes
from simulator.grounding.fhe_seal import SealCkks, sealapi

GRID = ((4096, (1,)), (8192, (1, 2, 3, 4)), (16384, (1, 2, 4, 8)),
        (32768, (2, 4, 8, 16)))
"""Ring dimensions and the levels timed at each (those 128-bit security allows)."""

SCALE_BITS, FIRST_BITS, SPECIAL_BITS = 40, 60, 60
LLC_UNKNOWN = 32 * 2**20
"""The scratchpad assumed when the OS reports no cache."""
SMALL_RING = CkksParams(4096, 1, 30, 36, 36)
"""N = 4096 allows 109 modulus bits: one level of 30 bits between 36-bit primes."""


def grid_params(ring_dim: int, levels: int) -> CkksParams:
    if ring_dim == SMALL_RING.ring_dim:
        return SMALL_RING
    return CkksParams(ring_dim, levels, SCALE_BITS, FIRST_BITS, SPECIAL_BITS)


def allowed(params: CkksParams) -> bool:
    return params.modulus_bits <= MAX_MODULUS_BITS[params.ring_dim]


def _median_time(call: Callable[[], Any], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_ops(params: CkksParams, repeats: int, operands: int = 8) -> dict[str, float]:
    """Median seconds of each operation at the top level of ``params``, as a workload meets
    it: each call writes a fresh result and reads the next of ``operands`` distinct inputs
    (so they are not all in the cache, and results are newly allocated, as in a lookup)."""
    ckks = SealCkks(params, [1])
    seal, ev = ckks.seal, ckks.evaluator
    rng = np.random.default_rng(0)
    values = [rng.uniform(-1, 1, params.slots) for _ in range(operands)]
    plains = [ckks.encode(v) for v in values]
    cts = [ckks.encrypt(v) for v in values]
    products = [ckks.binary("mul_plain", c, p) for c, p in zip(cts, plains, strict=True)]
    squares = [ckks.binary("mul", c, c) for c in cts]
    decrypted = []
    for c in cts:
        decrypted.append(seal.Plaintext())
        ckks.decryptor.decrypt(c, decrypted[-1])
    turn = iter(range(1 << 30))

    def fresh(call: Callable[..., Any], make: Callable[[], Any], *inputs: list[Any]):
        def run() -> None:
            i = next(turn) % operands
            call(*(x[i] for x in inputs), make())
        return run

    ct, pt = seal.Ciphertext, seal.Plaintext
    calls = {
        "add": fresh(ev.add, ct, cts, cts[1:] + cts[:1]),
        "mul_plain": fresh(ev.multiply_plain, ct, cts, plains),
        "mul": fresh(ev.multiply, ct, cts, cts[1:] + cts[:1]),
        "relinearize": fresh(lambda a, out: ev.relinearize(a, ckks.relin, out), ct, squares),
        "rescale": fresh(ev.rescale_to_next, ct, products),
        "rotate": fresh(lambda a, out: ev.rotate_vector(a, 1, ckks.galois, out), ct, cts),
        "encode": fresh(lambda v, out: ckks.encoder.encode(v.tolist(), ckks.scale, out), pt,
                        values),
        "encrypt": fresh(ckks.encryptor.encrypt, ct, plains),
        "decrypt": fresh(ckks.decryptor.decrypt, pt, cts),
        "decode": fresh(lambda p, _: ckks.encoder.decode_double(p), lambda: None, decrypted),
    }
    return {op: _median_time(calls[op], repeats) for op in OPS}


def _rotations(args: tuple[int, int, int]) -> float:
    """Seconds one worker takes for ``count`` rotations (run in a worker process)."""
    ring_dim, levels, count = args
    ckks = SealCkks(grid_params(ring_dim, levels), [1])
    ct = ckks.encrypt(np.ones(4))
    out = ckks.seal.Ciphertext()
    ckks.evaluator.rotate_vector(ct, 1, ckks.galois, out)
    start = time.perf_counter()
    for _ in range(count):
        ckks.evaluator.rotate_vector(ct, 1, ckks.galois, out)
    return time.perf_counter() - start


def parallel_efficiency(threads: int, count: int = 40) -> tuple[float, float, float]:
    """(efficiency, one worker's seconds per rotation, each of ``threads`` workers' at once)
    at N = 16384, 4 levels."""
    alone = _rotations((16384, 4, count)) / count
    with ProcessPoolExecutor(threads) as pool:
        together = max(pool.map(_rotations, [(16384, 4, count)] * threads)) / count
    return min(alone / together, 1.0), alone, together


def fit(runs: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Per operation: (seconds per modular operation, the fit's mean absolute error)."""
    out = {}
    for op in OPS:
        ratios = np.array([r["seconds"] / r["modops"] for r in runs if r["op"] == op])
        cost = float(np.exp(np.mean(np.log(ratios))))
        out[op] = cost, float(np.mean(np.abs(ratios / cost - 1)))
    return out


def calibrate_fhe(name: str, repeats: int = 5, threads: int | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the grid, fit, and return the preset (kind ``fhe``) as a mapping."""
    sealapi()                                   # an InputError saying how to install it
    import tenseal

    runs = []
    for ring_dim, levels_list in GRID:
        for levels in levels_list:
            params = grid_params(ring_dim, levels)
            if not allowed(params):
                continue
            if progress:
                progress(f"N={ring_dim} levels={levels}")
            for op, seconds in time_ops(params, repeats).items():
                runs.append({"name": op, "op": op, "ring_dim": ring_dim, "levels": levels,
                             "limbs": params.top_limbs, "seconds": seconds,
                             "modops": params.work(op, params.top_limbs)})
    costs = fit(runs)
    threads = threads or os.cpu_count() or 1
    efficiency, alone, together = parallel_efficiency(threads)
    cpu = cpu_model_name()
    date = datetime.date.today().isoformat()
    where = (f"measured: embsim calibrate --backend fhe-cpu on {cpu} ({socket.gethostname()}),"
             f" {date}, SEAL via TenSEAL {tenseal.__version__}")
    params = {f"{op}_time": {"value": cost, "source": f"{where}: geometric mean of seconds per "
                             f"modular operation over {sum(r['op'] == op for r in runs)} "
                             f"(N, levels) points; fit error {error * 100:.1f}%"}
              for op, (cost, error) in costs.items()}
    params["threads"] = {"value": threads, "source": f"{where}: os.cpu_count()"}
    params["parallel_efficiency"] = {
        "value": round(efficiency, 4),
        "source": f"{where}: {threads} processes rotating at once (N=16384, 4 levels) took "
                  f"{together * 1e3:.2f} ms per rotation each against {alone * 1e3:.2f} ms "
                  f"alone"}
    params["scratchpad"] = {"value": max(os_cache_bytes().values(), default=LLC_UNKNOWN),
                            "source": f"{where}: the last-level cache the OS reports"}
    return {"name": name, "kind": "fhe",
            "description": f"Microsoft SEAL CKKS on {cpu}, fitted per operation kind",
            "params": params,
            "provenance": {"backend": "fhe-cpu", "device": cpu, "host": socket.gethostname(),
                           "date": date, "seal": f"TenSEAL {tenseal.__version__}",
                           "python": platform.python_version(), "threads": threads},
            "microbenchmarks": runs}
