"""traces.numpy_zipf: the compiled Zipf draws equal numpy's value for value and leave the
generator where numpy's would."""

from __future__ import annotations

import platform

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traces import numpy_zipf
from traces.generators import synthesize
from traces.schema import TableSpec


def _next_draws(rng: np.random.Generator) -> tuple:
    """Draws of every width after a call: doubles, 32-bit and 64-bit integers."""
    return (rng.random(3).tolist(), rng.integers(0, 1000, 5).tolist(),
            rng.integers(0, 2**40, 3).tolist())


def _twins(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two equal generators, each with a buffered 32-bit half (from a small-range draw)."""
    pair = []
    for _ in range(2):
        rng = np.random.default_rng(seed)
        rng.integers(0, 1000, 3)
        pair.append(rng)
    return pair[0], pair[1]


KERNEL_PLATFORM = (platform.machine().lower() in ("x86_64", "amd64")
                   and np.lib.NumpyVersion(np.__version__) >= "2.1.0")


@pytest.mark.skipif(not KERNEL_PLATFORM, reason="the kernel stands in for numpy on x86-64")
def test_the_kernel_draws_here_so_the_equalities_below_test_it():
    assert numpy_zipf._reproduces_numpy()


def test_it_leaves_the_draws_to_numpy_where_it_is_not_exact(monkeypatch):
    """SVML's pow, another processor or a numpy before 2.1 turn the kernel off."""
    check = numpy_zipf._reproduces_numpy.__wrapped__
    monkeypatch.setattr(numba.config, "USING_SVML", True)
    assert not check()
    monkeypatch.setattr(numba.config, "USING_SVML", False)
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert not check()
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(np, "__version__", "2.0.2")
    assert not check()


@pytest.mark.parametrize("alpha", [1.0001, 1.05, 1.2, 1.5, 2.0, 7.0, 60.0])
def test_equals_numpy_and_leaves_the_generator_where_numpy_does(alpha):
    ours, theirs = _twins(11)
    drawn = numpy_zipf.draw(ours, alpha, 300_000)
    expected = theirs.zipf(alpha, 300_000)
    assert drawn.dtype == np.int64
    np.testing.assert_array_equal(drawn, expected)
    assert _next_draws(ours) == _next_draws(theirs)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), alpha=st.floats(1.001, 4.0),
       sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=4))
def test_successive_calls_equal_numpy(seed, alpha, sizes):
    ours, theirs = _twins(seed)
    for n in sizes:
        np.testing.assert_array_equal(numpy_zipf.draw(ours, alpha, n), theirs.zipf(alpha, n))
    assert _next_draws(ours) == _next_draws(theirs)


@pytest.mark.parametrize("make, alpha", [
    (lambda: np.random.Generator(np.random.Philox(3)), 1.3),     # not PCG64: numpy draws
    (lambda: np.random.default_rng(3), 2000.0),                  # numpy returns 1, no draw
    (lambda: np.random.default_rng(3), np.float32(1.3)),         # a float32 exponent
])
def test_cases_it_leaves_to_numpy_equal_numpy(make, alpha):
    ours, theirs = make(), make()
    np.testing.assert_array_equal(numpy_zipf.draw(ours, alpha, 5000), theirs.zipf(alpha, 5000))
    assert _next_draws(ours) == _next_draws(theirs)


def test_default_sampler_trace_is_the_one_numpy_zipf_gives(monkeypatch):
    """The generator's Zipf batches are those of drawing with ``rng.zipf`` itself."""
    tables = [TableSpec(rows=r, dim=16) for r in (50, 10_000, 3_000_000)]

    def batches() -> list:
        _, generated = synthesize(tables, [4, 20, 60], batches=3, batch_size=32, alpha=1.1,
                                  reuse=0.2, pooling_dist="normal", pooling_sigma=3.0, seed=5)
        return list(generated)

    fast = batches()
    monkeypatch.setattr(numpy_zipf, "draw", lambda rng, a, n: rng.zipf(a, n))
    for ours, numpy_only in zip(fast, batches(), strict=True):
        np.testing.assert_array_equal(ours.indices, numpy_only.indices)
        np.testing.assert_array_equal(ours.offsets, numpy_only.offsets)
