"""Every kernel source compiles with NVRTC for sm_80 and sm_90 without a
warning; the argument structs the host packs have the compiler's layout;
the cubin cache. Needs only the cuda extra's wheels (no driver, no GPU):
in CI (CI=true) a missing wheel fails these tests instead of skipping them."""
import ctypes
import os
import re

import pytest

from cnnengine.backend.cuda import launch as L
from cnnengine.errors import BackendUnavailableError

ARCHS = (80, 90)
IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def nvrtc():
    from cnnengine.backend.cuda import nvrtc
    try:
        nvrtc.version()
    except BackendUnavailableError as exc:
        if IN_CI:
            pytest.fail(f"CI must compile the CUDA kernels, but: {exc}")
        pytest.skip(str(exc))
    return nvrtc


def _kernels(nvrtc, source):
    text = (nvrtc.source_dir() / f"{source}.cu").read_text()
    return set(re.findall(r'extern "C" __global__ void(?: __launch_bounds__\(\w+\))?\s+(\w+)\(', text))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", ["conv", "pool", "reduce", "eltwise", "layout", "dense"])
def test_every_kernel_source_compiles_without_warnings(nvrtc, source, arch):
    cubin, log = nvrtc.compile_source(source, arch)
    assert "warning" not in log.lower(), f"{source}.cu for sm_{arch}:\n{log}"
    assert cubin[:4] == b"\x7fELF"
    params = nvrtc.kernel_params(cubin)
    want = _kernels(nvrtc, source)
    assert want and want <= set(params), f"kernels missing from the cubin: {want - set(params)}"


def test_sources_list_is_every_file(nvrtc):
    files = {p.stem for p in nvrtc.source_dir().glob("*.cu")}
    assert files == set(nvrtc.SOURCES)


def test_a_warning_or_an_error_is_reported(nvrtc):
    """The no-warning test can fail: NVRTC's log carries a warning, and a
    broken kernel raises with the compiler's message."""
    _, log = nvrtc.compile_source("probe", 80, src=b'extern "C" __global__ void k(float *x) { int unused; }',
                                  header=b"")
    assert "warning" in log
    with pytest.raises(BackendUnavailableError, match="no_such_function"):
        nvrtc.compile_source("probe", 80, src=b'extern "C" __global__ void k() { no_such_function(); }',
                             header=b"")


_C_NAMES = {"PadDims": {"inp": "in"}}


def _probe_source():
    """Device code that static_asserts, per struct of launch.py, the size and
    each field's size and position (aggregate initialisation in field order):
    with the size that fixes every offset, under the C rules ctypes follows."""
    lines = ['#include "common.cuh"']
    for cls in (L.ConvShape, L.Epilogue, L.PoolShape, L.Dims, L.PadDims):
        name = cls.__name__
        inits, checks, value = [], [], 1
        lines.append(f"static_assert(sizeof({name}) == {ctypes.sizeof(cls)}, \"size of {name}\");")
        for field, ctype in cls._fields_:
            c_field = _C_NAMES.get(name, {}).get(field, field)
            length = getattr(ctype, "_length_", None)
            elem = ctypes.sizeof(ctype._type_) if length else ctypes.sizeof(ctype)
            probe = f"(({name} *)0)->{c_field}" + ("[0]" if length else "")
            lines.append(f"static_assert(sizeof({probe}) == {elem}, \"{name}.{c_field}\");")
            if name == "Epilogue" and field in ("scale", "shift", "residual"):
                inits.append("nullptr")
                continue
            if length:
                vals = list(range(value, value + length))
                inits.append("{" + ", ".join(map(str, vals)) + "}")
                checks += [f"p{name}.{c_field}[{j}] == {v}" for j, v in enumerate(vals)]
                value += length
            else:
                inits.append(str(value))
                checks.append(f"p{name}.{c_field} == {value}")
                value += 1
        lines.append(f"constexpr {name} p{name} = {{{', '.join(inits)}}};")
        lines.append(f"static_assert({' && '.join(checks)}, \"field order of {name}\");")
    lines.append('extern "C" __global__ void layout_probe() {}')
    return "\n".join(lines).encode()


@pytest.mark.parametrize("arch", ARCHS)
def test_argument_structs_have_the_device_layout(nvrtc, arch):
    header = (nvrtc.source_dir() / nvrtc.HEADER).read_bytes()
    _, log = nvrtc.compile_source("layout_probe", arch, src=_probe_source(), header=header)
    assert "warning" not in log.lower(), log


def test_the_layout_probe_catches_a_mismatch(nvrtc, monkeypatch):
    class Bad(ctypes.Structure):     # PoolShape with nc as an int: the probe must refuse it
        _fields_ = [("nc", ctypes.c_int)] + L.PoolShape._fields_[1:]
    Bad.__name__ = "PoolShape"
    monkeypatch.setattr(L, "PoolShape", Bad)
    header = (nvrtc.source_dir() / nvrtc.HEADER).read_bytes()
    with pytest.raises(BackendUnavailableError, match="PoolShape"):
        nvrtc.compile_source("layout_probe", 80, src=_probe_source(), header=header)


def test_cubins_are_cached_by_source_options_and_version(nvrtc, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNENGINE_CUDA_CACHE", str(tmp_path))
    first = nvrtc.cubin("pool", 80)
    files = list((tmp_path / "sm_80").glob("pool-*.cubin"))
    assert len(files) == 1 and files[0].read_bytes() == first

    def no_compile(*a, **k):
        raise AssertionError("compiled although cached")
    monkeypatch.setattr(nvrtc, "compile_source", no_compile)
    assert nvrtc.cubin("pool", 80) == first
    src, hdr = nvrtc.read_source("pool")
    key = nvrtc.cache_key(src, hdr, 80, nvrtc.version())
    assert key != nvrtc.cache_key(src + b"\n", hdr, 80, nvrtc.version())
    assert key != nvrtc.cache_key(src, hdr, 90, nvrtc.version())
    assert key != nvrtc.cache_key(src, hdr, 80, (99, 0))


def test_compiling_leaves_shared_bytes_objects_alone(nvrtc):
    """NVRTC writes its log and cubin into buffers we hand it: never an
    interned bytes object (an empty log once overwrote b" " process-wide)."""
    nvrtc.compile_source("probe", 80, src=b'extern "C" __global__ void k() {}', header=b"")
    assert bytes([32])[0] == 32 and b"x y".split(b" ") == [b"x", b"y"]
