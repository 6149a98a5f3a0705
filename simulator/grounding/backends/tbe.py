"""FBGEMM's table-batched embedding (TBE) kernel as a measurement kernel (``--kernel tbe``).

One ``SplitTableBatchedEmbeddingBagsCodegen`` call pools every table of a batch: embsim's
``Batch`` is already in TBE's layout (indices of table 0's bags, then table 1's, ...; one
offsets array of T x B + 1 entries). Its output is ``B x sum(dims)``: each table's pooled
bags side by side. The module holds its own copy of the tables' values, where the backend's
``tbe_placement`` says: on a CPU in host memory; on a GPU in HBM, or for host-resident tables
in FBGEMM's UVM (managed memory the GPU reads over the link).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from embsim.errors import InputError
from traces.batch import Batch

PRECISION = {"float32": "FP32", "float16": "FP16"}
POOLING = {"sum": "SUM", "mean": "MEAN"}


def fbgemm() -> Any:
    """``fbgemm_gpu``'s TBE classes, or an InputError saying how to install them."""
    try:
        from fbgemm_gpu import split_table_batched_embeddings_ops_common as common
        from fbgemm_gpu import split_table_batched_embeddings_ops_training as training
        from fbgemm_gpu.split_embedding_configs import SparseType
    except (ImportError, OSError) as err:
        raise InputError(f"--kernel tbe needs FBGEMM ({type(err).__name__}: {err}); install "
                         "fbgemm-gpu-cpu on a CPU or fbgemm-gpu on a GPU, built for this "
                         "PyTorch", field="--kernel") from None
    return common, training, SparseType


def fbgemm_version() -> str:
    """The installed ``fbgemm_gpu`` version (for the provenance)."""
    import fbgemm_gpu

    return str(getattr(fbgemm_gpu, "__version__", "unknown"))


class TbeTables:
    """A TBE module holding copies of ``tables`` (2-D tensors of one dtype), built once."""

    def __init__(self, tables: list[Any], location: str, compute: str, device: Any,
                 mode: str):
        common, training, sparse_type = fbgemm()
        dtypes = {str(t.dtype).removeprefix("torch.") for t in tables}
        if len(dtypes) != 1 or next(iter(dtypes)) not in PRECISION:
            raise InputError(f"--kernel tbe pools tables of one dtype among "
                             f"{', '.join(PRECISION)}; got {', '.join(sorted(dtypes))}",
                             field="--kernel")
        specs = [(int(t.shape[0]), int(t.shape[1]), getattr(common.EmbeddingLocation, location),
                  getattr(common.ComputeDevice, compute)) for t in tables]
        self.module = training.SplitTableBatchedEmbeddingBagsCodegen(
            specs, pooling_mode=getattr(common.PoolingMode, POOLING[mode]),
            weights_precision=getattr(sparse_type, PRECISION[dtypes.pop()]),
            device=device)
        for weights, values in zip(self.module.split_embedding_weights(), tables,
                                   strict=True):
            weights.data.copy_(values)
        self.tables = tables            # the key this module was built for, kept alive
        self.mode = mode

    def run(self, batch: Batch, to_device: Callable[[Any], Any]) -> Callable[[], Any]:
        """The prepared call that pools one batch over every table."""
        indices, offsets = to_device(batch.indices), to_device(batch.offsets)
        module = self.module

        def call() -> Any:
            return module(indices, offsets)

        return call
