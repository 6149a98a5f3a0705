"""PyTorch on an NVIDIA GPU: tables in HBM, or in pinned host memory read over PCIe.

Host-resident tables are pinned host tensors whose pointer the GPU dereferences directly
(zero-copy over the link, as with UVM when the pages stay on the host): the pinned buffer is
wrapped as a CUDA tensor through ``__cuda_array_interface__``, with no copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embsim.errors import InputError
from simulator.backends.base import BACKENDS, Backend

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

    def __init__(self) -> None:
        super().__init__()
        torch = self.torch
        if not torch.cuda.is_available():
            raise InputError("the torch-cuda backend needs an NVIDIA GPU and a CUDA build of "
                             "PyTorch; torch.cuda.is_available() is False here",
                             field="--backend")
        self.device = torch.device("cuda", 0)
        self.properties = torch.cuda.get_device_properties(self.device)
        l2 = int(getattr(self.properties, "L2_cache_size", 0)) or 64 * 2**20
        self._flush_buffer = torch.empty(2 * l2 // 4, dtype=torch.float32, device=self.device)
        self._pinned: list[Any] = []

    def device_name(self) -> str:
        return str(self.properties.name)

    def cache_bytes(self) -> dict[str, int]:
        return {"L2": int(getattr(self.properties, "L2_cache_size", 0))}

    def place(self, values: np.ndarray, where: str) -> Any:
        torch = self.torch
        if where == "local":
            return torch.from_numpy(values).to(self.device)
        return self._map(torch.from_numpy(values).pin_memory())

    def random_table(self, rows: int, dim: int, dtype: str, where: str, seed: int) -> Any:
        """Drawn on the GPU (fast even for GiBs); copied to pinned host memory if ``host``."""
        torch = self.torch
        generator = torch.Generator(device=self.device).manual_seed(seed)
        values = torch.rand((rows, dim), generator=generator, dtype=getattr(torch, dtype),
                            device=self.device)
        if where == "local":
            return values
        pinned = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
        pinned.copy_(values)
        del values
        return self._map(pinned)

    def _map(self, pinned: Any) -> Any:
        """A CUDA tensor reading the pinned host tensor ``pinned`` in place."""
        self._pinned.append(pinned)
        dtype = np.dtype(str(pinned.dtype).removeprefix("torch."))
        return self.torch.as_tensor(_DeviceView(pinned, dtype), device=self.device)

    def to_device(self, array: np.ndarray) -> Any:
        host = np.ascontiguousarray(array, dtype=np.int64)
        return self.torch.from_numpy(host).to(self.device)

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
