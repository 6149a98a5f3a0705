"""Set-associative hardware caches (CPU L1/L2/LLC): geometry, replacement policy, write policy.

``HardwareCache(size, ways, line, policy)`` has ``size / (line * ways)`` sets, indexed by the
low bits of the line number (``address // line``) when the number of sets is a power of two,
by the line number modulo the sets otherwise. ``access`` serves a whole array of byte
addresses in one compiled call (``hw_kernels.serve``) and keeps its contents between calls.

Writes are write-back and write-allocate by default: a store miss fetches the line and marks
it dirty, and a dirty victim is written back. ``write_back=False`` writes every store through
to the next level (lines are never dirty); ``write_allocate=False`` sends a store miss on
without filling the line. The requests a cache sends on, in order, are in ``next_level``
after each call: fills (``READ``), write-backs of whole lines (``WRITEBACK``) and
written-through or write-around stores (``WRITE``), as byte addresses of lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embsim.errors import InputError
from hwmodels.cache import hw_kernels as hk
from hwmodels.cache.policies import POLICIES, ReplacementPolicy


@dataclass(frozen=True)
class Requests:
    """Requests in order: byte ``addresses`` (int64) and ``kinds`` (int8: READ, WRITE,
    WRITEBACK of ``hw_kernels``); requests a cache passed on also carry ``origin``, the index
    of the request (of the call that made them) that caused each."""

    addresses: np.ndarray
    kinds: np.ndarray
    origin: np.ndarray | None = None

    @property
    def is_write(self) -> np.ndarray:
        """True for write-backs and stores: what a memory device sees as writes."""
        return self.kinds != hk.READ

    def __len__(self) -> int:
        return int(self.addresses.size)


def _whole(value: float, what: str, source: str | None, field: str) -> int:
    if value != int(value) or value <= 0:
        raise InputError(f"{what} must be a positive whole number, got {value!r}",
                         source=source, field=field)
    return int(value)


class HardwareCache:
    """One set-associative cache level with a replacement policy chosen by name.

    ``source`` and ``field`` (a dotted prefix such as ``levels.1``) name where the values came
    from in errors. ``seed`` seeds the generator of the random and BRRIP policies.
    """

    def __init__(self, size: float, ways: int, line: float, policy: str, *,
                 write_back: bool = True, write_allocate: bool = True, seed: int = 0,
                 name: str = "cache", source: str | None = None, field: str | None = None):
        def where(key: str) -> str:
            return f"{field}.{key}" if field else key

        self.name = name
        self.size = _whole(size, "cache size", source, where("size"))
        self.ways = _whole(ways, "ways", source, where("ways"))
        self.line = _whole(line, "line size", source, where("line"))
        if self.line & (self.line - 1):
            raise InputError(f"line size must be a power of two, got {self.line} B",
                             source=source, field=where("line"))
        if self.size % (self.line * self.ways):
            raise InputError(
                f"a cache size that is not a multiple of line x ways: {self.size} B is not a "
                f"multiple of {self.line} B x {self.ways} ways", source=source,
                field=where("size"))
        self.policy: type[ReplacementPolicy] = POLICIES.get(policy, source=source,
                                                             field=where("policy"))
        self.policy.check_ways(self.ways, source=source, field=where("ways"))
        self.num_sets = self.size // (self.line * self.ways)
        self.write_back = bool(write_back)
        self.write_allocate = bool(write_allocate)
        self.seed = int(seed)
        self.next_level = Requests(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))
        self._state = CacheState([self])
        self._index = 0
        self._in_hierarchy = False

    @property
    def shift(self) -> int:
        """log2 of the line size: line number = address >> shift."""
        return self.line.bit_length() - 1

    def table_row(self) -> list[int]:
        """This level's columns of ``hw_kernels``' ``table`` (bases filled in by the state)."""
        pow2 = self.num_sets & (self.num_sets - 1) == 0
        policy = self.policy
        return [0, 0, self.num_sets, self.num_sets - 1 if pow2 else -1, self.ways,
                policy.family, int(self.write_back), int(self.write_allocate),
                (1 << policy.rrpv_bits) - 1, policy.near_one_in]

    def access(self, addresses: np.ndarray, is_write: np.ndarray | None = None) -> np.ndarray:
        """Serve loads (and stores where ``is_write``) at byte ``addresses`` in order; returns
        whether each hit. The requests sent on are in ``next_level`` afterwards."""
        return self.access_requests(as_requests(addresses, is_write))

    def access_requests(self, requests: Requests) -> np.ndarray:
        """Serve requests of any kind, e.g. another cache's ``next_level`` (so levels chain as
        a non-inclusive hierarchy); returns whether each hit."""
        if self._in_hierarchy:
            raise RuntimeError(f"{self.name} is a level of a CacheHierarchy: access the "
                               "hierarchy, which keeps the levels consistent")
        served, self.next_level = self._state.serve(requests, hk.NINE)
        return served == 0

    def stats(self) -> dict[str, int | float]:
        """Counters since construction: ``hits, misses, accesses, hit_rate`` and the columns
        of ``hw_kernels.COUNTERS``. Accesses are the requests the level looked up: write-backs
        from the level above count as writes; the victims an exclusive level receives are
        not looked up and count only as ``fills``."""
        row = self._state.counters[self._index]
        stats: dict[str, int | float] = {k: int(v) for k, v in zip(hk.COUNTERS, row,
                                                                    strict=True)}
        hits = stats["read_hits"] + stats["write_hits"]
        misses = stats["read_misses"] + stats["write_misses"]
        stats.update(hits=hits, misses=misses, accesses=hits + misses,
                     hit_rate=hits / (hits + misses) if hits + misses else 0.0)
        return stats

    def resident_lines(self) -> np.ndarray:
        """Sorted line numbers the cache holds now."""
        tags = self._state.level_slice(self._index, self._state.tags)
        return np.sort(tags[tags != hk.EMPTY])

    def dirty_lines(self) -> np.ndarray:
        """Sorted line numbers of the dirty lines the cache holds now."""
        tags = self._state.level_slice(self._index, self._state.tags)
        dirty = self._state.level_slice(self._index, self._state.dirty)
        return np.sort(tags[(tags != hk.EMPTY) & dirty])


def as_requests(addresses: np.ndarray, is_write: np.ndarray | None) -> Requests:
    """Loads and stores at byte addresses as ``Requests`` (all loads when ``is_write`` is None)."""
    addresses = np.ascontiguousarray(addresses, dtype=np.int64)
    if addresses.size and addresses.min() < 0:
        raise InputError("addresses must be non-negative", field="addresses")
    if is_write is None:
        kinds = np.full(addresses.size, hk.READ, dtype=np.int8)
    else:
        kinds = np.ascontiguousarray(np.broadcast_to(is_write, addresses.shape), dtype=np.int8)
    return Requests(addresses, kinds)


class CacheState:
    """The flat state arrays of the kernel for a list of levels (one for a single cache).

    Built from the levels' current states, so a hierarchy can adopt caches that have been used.
    """

    def __init__(self, levels: list[HardwareCache]):
        rows = [level.table_row() for level in levels]
        lines = [level.num_sets * level.ways for level in levels]
        table = np.array(rows, dtype=np.int64).reshape(len(levels), hk.TABLE_COLUMNS)
        table[:, hk.LINE_BASE] = np.concatenate([[0], np.cumsum(lines)[:-1]])
        table[:, hk.SET_BASE] = np.concatenate([[0], np.cumsum(table[:, hk.NUM_SETS])[:-1]])
        self.table = table
        self.shift = levels[0].shift
        self.rules = np.array([level.policy.score_rule for level in levels], dtype=np.int64)
        self.tags = np.full(sum(lines), hk.EMPTY, dtype=np.int64)
        self.meta = np.zeros(sum(lines), dtype=np.int64)
        self.dirty = np.zeros(sum(lines), dtype=np.bool_)
        self.setbits = np.zeros(int(table[:, hk.NUM_SETS].sum()), dtype=np.int64)
        self.clocks = np.zeros(len(levels), dtype=np.int64)
        self.rng = np.array([level.seed for level in levels], dtype=np.uint64)
        self.counters = np.zeros((len(levels), len(hk.COUNTERS)), dtype=np.int64)
        for index, level in enumerate(levels):
            if hasattr(level, "_state"):
                self._adopt(index, level._state, level._index)

    def _adopt(self, index: int, old: CacheState, old_index: int) -> None:
        for name in ("tags", "meta", "dirty"):
            self.level_slice(index, getattr(self, name))[:] = old.level_slice(
                old_index, getattr(old, name))
        self.set_slice(index, self.setbits)[:] = old.set_slice(old_index, old.setbits)
        for name in ("clocks", "rng", "counters"):
            getattr(self, name)[index] = getattr(old, name)[old_index]

    def level_slice(self, index: int, array: np.ndarray) -> np.ndarray:
        """The view of a per-slot array that belongs to level ``index``."""
        start = self.table[index, hk.LINE_BASE]
        return array[start: start + self.table[index, hk.NUM_SETS] * self.table[index, hk.WAYS]]

    def set_slice(self, index: int, array: np.ndarray) -> np.ndarray:
        """The view of a per-set array that belongs to level ``index``."""
        start = self.table[index, hk.SET_BASE]
        return array[start: start + self.table[index, hk.NUM_SETS]]

    def serve(self, requests: Requests, inclusion: int) -> tuple[np.ndarray, Requests]:
        """Serve ``requests`` through the levels: (serving level of each, as int8, with the
        number of levels meaning memory; the requests that reach memory, in order)."""
        n = len(requests)
        served = np.empty(n, dtype=np.int8)
        bound = hk.requests_bound(self.table.shape[0])
        chunks_addr, chunks_kind, chunks_origin = [], [], []
        start = 0
        while True:
            out_addr = np.empty(2 * (n - start) + bound, dtype=np.int64)
            out_kind = np.empty(out_addr.size, dtype=np.int8)
            out_origin = np.empty(out_addr.size, dtype=np.int64)
            start, used = hk.serve(requests.addresses, requests.kinds, start, self.shift,
                                   inclusion, self.table, self.rules, self.tags, self.meta,
                                   self.dirty, self.setbits, self.clocks, self.rng,
                                   self.counters, served, out_addr, out_kind, out_origin,
                                   bound)
            chunks_addr.append(out_addr[:used])
            chunks_kind.append(out_kind[:used])
            chunks_origin.append(out_origin[:used])
            if start == n:
                break
        return served, Requests(np.concatenate(chunks_addr), np.concatenate(chunks_kind),
                                np.concatenate(chunks_origin))
