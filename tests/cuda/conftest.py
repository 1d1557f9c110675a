"""Fixtures of the CUDA tests: `gpu` tests skip without a usable device;
`fake_driver` replaces the driver layer with a recorder so the kernel table
and the graph glue run on a machine without a GPU (their launches are
checked against the compiled kernels' parameter layouts, not executed)."""
import ctypes
import itertools
import os

import numpy as np
import pytest

from cnnengine.backend.cuda import driver as D
from cnnengine.errors import BackendUnavailableError

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def layouts():
    """{(source, kernel): [parameter sizes]} of the sm_80 cubins (NVRTC needed;
    in CI a missing NVRTC fails instead of skipping)."""
    from cnnengine.backend.cuda import nvrtc
    try:
        nvrtc.version()
    except BackendUnavailableError as exc:
        if IN_CI:
            pytest.fail(f"CI must compile the CUDA kernels, but: {exc}")
        pytest.skip(str(exc))
    out = {}
    for source in nvrtc.SOURCES:
        cubin, _ = nvrtc.compile_source(source, 80)
        for name, params in nvrtc.kernel_params(cubin).items():
            out[(source, name)] = [size for _, size in params]
    return out


def check_launches(launches, layouts, what):
    """Each (kernel, grid, block, argument sizes) against the kernel's compiled parameters and the launch limits."""
    for fn, grid, block, sizes in launches:
        assert fn in layouts, f"{what}: launches unknown kernel {fn}"
        assert sizes == layouts[fn], f"{what}: {fn[1]} takes {layouts[fn]}, given {sizes}"
        assert all(g >= 1 for g in grid) and grid[1] <= 65535 and grid[2] <= 65535, f"{what}: grid {grid}"
        assert 1 <= block[0] * block[1] * block[2] <= 1024, f"{what}: block {block}"


def gpu_or_skip():
    ok, reason = D.probe()
    if not ok:
        pytest.skip(f"no usable CUDA device: {reason}")


class FakeDevice:
    arch = 80
    sms = 108
    name = "fake"

    def function(self, source, name):
        return (source, name)


class Recorder:
    def __init__(self):
        self.launches = []      # ((source, name), grid, block, [arg sizes])
        self.graphs = 0
        self.allocs = 0
        self._ptr = itertools.count(0x10000000, 0x100000)
        self.memory = {}        # pointer -> what was uploaded there (kernels write nothing)

    def array(self, shape, value=None):
        self.allocs += 1
        d = D.DeviceArray(next(self._ptr), shape, None)
        if value is not None:
            self.memory[d.ptr] = np.array(value, np.float32).reshape(shape)
        return d

    def read(self, d):
        got = self.memory.get(d.ptr)
        return got.copy() if got is not None and got.shape == d.shape else np.zeros(d.shape, np.float32)


@pytest.fixture
def fake_driver(monkeypatch):
    rec = Recorder()
    dev = FakeDevice()

    def launch(fn, grid, block, args, s, shared=0):
        rec.launches.append((fn, tuple(grid), tuple(block), [ctypes.sizeof(a) for a in args]))

    class Graph:
        def __init__(self, s, record):
            rec.graphs += 1
            record()

        def launch(self, s):
            pass

    patches = {
        "device": lambda: dev, "stream": lambda: None, "new_stream": lambda: object(),
        "destroy_stream": lambda s: None, "launch": launch,
        "empty": lambda shape, s=None: rec.array(shape),
        "upload": lambda a, s=None: rec.array(np.shape(a), a),
        "upload_raw": lambda a, s=None: rec.array((np.size(a),)),
        "copy_in": lambda dst, a, s: a,
        "download": lambda d, s=None: rec.read(d),
        "synchronize": lambda s=None: None, "Graph": Graph,
    }
    for k, v in patches.items():
        monkeypatch.setattr(D, k, v)
    return rec
