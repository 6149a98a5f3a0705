"""Stages ``bottom_mlp`` and ``top_mlp``: the model's dense layers around the embeddings.

DLRM runs the bottom MLP over the dense features while the embeddings are looked up and
pooled: ``bottom_mlp`` (first in the pipeline) starts it as a process of its own and takes no
time. ``top_mlp`` (after ``combine``) waits for it, then runs the feature interaction and the
top MLP. A query's latency is thus max(embedding stages, bottom MLP) + interaction + top MLP,
and its unloaded latency the same over the stages' unloaded times. Only in systems with a
``system.dense`` section (``simulator.core.dense``).
"""

from __future__ import annotations

from simulator.core.fabric import Fabric, Process
from simulator.core.query import Query
from simulator.core.stages import InstantStage, Stage, register_stage


def _has_dense(system) -> bool:
    return system.dense is not None


@register_stage
class BottomMlpStage(InstantStage):
    """Starts the bottom MLP beside the embedding stages."""

    name = "bottom_mlp"
    order = 5
    wanted = classmethod(lambda cls, system: _has_dense(system))

    def apply(self, q: Query, fabric: Fabric | None) -> float:
        if fabric is not None:
            q.dense_bottom = fabric.env.process(self._bottom(q, fabric))
        return 0.0

    def _bottom(self, q: Query, fabric: Fabric) -> Process:
        dense = self.system.dense
        unloaded = yield from dense.run(dense.bottom, fabric)
        q.bottom_s = fabric.env.now - q.arrival_s
        return unloaded


@register_stage
class TopMlpStage(Stage):
    """Waits for the bottom MLP, then runs the interaction and the top MLP."""

    name = "top_mlp"
    order = 60
    wanted = classmethod(lambda cls, system: _has_dense(system))

    def run(self, q: Query, fabric: Fabric) -> Process:
        env, dense = fabric.env, self.system.dense
        q.embedding_s = env.now - q.arrival_s
        bottom_unloaded = yield q.dense_bottom
        started = env.now
        top_unloaded = yield from dense.run(dense.top, fabric)
        q.top_s = env.now - started
        # the floor so far is the embedding stages'; the bottom MLP ran beside them
        floor = max(0.0, bottom_unloaded - q.unloaded_s) + top_unloaded
        dense.floor_s += floor
        return floor
