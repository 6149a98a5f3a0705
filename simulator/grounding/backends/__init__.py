"""Reference backends: execute embedding workloads for real and time them.

A backend places tables (in its processor's memory, or in host memory the processor reads over
a link), runs ``embedding_bag`` over a batch, flushes caches and reports what machine it is.
Backends register by name in ``BACKENDS``: ``torch-cpu`` and ``torch-cuda``.
"""

from simulator.grounding.backends import torch_cpu, torch_cuda  # noqa: F401,I001  (register backends)
from simulator.grounding.backends.base import BACKENDS, Backend, backend_by_name

__all__ = ["BACKENDS", "Backend", "backend_by_name"]
