"""Multi-level cache hierarchies: a plain-Python LRU reference, chaining, inclusion
invariants, closed-form cases and the YAML loader."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from hw_cache_reference import READ, WRITE, WRITEBACK
from hypothesis import given, settings
from hypothesis import strategies as st

from embsim.errors import InputError
from hwmodels.cache.hardware import HardwareCache
from hwmodels.cache.hierarchy import CacheHierarchy, hierarchy_from_config

LINE = 64
POLICIES = ["lru", "fifo", "lfu", "random", "plru", "srrip", "brrip"]


class ReferenceHierarchy:
    """Write-back, write-allocate LRU levels as OrderedDicts (line -> dirty) per set."""

    def __init__(self, shapes: list[tuple[int, int]], inclusion: str):
        self.shapes, self.inclusion = shapes, inclusion
        self.sets = [[OrderedDict() for _ in range(sets)] for sets, _ in shapes]
        self.hits = [0] * len(shapes)
        self.misses = [0] * len(shapes)
        self.memory: list[tuple[int, int]] = []

    def cache_set(self, level: int, line: int) -> OrderedDict:
        return self.sets[level][line % self.shapes[level][0]]

    def access(self, line: int, kind: int) -> int:
        if self.inclusion == "exclusive" and len(self.shapes) > 1:
            return self._exclusive(line, kind)
        return self._request(0, line, kind)

    def _request(self, level: int, line: int, kind: int) -> int:
        """Serve at ``level`` and below; returns the level that had the line."""
        if level == len(self.shapes):
            self.memory.append((line, kind))
            return level
        lines = self.cache_set(level, line)
        if line in lines:
            self.hits[level] += 1
            if kind != WRITEBACK:
                lines.move_to_end(line)
            lines[line] = lines[line] or kind != READ
            return level
        self.misses[level] += 1
        if len(lines) == self.shapes[level][1]:
            victim, dirty = lines.popitem(last=False)
            if self.inclusion == "inclusive":
                for upper in range(level):
                    dirty |= self.cache_set(upper, victim).pop(victim, False)
            if dirty:
                self._request(level + 1, victim, WRITEBACK)
        lines[line] = kind != READ
        return level if kind == WRITEBACK else self._request(level + 1, line, READ)

    def _exclusive(self, line: int, kind: int) -> int:
        first = self.cache_set(0, line)
        if line in first:
            self.hits[0] += 1
            first.move_to_end(line)
            first[line] = first[line] or kind != READ
            return 0
        self.misses[0] += 1
        carried = first.popitem(last=False) if len(first) == self.shapes[0][1] else None
        served, dirty = len(self.shapes), kind != READ
        for level in range(1, len(self.shapes)):
            lines = self.cache_set(level, line)
            if line in lines:
                self.hits[level] += 1
                dirty |= lines.pop(line)
                served = level
                break
            self.misses[level] += 1
        if served == len(self.shapes):
            self.memory.append((line, READ))
        first[line] = dirty
        for level in range(1, len(self.shapes)):
            if carried is None:
                break
            lines = self.cache_set(level, carried[0])
            evicted = lines.popitem(last=False) if len(lines) == self.shapes[level][1] else None
            lines[carried[0]] = carried[1]
            carried = evicted
        if carried is not None and carried[1]:
            self.memory.append((carried[0], WRITEBACK))
        return served


def build(shapes, inclusion, policies=None, write_back=None):
    levels = [HardwareCache(sets * ways * LINE, ways, LINE, (policies or ["lru"] * 3)[i],
                            write_back=True if write_back is None else write_back[i],
                            name=f"L{i + 1}", seed=i)
              for i, (sets, ways) in enumerate(shapes)]
    return CacheHierarchy(levels, inclusion)


shapes_strategy = st.lists(st.tuples(st.sampled_from([1, 2, 4]), st.integers(1, 4)),
                           min_size=1, max_size=3)
trace_strategy = st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=1,
                          max_size=250)


@settings(max_examples=60, deadline=None)
@given(shapes=shapes_strategy, inclusion=st.sampled_from(["nine", "inclusive", "exclusive"]),
       trace=trace_strategy, split=st.integers(0, 250))
def test_lru_hierarchy_matches_the_reference(shapes, inclusion, trace, split):
    hierarchy = build(shapes, inclusion)
    lines = np.array([line for line, _ in trace])
    writes = np.array([w for _, w in trace])
    served, memory = [], []
    for part in (slice(0, split), slice(split, None)):
        served.append(hierarchy.access(lines[part] * LINE, writes[part]))
        memory += list(zip((hierarchy.memory.addresses // LINE).tolist(),
                           hierarchy.memory.kinds.tolist(), strict=True))
    reference = ReferenceHierarchy(shapes, inclusion)
    expected = [reference.access(line, WRITE if w else READ) for line, w in trace]
    assert np.concatenate(served).tolist() == expected
    assert memory == reference.memory
    stats = hierarchy.stats()
    assert [stats[f"L{i + 1}"]["hits"] for i in range(len(shapes))] == reference.hits
    assert [stats[f"L{i + 1}"]["misses"] for i in range(len(shapes))] == reference.misses


@settings(max_examples=40, deadline=None)
@given(shapes=shapes_strategy, policies=st.lists(st.sampled_from(POLICIES), min_size=3,
                                                 max_size=3),
       write_back=st.lists(st.booleans(), min_size=3, max_size=3), trace=trace_strategy)
def test_non_inclusive_hierarchy_equals_chained_levels(shapes, policies, write_back, trace):
    shapes = [(sets, 2 ** (ways // 2)) for sets, ways in shapes]   # plru: power-of-two ways
    hierarchy = build(shapes, "nine", policies, write_back)
    lines = np.array([line for line, _ in trace]) * LINE
    writes = np.array([w for _, w in trace])
    served = hierarchy.access(lines, writes)
    chained = [HardwareCache(sets * ways * LINE, ways, LINE, policies[i],
                             write_back=write_back[i], seed=i)
               for i, (sets, ways) in enumerate(shapes)]
    hit = chained[0].access(lines, writes)
    for upper, lower in zip(chained, chained[1:], strict=False):
        lower.access_requests(upper.next_level)
    assert np.array_equal(served == 0, hit)
    assert np.array_equal(hierarchy.memory.addresses, chained[-1].next_level.addresses)
    assert np.array_equal(hierarchy.memory.kinds, chained[-1].next_level.kinds)
    for level, alone in zip(hierarchy.levels, chained, strict=True):
        assert level.stats() == alone.stats()


@settings(max_examples=40, deadline=None)
@given(shapes=shapes_strategy, policies=st.lists(st.sampled_from(POLICIES), min_size=3,
                                                 max_size=3),
       inclusion=st.sampled_from(["inclusive", "exclusive"]), trace=trace_strategy,
       write_back=st.lists(st.booleans(), min_size=3, max_size=3))
def test_inclusion_invariants_hold_after_every_request(shapes, policies, inclusion, trace,
                                                       write_back):
    """Inclusive levels hold subsets of the levels below (write-through levels allowed);
    exclusive levels hold disjoint lines; no written data is lost."""
    shapes = [(sets, 2 ** (ways // 2)) for sets, ways in shapes]
    if inclusion == "exclusive":
        write_back = [True] * 3
    hierarchy = build(shapes, inclusion, policies, write_back)
    written_back: set[int] = set()
    for line, write in trace:
        hierarchy.access(np.array([line * LINE]), np.array([write]))
        memory = hierarchy.memory
        written_back |= set((memory.addresses[memory.is_write] // LINE).tolist())
        held = [set(level.resident_lines().tolist()) for level in hierarchy.levels]
        for upper, lower in zip(held, held[1:], strict=False):
            if inclusion == "inclusive":
                assert upper <= lower
            else:
                assert not upper & lower
    # every line written is still dirty somewhere or was written back to memory
    written = {line for line, write in trace if write}
    dirty_now = set().union(*(level.dirty_lines().tolist() for level in hierarchy.levels))
    assert dirty_now <= written <= dirty_now | written_back


def test_inclusive_back_invalidation_costs_an_upper_hit():
    # L1 and L2 both 2 lines. A B A C A: C's L2 fill evicts A (L2 saw no reuse of A, the
    # L1 hit absorbed it), which removes A from L1 too; non-inclusive L1 keeps A.
    trace = np.array([0, 1, 0, 2, 0]) * LINE
    inclusive = build([(1, 2), (1, 2)], "inclusive")
    nine = build([(1, 2), (1, 2)], "nine")
    assert inclusive.access(trace).tolist() == [2, 2, 0, 2, 2]
    assert nine.access(trace).tolist() == [2, 2, 0, 2, 0]
    assert inclusive.stats()["L1"]["invalidations"] == 1
    assert (inclusive.memory.addresses // LINE).tolist() == [0, 1, 2, 0]


def test_exclusive_levels_add_their_capacities():
    # two 2-line levels: exclusive holds 4 distinct lines, non-inclusive only 2
    trace = np.array([0, 1, 2, 3, 0, 1]) * LINE
    assert build([(1, 2), (1, 2)], "exclusive").access(trace).tolist() == [2, 2, 2, 2, 1, 1]
    assert build([(1, 2), (1, 2)], "nine").access(trace).tolist() == [2] * 6


def test_exclusive_dirty_lines_move_with_their_data():
    hierarchy = build([(1, 1), (1, 1)], "exclusive")
    served = hierarchy.access(np.array([0, 1, 0, 2, 3]) * LINE,
                              np.array([True, False, False, False, False]))
    # A dirty goes to L2, comes back up dirty, goes down again and finally falls out of L2
    assert served.tolist() == [2, 2, 1, 2, 2]
    assert (hierarchy.memory.addresses // LINE).tolist() == [0, 1, 2, 3, 0]
    assert hierarchy.memory.kinds.tolist() == [READ, READ, READ, READ, WRITEBACK]
    assert hierarchy.stats()["L2"]["read_hits"] == 1


def test_levels_belong_to_their_hierarchy():
    hierarchy = build([(1, 2), (2, 2)], "nine")
    with pytest.raises(RuntimeError, match="level of a CacheHierarchy"):
        hierarchy.levels[0].access(np.array([0]))


CONFIG = {
    "inclusion": "inclusive",
    "levels": [
        {"name": "L1", "size": "32 KiB", "ways": 8, "line": 64, "policy": "plru"},
        {"name": "L2", "size": "2 MiB", "ways": 16, "policy": "srrip"},
        {"name": "LLC", "size": "32 MiB", "ways": 16, "line": "64 B", "policy": "lru"},
    ],
}


def test_loader_builds_levels_in_base_units():
    hierarchy = hierarchy_from_config(CONFIG, source="sys.yaml")
    assert [level.size for level in hierarchy.levels] == [32 << 10, 2 << 20, 32 << 20]
    assert [level.num_sets for level in hierarchy.levels] == [64, 2048, 32768]
    assert hierarchy.inclusion == "inclusive"
    rng = np.random.default_rng(0)
    hierarchy.access(rng.integers(0, 1 << 26, 5000) * 64, rng.random(5000) < 0.3)
    stats = hierarchy.stats()
    assert stats["L1"]["accesses"] == 5000
    assert stats["L2"]["accesses"] == stats["L1"]["misses"] + stats["L1"]["writebacks"]


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda c: c["levels"][1].update(size="1000 B"), "system.caches.levels.1.size",
     "not a multiple of line x ways"),
    (lambda c: c["levels"][0].update(colour="red"), "system.caches.levels.0.colour",
     "unknown key"),
    (lambda c: c["levels"][2].update(size="lots"), "system.caches.levels.2.size",
     "expected a size"),
    (lambda c: c["levels"][0].update(policy="mru"), "system.caches.levels.0.policy",
     "expected one of: brrip, fifo"),
    (lambda c: c.update(inclusion="mostly"), "system.caches.inclusion", "nine"),
    (lambda c: c["levels"][1].update(line=128), "system.caches.levels.1.line",
     "first level's line size"),
    (lambda c: c.update(inclusion="exclusive") or c["levels"][1].update(write_back=False),
     "system.caches.levels.1.write_back", "exclusive hierarchy needs write_back"),
    (lambda c: c.update(levels=[]), "system.caches.levels", "at least 1"),
    (lambda c: c["levels"][2].update(name="L1"), "system.caches.levels.2.name", "used twice"),
])
def test_loader_errors_name_the_field(change, field, message):
    config = {**CONFIG, "levels": [dict(level) for level in CONFIG["levels"]]}
    change(config)
    with pytest.raises(InputError, match=message) as err:
        hierarchy_from_config(config, source="sys.yaml", field="system.caches")
    assert err.value.field == field and err.value.source == "sys.yaml"
