"""Write ``experiments/validation_cpu_test.yaml``: the CPU test set, shapes drawn at random.

The CPU model's structure may be shaped on the design set (``validation_cpu.yaml``, a grid);
this set is for judging it, and nobody tunes on it. Its shapes are drawn once, from the fixed
seed below, and the file was committed before any model change that it judges.

Each shape draws, independently:

- tables: uniform over 1..26 (all with the same shape);
- rows: log-uniform over 1K..40M;
- dim: log-uniform over 16..512, rounded to a multiple of 4;
- pooling: log-uniform over 1..150 (fixed per bag);
- batch size: log-uniform over 16..4096;
- rows' popularity: uniform (one draw in four) or Zipf with alpha uniform over 1.01..1.3;
- element type: float32 or float16, evenly.

A shape is drawn again when its tables would exceed ``MAX_FOOTPRINT`` (so that a machine with
16 GiB measures it) or one batch would read more than ``MAX_BATCH_BYTES`` (so that the set is
measured in minutes on two cores). Run ``python experiments/make_cpu_test_set.py`` to rewrite
the file; it comes out the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

SEED = 20261204
SHAPES = 48
MAX_FOOTPRINT = 4 * 2**30
MAX_BATCH_BYTES = 64 * 2**20
OUT = Path(__file__).with_name("validation_cpu_test.yaml")

HEADER = """\
# CPU test set: {shapes} pooled-lookup shapes drawn at random (experiments/make_cpu_test_set.py,
# seed {seed}) over tables 1-26, rows 1K-40M, dims 16-512, pooling 1-150, batch 16-4096,
# uniform or Zipf rows (alpha 1.01-1.3), float32 and float16; tables of at most {footprint} GiB
# and batches of at most {batch} MiB. Nobody tunes the CPU model on these points: the design set
# is validation_cpu.yaml. Measured and validated like it (and by cpu_session.sh):
#
#   embsim measure experiments/validation_cpu_test.yaml --backend torch-cpu --no-flush \\
#       --rounds 3 -o cpu-test.parquet
#   embsim validate experiments/validation_cpu_test.yaml --measurements cpu-test.parquet \\
#       --preset cpu_preset.yaml
#
# The system below is replaced by the preset's when validating with --preset.
"""


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_shape(rng: np.random.Generator) -> dict[str, object]:
    """One shape: the generator fields a test point overrides."""
    dtype = "float16" if rng.random() < 0.5 else "float32"
    alpha = 0.0 if rng.random() < 0.25 else round(float(rng.uniform(1.01, 1.3)), 3)
    return {
        "workload.generator.num_tables": int(rng.integers(1, 27)),
        "workload.generator.rows": int(round(log_uniform(rng, 1e3, 4e7))),
        "workload.generator.dim": max(16, int(round(log_uniform(rng, 16, 512) / 4)) * 4),
        "workload.generator.pooling": int(round(log_uniform(rng, 1, 150))),
        "workload.generator.batch_size": int(round(log_uniform(rng, 16, 4096))),
        "workload.generator.alpha": alpha,
        "workload.generator.dtype": dtype,
    }


def sizes(shape: dict[str, object]) -> tuple[int, int]:
    """Bytes of the shape's tables, and bytes one batch reads."""
    g = {k.rsplit(".", 1)[1]: v for k, v in shape.items()}
    row = int(g["dim"]) * (2 if g["dtype"] == "float16" else 4)
    tables = int(g["num_tables"])
    return (tables * int(g["rows"]) * row,
            tables * int(g["batch_size"]) * int(g["pooling"]) * row)


def draw_shapes(seed: int = SEED, count: int = SHAPES) -> list[dict[str, object]]:
    """``count`` shapes within the size limits, in the order drawn."""
    rng = np.random.default_rng(seed)
    shapes: list[dict[str, object]] = []
    while len(shapes) < count:
        shape = draw_shape(rng)
        footprint, batch = sizes(shape)
        if footprint <= MAX_FOOTPRINT and batch <= MAX_BATCH_BYTES:
            shapes.append(shape)
    return shapes


def experiment(shapes: list[dict[str, object]]) -> dict[str, object]:
    """The test-set experiment: the design set's system and run, one case per shape."""
    design = yaml.safe_load(OUT.with_name("validation_cpu.yaml").read_text())
    return {
        "name": "validation_cpu_test",
        "description": "CPU test set: random pooled-lookup shapes nobody tunes on",
        "system": design["system"],
        "workload": {"generator": {"model": "rm2", "batches": 6, "seed": 11}},
        "run": design["run"],
        "sweep": {"cases": {f"t{i:02d}": shape for i, shape in enumerate(shapes)}},
    }


def main() -> None:
    text = HEADER.format(shapes=SHAPES, seed=SEED, footprint=MAX_FOOTPRINT >> 30,
                         batch=MAX_BATCH_BYTES >> 20)
    body = yaml.safe_dump(experiment(draw_shapes()), sort_keys=False, width=100)
    OUT.write_text(text + body)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
