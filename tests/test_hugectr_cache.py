"""HPS GPU embedding cache (kind hugectr) against a plain-Python transcription of gpu_cache."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.cache.hugectr import SET_SLOTS, SLAB_SIZE, murmur3_32
from hwmodels.cache.row_cache import build_row_cache

M32 = 0xFFFFFFFF


def reference_murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3_x86_32 (smhasher), byte by byte."""
    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & M32

    h = seed
    blocks = len(data) // 4
    for i in range(blocks):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = rotl((k * 0xCC9E2D51) & M32, 15) * 0x1B873593 & M32
        h = (rotl(h ^ k, 13) * 5 + 0xE6546B64) & M32
    tail = data[4 * blocks:]
    if tail:
        k = int.from_bytes(tail, "little")
        h ^= rotl((k * 0xCC9E2D51) & M32, 15) * 0x1B873593 & M32
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    return h ^ (h >> 16)


@pytest.mark.parametrize("data, seed, expected", [
    (b"", 0, 0), (b"", 1, 0x514E28B7), (b"\0\0\0\0", 0, 0x2362F9DE),
    (b"\x21\x43\x65\x87", 0, 0xF55B516B), (b"Hello, world!", 0x9747B28C, 0x24884CBA),
    (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
])
def test_reference_hash_matches_published_vectors(data, seed, expected):
    assert reference_murmur3_32(data, seed) == expected


def test_kernel_hash_of_8_byte_keys():
    for key in [0, 1, 63, 64, 123456789, 2**40 + 3]:
        assert murmur3_32(key) == reference_murmur3_32(key.to_bytes(8, "little"))


class ReferenceHps:
    """Per table: deduplicate, ``Query`` (counter + 1), ``Replace`` the misses."""

    def __init__(self, sets_per_table, table_rows):
        self.sets = sets_per_table
        self.base = np.concatenate([[0], np.cumsum(table_rows)[:-1]])
        self.slabs = [[[[-1] * SLAB_SIZE, [-1] * SLAB_SIZE] for _ in range(n)]
                      for n in sets_per_table]
        self.stamps = [[[[0] * SLAB_SIZE, [0] * SLAB_SIZE] for _ in range(n)]
                       for n in sets_per_table]
        self.counter = [0] * len(sets_per_table)
        self.offset = np.concatenate([[0], np.cumsum(np.array(sets_per_table) * SET_SLOTS)])
        self.replaced = 0

    def slot(self, t, s, slab, lane):
        return int(self.offset[t]) + s * SET_SLOTS + slab * SLAB_SIZE + lane

    def batch(self, keys):
        where, cached_before = {}, set()
        for t in range(len(self.sets)):
            own = [k for k in dict.fromkeys(keys) if self.table_of(k) == t]
            if not own:
                continue
            self.counter[t] += 1
            misses = []
            for key in own:
                found = self.query(t, key - int(self.base[t]))
                if found is None:
                    misses.append(key)
                else:
                    where[key] = found
                    cached_before.add(key)
            for key in misses:
                where[key] = self.replace(t, key - int(self.base[t]))
        hits, slots, seen = [], [], set()
        for key in keys:
            hits.append(key in cached_before or key in seen)
            slots.append(where[key])
            seen.add(key)
        return np.array(hits), np.array(slots)

    def table_of(self, key):
        return int(np.searchsorted(self.base, key, side="right")) - 1

    def place(self, t, key):
        return reference_murmur3_32(key.to_bytes(8, "little")) % self.sets[t], key % 2

    def query(self, t, key):
        s, slab = self.place(t, key)
        for _ in range(2):
            keys = self.slabs[t][s][slab]
            if key in keys:
                self.stamps[t][s][slab][keys.index(key)] = self.counter[t]
                return self.slot(t, s, slab, keys.index(key))
            if -1 in keys:
                return None
            slab = 1 - slab
        return None

    def replace(self, t, key):
        s, first = self.place(t, key)
        best = None
        for distance in range(2):
            slab = (first + distance) % 2
            keys, stamps = self.slabs[t][s][slab], self.stamps[t][s][slab]
            if -1 in keys:
                lane = keys.index(-1)
                keys[lane], stamps[lane] = key, self.counter[t]
                return self.slot(t, s, slab, lane)
            for lane in range(SLAB_SIZE):
                if best is None or stamps[lane] < best[0]:
                    best = (stamps[lane], slab, lane)
        _, slab, lane = best
        self.slabs[t][s][slab][lane] = key
        self.stamps[t][s][slab][lane] = self.counter[t]
        self.replaced += 1
        return self.slot(t, s, slab, lane)


def test_geometry_per_table():
    cache = build_row_cache("hugectr", {"fraction": 0.5}, slots=1,
                            table_rows=np.array([100, 1000, 129]))
    # int(0.5 * rows) = 50 (raised to 64), 500, 64 -> 1, 8, 1 slab sets of 64 slots
    assert cache.num_sets.tolist() == [1, 8, 1]
    assert cache.slots == 10 * SET_SLOTS
    default = build_row_cache("hugectr", {}, slots=2000, table_rows=np.array([1000, 3000]))
    assert default.num_sets.tolist() == [8, 24]  # fraction = 2000 / 4000


def test_least_recently_queried_key_is_replaced():
    cache = build_row_cache("hugectr", {"fraction": 0.01}, slots=1,
                            table_rows=np.array([1000]))
    cache.lookup(np.arange(64))                 # one set: even keys fill slab 0, odd slab 1
    assert cache.counters()["inserts"] == 64
    hit, _ = cache.lookup(np.array([k for k in range(64) if k != 17] + [500]))
    assert hit[:63].all() and not hit[63]       # key 500 replaced key 17, the stale one
    hit, slot = cache.lookup(np.array([17, 500]))
    assert hit.tolist() == [False, True]
    assert cache.counters()["replacements"] == 2 and cache.evictions == 2


batch = st.integers(1, 80).flatmap(
    lambda n: st.lists(st.integers(0, 299), min_size=n, max_size=n))


@settings(max_examples=50, deadline=None)
@given(batches=st.lists(batch, min_size=1, max_size=6), fraction=st.sampled_from([0.1, 0.5]))
def test_matches_reference(batches, fraction):
    table_rows = np.array([100, 200])
    cache = build_row_cache("hugectr", {"fraction": fraction}, slots=1, table_rows=table_rows)
    reference = ReferenceHps(cache.num_sets.tolist(), table_rows)
    for keys in batches:
        hit, slot = cache.lookup(np.array(keys))
        want_hit, want_slot = reference.batch(keys)
        assert np.array_equal(hit, want_hit) and np.array_equal(slot, want_slot)
    assert cache.evictions == reference.replaced
    assert cache.hits + cache.misses == sum(map(len, batches))


def test_a_hugectr_cache_sized_by_its_fraction_alone_runs(tmp_path):
    """HugeCTR's ``fraction`` sizes the cache, so neither ``size`` nor ``load_factor`` is
    needed; a cache with none of the three is refused, naming ``system.cache.size``."""
    from conftest import embsim_here, experiment, write_yaml

    data = experiment(system__cache={"tier": "hbm", "kind": "hugectr", "fraction": 0.1})
    path = write_yaml(tmp_path / "frac.yaml", data)
    result = embsim_here("run", str(path), "--out", str(tmp_path / "out"), "--workers", "1",
                         "--quiet")
    assert result.returncode == 0, result.stderr
    data["system"]["cache"].pop("fraction")
    path = write_yaml(tmp_path / "none.yaml", data)
    result = embsim_here("run", str(path), "--out", str(tmp_path / "out2"))
    assert result.returncode == 2 and "system.cache.size" in result.stderr
    assert "exactly one of 'size' or 'load_factor'" in result.stderr
