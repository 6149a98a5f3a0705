"""PyTorch on an NVIDIA GPU: tables in HBM, or in pinned host memory read over PCIe.

Host-resident tables are pinned host tensors whose pointer the GPU dereferences directly
(zero-copy over the link, as with UVM when the pages stay on the host): the pinned buffer is
wrapped as a CUDA tensor through ``__cuda_array_interface__``, with no copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embsim.errors import InputError
from simulator.grounding.backends.base import BACKENDS, Backend

DEFAULT_L2_BYTES = 50 * 2**20   # H100's L2, for devices that do not report theirs
FILL_CHUNK_BYTES = 256 * 2**20
TYPESTR = {np.dtype(np.float32): "<f4", np.dtype(np.float16): "<f2", np.dtype(np.int64): "<i8"}


class _DeviceView:
    """Exposes a pinned host buffer to CUDA consumers by its (unified) address."""

    def __init__(self, tensor: Any, dtype: np.dtype):
        self.keep_alive = tensor
        self.__cuda_array_interface__ = {
            "shape": tuple(tensor.shape), "typestr": TYPESTR[dtype],
            "data": (tensor.data_ptr(), False), "version": 3, "strides": None,
        }


@BACKENDS.register("torch-cuda")
class TorchCUDA(Backend):
    """``embedding_bag`` on GPU 0, timed with the host clock around synchronised launches."""

    name = "torch-cuda"

    def __init__(self, kernel: str = "embedding_bag") -> None:
        super().__init__(kernel)
        torch = self.torch
        if not torch.cuda.is_available():
            raise InputError("the torch-cuda backend needs an NVIDIA GPU and a CUDA build of "
                             "PyTorch; torch.cuda.is_available() is False here",
                             field="--backend")
        self.device = torch.device("cuda", 0)
        self.properties = torch.cuda.get_device_properties(self.device)
        self.l2_bytes = int(getattr(self.properties, "L2_cache_size", 0)) or DEFAULT_L2_BYTES
        self._flush_buffer = torch.empty(2 * self.l2_bytes // 4, dtype=torch.float32,
                                         device=self.device)
        self._pinned: list[Any] = []

    def device_name(self) -> str:
        return str(self.properties.name)

    def cache_bytes(self) -> dict[str, int]:
        return {"L2": self.l2_bytes}

    def place(self, values: np.ndarray, where: str) -> Any:
        torch = self.torch
        if where == "local":
            return torch.from_numpy(values).to(self.device)
        return self._map(torch.from_numpy(values).pin_memory())

    def random_table(self, rows: int, dim: int, dtype: str, where: str, seed: int) -> Any:
        """Drawn on the GPU (fast even for GiBs); copied to pinned host memory if ``host``."""
        torch = self.torch
        generator = torch.Generator(device=self.device).manual_seed(seed)
        kind = getattr(torch, dtype)
        try:
            if where == "local":
                return torch.rand((rows, dim), generator=generator, dtype=kind,
                                  device=self.device)
            pinned = torch.empty((rows, dim), dtype=kind, pin_memory=True)
            step = max(1, FILL_CHUNK_BYTES // (dim * pinned.element_size()))
            for start in range(0, rows, step):      # never more than a chunk on the GPU
                stop = min(rows, start + step)
                pinned[start:stop].copy_(torch.rand((stop - start, dim), generator=generator,
                                                    dtype=kind, device=self.device))
        except torch.cuda.OutOfMemoryError as err:
            raise MemoryError(str(err).splitlines()[0]) from None
        return self._map(pinned)

    def _map(self, pinned: Any) -> Any:
        """A CUDA tensor reading the pinned host tensor ``pinned`` in place."""
        self._pinned.append(pinned)
        dtype = np.dtype(str(pinned.dtype).removeprefix("torch."))
        return self.torch.as_tensor(_DeviceView(pinned, dtype), device=self.device)

    def to_device(self, array: np.ndarray) -> Any:
        host = np.ascontiguousarray(array, dtype=np.int64)
        return self.torch.from_numpy(host).to(self.device)

    def tbe_placement(self, where: str) -> tuple[str, str, Any]:
        """HBM for local tables; FBGEMM's UVM (managed memory read over PCIe) for host ones."""
        return ("DEVICE" if where == "local" else "MANAGED"), "CUDA", self.device

    def synchronize(self) -> None:
        self.torch.cuda.synchronize(self.device)

    def flush_caches(self) -> None:
        self._flush_buffer.add_(1.0)

    def provenance(self) -> dict[str, Any]:
        out = super().provenance()
        out.update(cuda=str(self.torch.version.cuda),
                   multiprocessors=int(self.properties.multi_processor_count),
                   memory_bytes=int(self.properties.total_memory))
        return out
