"""Write the validation test sets, shapes drawn at random: ``validation_cpu_test.yaml`` and
``validation_gpu_test.yaml``.

A model's structure may be shaped on its design set (``validation_cpu.yaml``,
``validation_gpu.yaml``: grids); a test set is for judging it, and nobody tunes on it. Its
shapes are drawn once, from the fixed seed below, and the file was committed before any model
change that it judges.

Each shape draws, independently:

- tables: uniform over 1..26 (all with the same shape);
- rows: log-uniform over 1K..40M;
- dim: log-uniform over 16..512, rounded to a multiple of 4;
- pooling: log-uniform over 1..150 (fixed per bag);
- batch size: log-uniform over 16..4096;
- rows' popularity: uniform (one draw in four) or Zipf with alpha uniform over 1.01..1.3;
- element type: float32 or float16, evenly;
- GPU set only, drawn last: where the tables live, HBM or pinned host memory, evenly.

A shape is drawn again when its tables would exceed ``MAX_FOOTPRINT`` (so that a machine with
16 GiB measures it) or one batch would read more than ``MAX_BATCH_BYTES`` (so that the set is
measured in minutes on two cores). Run ``python experiments/make_test_sets.py`` to rewrite
both files; they come out the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

SHAPES = 48
MAX_FOOTPRINT = 4 * 2**30
MAX_BATCH_BYTES = 64 * 2**20
HERE = Path(__file__).parent


@dataclass(frozen=True)
class TestSet:
    """One processor's test set: where it is written, its seed, and its design set."""

    kind: str                 # "cpu" or "gpu"
    seed: int
    backend: str
    measure_flags: str        # how the design set of this processor is measured
    tiers: tuple[str, ...] = ()   # table tiers drawn per shape (none: the design's tier)

    @property
    def out(self) -> Path:
        return HERE / f"validation_{self.kind}_test.yaml"

    @property
    def design(self) -> Path:
        return HERE / f"validation_{self.kind}.yaml"


CPU = TestSet("cpu", 20261204, "torch-cpu", "--no-flush --rounds 3")
GPU = TestSet("gpu", 20261205, "torch-cuda", "--rounds 3", tiers=("hbm", "host"))
SETS = (CPU, GPU)

HEADER = """\
# {title} test set: {shapes} pooled-lookup shapes drawn at random (experiments/make_test_sets.py,
# seed {seed}) over tables 1-26, rows 1K-40M, dims 16-512, pooling 1-150, batch 16-4096,
# uniform or Zipf rows (alpha 1.01-1.3), float32 and float16{tiers}; at most
# {footprint} GiB of tables and {batch} MiB read per batch. Nobody tunes the {title}
# model on these points: the design set is {design}. Measured and validated
# like it (and by {session}):
#
#   embsim measure experiments/{name}.yaml --backend {backend} \\
#       {flags} -o {kind}-test.parquet
#   embsim validate experiments/{name}.yaml --measurements {kind}-test.parquet \\
#       --preset {kind}_preset.yaml
#
# The system below is replaced by the preset's when validating with --preset.
"""


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_shape(rng: np.random.Generator, tiers: tuple[str, ...] = ()) -> dict[str, object]:
    """One shape: the fields a test point overrides."""
    dtype = "float16" if rng.random() < 0.5 else "float32"
    alpha = 0.0 if rng.random() < 0.25 else round(float(rng.uniform(1.01, 1.3)), 3)
    shape: dict[str, object] = {
        "workload.generator.num_tables": int(rng.integers(1, 27)),
        "workload.generator.rows": int(round(log_uniform(rng, 1e3, 4e7))),
        "workload.generator.dim": max(16, int(round(log_uniform(rng, 16, 512) / 4)) * 4),
        "workload.generator.pooling": int(round(log_uniform(rng, 1, 150))),
        "workload.generator.batch_size": int(round(log_uniform(rng, 16, 4096))),
        "workload.generator.alpha": alpha,
        "workload.generator.dtype": dtype,
    }
    if tiers:
        shape["system.tables.tier"] = tiers[int(rng.integers(len(tiers)))]
    return shape


def sizes(shape: dict[str, object]) -> tuple[int, int]:
    """Bytes of the shape's tables, and bytes one batch reads."""
    g = {k.rsplit(".", 1)[1]: v for k, v in shape.items()
         if k.startswith("workload.generator.")}
    row = int(g["dim"]) * (2 if g["dtype"] == "float16" else 4)
    tables = int(g["num_tables"])
    return (tables * int(g["rows"]) * row,
            tables * int(g["batch_size"]) * int(g["pooling"]) * row)


def draw_shapes(test_set: TestSet = CPU, count: int = SHAPES) -> list[dict[str, object]]:
    """``count`` shapes within the size limits, in the order drawn."""
    rng = np.random.default_rng(test_set.seed)
    shapes: list[dict[str, object]] = []
    while len(shapes) < count:
        shape = draw_shape(rng, test_set.tiers)
        footprint, batch = sizes(shape)
        if footprint <= MAX_FOOTPRINT and batch <= MAX_BATCH_BYTES:
            shapes.append(shape)
    return shapes


def experiment(shapes: list[dict[str, object]], test_set: TestSet = CPU) -> dict[str, object]:
    """The test-set experiment: the design set's system and run, one case per shape."""
    design = yaml.safe_load(test_set.design.read_text())
    title = test_set.kind.upper()
    return {
        "name": test_set.out.stem,
        "description": f"{title} test set: random pooled-lookup shapes nobody tunes on",
        "system": design["system"],
        "workload": {"generator": {"model": "rm2", "batches": 6, "seed": 11}},
        "run": design["run"],
        "sweep": {"cases": {f"t{i:02d}": shape for i, shape in enumerate(shapes)}},
    }


def write(test_set: TestSet) -> None:
    """Draw ``test_set`` and write its experiment file."""
    title = test_set.kind.upper()
    tiers = (", tables in " + " or ".join(test_set.tiers)) if test_set.tiers else ""
    text = HEADER.format(title=title, shapes=SHAPES, seed=test_set.seed, tiers=tiers,
                         footprint=MAX_FOOTPRINT >> 30, batch=MAX_BATCH_BYTES >> 20,
                         design=test_set.design.name, session=f"{test_set.kind}_session.sh",
                         name=test_set.out.stem, backend=test_set.backend,
                         flags=test_set.measure_flags, kind=test_set.kind)
    body = yaml.safe_dump(experiment(draw_shapes(test_set), test_set), sort_keys=False,
                          width=100)
    test_set.out.write_text(text + body)
    print(f"wrote {test_set.out}")


if __name__ == "__main__":
    for one in SETS:
        write(one)
