"""Shared fixtures: fixed seeds, both ISA paths, tolerance helpers."""
import os
import tempfile

import numpy as np
import pytest

import cnnengine as ce

# 2-thread tests run 2 threads: on a loaded machine the load-aware cap would
# quietly give them one (read at the first kernel call; test_threads turns it on)
os.environ.setdefault("CNNENGINE_LOAD_AWARE", "0")

# built zoo models go to a cache of this run, not the user's ~/.cache
os.environ.setdefault("CNNENGINE_CACHE_DIR", tempfile.mkdtemp(prefix="cnnengine-test-cache-"))

# The ISA levels this CPU runs: each implies the ones before it.
ISAS = ["scalar", "avx2", "avx512"][: ["scalar", "avx2", "avx512"].index(ce.detected_isa()) + 1]


@pytest.fixture(params=["scalar", "avx2", "avx512"])
def isa(request):
    """Run the test once per ISA path; a level the CPU lacks is skipped."""
    if request.param not in ISAS:
        pytest.skip(f"{request.param} not supported on this CPU")
    before = ce.active_isa()
    ce.set_isa(request.param)
    yield request.param
    ce.set_isa(before)


@pytest.fixture(params=["avx2", "avx512"])
def avx2(request):
    """Run a test on each SIMD level (a module: usefixtures("avx2")): the
    AVX2 kernels, then AVX-512 (its own kernels where it has them, AVX2's
    elsewhere); a level the CPU lacks is skipped, and the previous ISA
    comes back after."""
    if request.param not in ISAS:
        pytest.skip(f"no {request.param} on this CPU")
    before = ce.active_isa()
    ce.set_isa(request.param)
    yield request.param
    ce.set_isa(before)


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: reproducible, different per test."""
    seed = abs(hash(request.node.nodeid)) % (2**32) if os.environ.get("CNNENGINE_RANDOM_SEED") else 7767517
    return np.random.default_rng(seed)


def assert_close(actual, expected, rtol=1e-4, atol=1e-5, what=""):
    """Max-abs comparison with a tolerance scaled to the reference's magnitude."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what} shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    err = float(np.max(np.abs(actual.astype(np.float64) - expected))) if expected.size else 0.0
    assert err <= atol + rtol * scale, f"{what} max abs error {err:.3g} (scale {scale:.3g})"


def torch_or_skip():
    return pytest.importorskip("torch")
