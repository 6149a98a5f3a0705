"""Plain-Python reference caches for the hardware cache tests: one set at a time, written
straight from the textbook and paper descriptions, slow and obvious on purpose."""

from __future__ import annotations

from collections import OrderedDict

READ, WRITE, WRITEBACK = 0, 1, 2
MASK = (1 << 64) - 1


def splitmix64(state: int) -> tuple[int, int]:
    """(next state, output) of splitmix64 (Steele, Lea and Flood, 2014)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


class OrderedSet:
    """LRU or FIFO set: an OrderedDict of line -> dirty, oldest first."""

    def __init__(self, ways: int, lru: bool):
        self.ways, self.lru, self.lines = ways, lru, OrderedDict()

    def hit(self, line: int) -> bool:
        if line in self.lines:
            if self.lru:
                self.lines.move_to_end(line)
            return True
        return False

    def fill(self, line: int, dirty: bool) -> tuple[int, bool] | None:
        evicted = self.lines.popitem(last=False) if len(self.lines) == self.ways else None
        self.lines[line] = dirty
        return evicted


class WaySet:
    """LFU, random, tree-PLRU, SRRIP or BRRIP set: explicit ways, invalid ways filled first."""

    def __init__(self, ways: int, policy: str, cache: ReferenceCache):
        self.ways, self.policy, self.cache = ways, policy, cache
        self.line = [None] * ways
        self.dirty = [False] * ways
        self.count = [0] * ways          # lfu
        self.last = [0] * ways           # lfu tie-break
        self.rrpv = [3] * ways           # srrip / brrip (2 bits)
        self.tree = [0] * ways           # plru: node i (1..ways-1), 0 = go left

    @property
    def lines(self) -> dict[int, bool]:
        return {ln: d for ln, d in zip(self.line, self.dirty, strict=True) if ln is not None}

    def _plru_touch(self, way: int) -> None:
        node = way + self.ways
        while node > 1:
            parent = node // 2
            self.tree[parent] = 0 if node % 2 else 1   # point away from the accessed half
            node = parent

    def hit(self, line: int) -> bool:
        if line not in self.line:
            return False
        way = self.line.index(line)
        self.cache.time += 1
        self.count[way] += 1
        self.last[way] = self.cache.time
        self.rrpv[way] = 0
        self._plru_touch(way)
        return True

    def _victim(self) -> int:
        if None in self.line:
            return self.line.index(None)
        if self.policy == "lfu":
            return min(range(self.ways), key=lambda w: (self.count[w], self.last[w]))
        if self.policy == "random":
            return self.cache.draw() % self.ways
        if self.policy == "plru":
            node = 1
            while node < self.ways:
                node = 2 * node + self.tree[node]
            return node - self.ways
        while 3 not in self.rrpv:                       # srrip / brrip: age until distant
            self.rrpv = [r + 1 for r in self.rrpv]
        return self.rrpv.index(3)

    def fill(self, line: int, dirty: bool) -> tuple[int, bool] | None:
        way = self._victim()
        evicted = (self.line[way], self.dirty[way]) if self.line[way] is not None else None
        self.line[way], self.dirty[way] = line, dirty
        self.cache.time += 1
        self.count[way], self.last[way] = 1, self.cache.time
        self._plru_touch(way)
        if self.policy == "srrip":
            self.rrpv[way] = 2
        elif self.policy == "brrip":
            self.rrpv[way] = 2 if self.cache.draw() % 32 == 0 else 3
        return evicted

    def set_dirty(self, line: int) -> None:
        self.dirty[self.line.index(line)] = True


class ReferenceCache:
    """One cache level: ``access(line, kind)`` returns whether it hit and appends what it sends
    to the next level, in order, to ``out`` as (line, kind)."""

    def __init__(self, sets: int, ways: int, policy: str, *, write_back: bool = True,
                 write_allocate: bool = True, seed: int = 0):
        self.sets_n, self.write_back, self.write_allocate = sets, write_back, write_allocate
        self.rng, self.time = seed, 0
        if policy in ("lru", "fifo"):
            self.sets = [OrderedSet(ways, policy == "lru") for _ in range(sets)]
        else:
            self.sets = [WaySet(ways, policy, self) for _ in range(sets)]
        self.out: list[tuple[int, int]] = []

    def draw(self) -> int:
        self.rng, value = splitmix64(self.rng)
        return value

    def access(self, line: int, kind: int) -> bool:
        cache_set = self.sets[line % self.sets_n]
        stores = kind != READ
        if line in cache_set.lines:
            if kind != WRITEBACK:
                cache_set.hit(line)
            if stores and self.write_back:
                if isinstance(cache_set, OrderedSet):
                    cache_set.lines[line] = True
                else:
                    cache_set.set_dirty(line)
            elif stores:
                self.out.append((line, kind))
            return True
        if stores and not self.write_allocate:
            self.out.append((line, kind))
            return False
        victim_out = []
        evicted = cache_set.fill(line, stores and self.write_back)
        if evicted is not None and evicted[1]:
            victim_out.append((evicted[0], WRITEBACK))
        self.out.extend(victim_out)
        if kind != WRITEBACK:
            self.out.append((line, READ))
        if stores and not self.write_back:
            self.out.append((line, kind))
        return False
