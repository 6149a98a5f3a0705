"""PyTorch on this machine's CPU: tables in host memory, caches read from the OS."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path
from typing import Any

import numpy as np

from simulator.grounding.backends.base import BACKENDS, Backend

CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")


def cpu_model_name() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform string where that is absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


SIMD_FLAGS = ((("avx512f", "avx512bw", "avx512dq", "avx512vl"), 16), (("avx2",), 8),
              (("avx",), 8), (("sse2",), 4), (("asimd",), 4))
"""CPU flags (``/proc/cpuinfo``) and the float lanes of the widest vectors they give, widest
first: what FBGEMM's and ATen's CPU kernels cut an embedding row into (16 floats in an AVX-512
register, where FBGEMM has every AVX-512 subset its kernels use; 8 in an AVX2 one; float16
rows are widened to float32 lanes)."""


def simd_elements(cpuinfo: str | None = None) -> int | None:
    """Float lanes of the widest vectors of this CPU (or of the ``/proc/cpuinfo`` text given);
    None where its flags do not say."""
    try:
        text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        return None
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith(("flags", "Features"))), [])
    return next((lanes for needed, lanes in SIMD_FLAGS if set(needed) <= set(flags)), None)


def _parse_cache_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


def os_caches() -> dict[str, tuple[int, int | None]]:
    """Data/unified cache levels (``L1``, ``L2``, ``L3``) as the OS reports them: size in
    bytes and associativity (None where the OS does not say)."""
    levels: dict[str, tuple[int, int | None]] = {}
    for index in sorted(CACHE_DIR.glob("index*")):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level = f"L{(index / 'level').read_text().strip()}"
            size = _parse_cache_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        try:
            ways: int | None = int((index / "ways_of_associativity").read_text())
        except (OSError, ValueError):
            ways = None
        levels[level] = (size, ways)
    return levels


def os_cache_bytes() -> dict[str, int]:
    """Size of each data/unified cache level, from the OS."""
    return {level: size for level, (size, _) in os_caches().items()}


MALLOC_MMAP_THRESHOLD = 32 * 2**20
MALLOC_TRIM_THRESHOLD = 2 * MALLOC_MMAP_THRESHOLD
"""Where ``pin_malloc`` fixes glibc's thresholds: the largest its dynamic policy moves them to
(the mmap threshold's maximum on 64-bit systems, and twice that to trim), the state a
long-running process ends in."""
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""glibc's ``mallopt`` parameter numbers (malloc.h)."""


def pin_malloc() -> str | None:
    """Fix glibc's mmap and trim thresholds for this process, and say so (None where the C
    library is not glibc).

    glibc raises them as a process frees large blocks, and a small ``embedding_bag`` call then
    costs more or less depending on what the process ran before (5.3 against 7.4 us per call
    on the AMD VM of 2026-12-05, after a grid of large calls). Fixed, every calibration run and
    every measured point time the same allocator, whatever ran before them."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return None
    if not (mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
            and mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)):
        return None
    return (f"glibc, fixed mmap threshold {MALLOC_MMAP_THRESHOLD >> 20} MiB and trim threshold "
            f"{MALLOC_TRIM_THRESHOLD >> 20} MiB")


@BACKENDS.register("torch-cpu")
class TorchCPU(Backend):
    """``torch.nn.functional.embedding_bag`` on the CPU, timed with the host clock."""

    name = "torch-cpu"

    def __init__(self, kernel: str = "embedding_bag") -> None:
        super().__init__(kernel)
        self.malloc = pin_malloc()
        largest = max(os_cache_bytes().values(), default=64 * 2**20)
        self._flush_buffer = np.zeros(2 * largest // 8, dtype=np.int64)

    def provenance(self) -> dict[str, Any]:
        return super().provenance() | {"malloc": self.malloc or "not glibc: left as it is",
                                       "vector_elements": simd_elements()}

    def device_name(self) -> str:
        return cpu_model_name()

    def cache_bytes(self) -> dict[str, int]:
        return os_cache_bytes()

    def place(self, values: np.ndarray, where: str) -> Any:
        return self.torch.from_numpy(values)

    def random_table(self, rows: int, dim: int, dtype: str, where: str, seed: int) -> Any:
        torch = self.torch
        generator = torch.Generator().manual_seed(seed)
        return torch.rand((rows, dim), generator=generator, dtype=getattr(torch, dtype))

    def to_device(self, array: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))

    def synchronize(self) -> None:
        """CPU work is synchronous."""

    def flush_caches(self) -> None:
        self._flush_buffer += 1
