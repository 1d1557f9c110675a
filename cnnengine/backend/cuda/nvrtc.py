"""Kernel sources (csrc/cuda/*.cu) compiled at run time by NVRTC, cubins cached on disk.

Needs only the `cuda-bindings` and `nvidia-cuda-nvrtc-cu12` wheels: no
driver, no GPU, no nvcc (so CI compiles every kernel for sm_80 and sm_90;
tests/cuda/test_nvrtc.py). A cubin is kept at
~/.cache/cnnengine/cuda/<arch>/<hash>.cubin (CNNENGINE_CUDA_CACHE moves the
root), the hash covering the source, the shared header, the options and the
NVRTC version, so an edited kernel or a new NVRTC never loads a stale one.
"""
import hashlib
import os
from pathlib import Path

from ...errors import BackendUnavailableError

# the families, one .cu each; common.cuh is every source's one include
SOURCES = ("conv", "pool", "reduce", "eltwise", "layout", "dense")
HEADER = "common.cuh"
OPTIONS = ("--std=c++17",)


def source_dir():
    """csrc/cuda: next to the package in a checkout, or installed as package data."""
    here = Path(__file__).resolve()
    for cand in (here.parents[3] / "csrc" / "cuda", here.parent / "csrc"):
        if (cand / HEADER).is_file():
            return cand
    raise BackendUnavailableError(f"the CUDA kernel sources are missing (looked in {here.parents[3] / 'csrc' / 'cuda'})")


def read_source(name):
    d = source_dir()
    return (d / f"{name}.cu").read_bytes(), (d / HEADER).read_bytes()


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError as exc:
        raise BackendUnavailableError("the cuda-bindings package is not installed "
                                      "(pip install \"cnnengine[cuda]\")") from exc
    return nvrtc


def version():
    """(major, minor) of the NVRTC library, or BackendUnavailableError saying why there is none."""
    nvrtc = _nvrtc()
    try:
        err, major, minor = nvrtc.nvrtcVersion()
    except Exception as exc:     # the library itself is missing: cuda-pathfinder raises its own types
        raise BackendUnavailableError(f"the NVRTC library is not installed (pip install nvidia-cuda-nvrtc-cu12): "
                                      f"{exc}") from None
    _check(nvrtc, err, "nvrtcVersion")
    return int(major), int(minor)


def supported_archs():
    nvrtc = _nvrtc()
    err, archs = nvrtc.nvrtcGetSupportedArchs()
    _check(nvrtc, err, "nvrtcGetSupportedArchs")
    return [int(a) for a in archs]


def _check(nvrtc, err, what, log=""):
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise BackendUnavailableError(f"NVRTC {what} failed: {err.name}{': ' + log if log else ''}")


def compile_source(name, arch, src=None, header=None):
    """(cubin bytes, compiler log) of kernel source `name` for arch (e.g. 80 for
    sm_80). Raises BackendUnavailableError with the log when it does not compile."""
    nvrtc = _nvrtc()
    if src is None:
        src, header = read_source(name)
    err, prog = nvrtc.nvrtcCreateProgram(src, f"{name}.cu".encode(), 1, [header], [HEADER.encode()])
    _check(nvrtc, err, "nvrtcCreateProgram")
    try:
        opts = [f"--gpu-architecture=sm_{arch}".encode()] + [o.encode() for o in OPTIONS]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        log = _log(nvrtc, prog)
        _check(nvrtc, err, f"compiling {name}.cu for sm_{arch}", log)
        e, size = nvrtc.nvrtcGetCUBINSize(prog)
        _check(nvrtc, e, "nvrtcGetCUBINSize")
        # a bytearray: NVRTC writes into the buffer, and b" " * n can be an
        # interned bytes object that the whole interpreter shares
        cubin = bytearray(size)
        (e,) = nvrtc.nvrtcGetCUBIN(prog, cubin)
        _check(nvrtc, e, "nvrtcGetCUBIN")
        return bytes(cubin), log
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def _log(nvrtc, prog):
    e, size = nvrtc.nvrtcGetProgramLogSize(prog)
    buf = bytearray(size)      # written into: never a (possibly shared) bytes object
    nvrtc.nvrtcGetProgramLog(prog, buf)
    return bytes(buf).rstrip(b"\x00").decode(errors="replace").strip()


def cache_root():
    env = os.environ.get("CNNENGINE_CUDA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cnnengine" / "cuda"


def cache_key(src, header, arch, nvrtc_version):
    h = hashlib.sha256()
    for part in (src, header, repr((arch, OPTIONS, nvrtc_version)).encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:32]


def cubin(name, arch):
    """The cubin of source `name` for sm_<arch>: from the disk cache, else compiled and stored."""
    src, header = read_source(name)
    path = cache_root() / f"sm_{arch}" / f"{name}-{cache_key(src, header, arch, version())}.cubin"
    try:
        return path.read_bytes()
    except OSError:
        pass
    data, _ = compile_source(name, arch, src, header)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)       # atomic: a concurrent reader sees all or nothing
    except OSError:
        pass                        # a read-only home still runs, compiling each time
    return data


def kernel_params(cubin):
    """{kernel name: [(offset, size) of each parameter in order]} read from
    a cubin's .nv.info.<kernel> sections (EIATTR_KPARAM_INFO records), so the
    host can check the arguments it packs against what the compiler laid out."""
    import struct
    shoff = struct.unpack_from("<Q", cubin, 0x28)[0]
    entsize, count, strndx = struct.unpack_from("<HHH", cubin, 0x3A)
    secs = [struct.unpack_from("<IIQQQQ", cubin, shoff + i * entsize) for i in range(count)]
    names_at = secs[strndx][4]

    def name(off):
        end = cubin.index(b"\0", names_at + off)
        return cubin[names_at + off:end].decode()
    out = {}
    for sh_name, _, _, _, offset, size in secs:
        sec = name(sh_name)
        if not sec.startswith(".nv.info."):
            continue
        data, i, params = cubin[offset:offset + size], 0, []
        while i + 2 <= len(data):
            fmt, attr = data[i], data[i + 1]
            i += 2
            if fmt == 0x04:            # EIFMT_SVAL: u16 size, payload
                n = struct.unpack_from("<H", data, i)[0]
                if attr == 0x17:       # EIATTR_KPARAM_INFO: index, ordinal, offset, flags (size in bits 18..31)
                    _, ordinal, poff, flags = struct.unpack_from("<IHHI", data, i + 2)
                    params.append((ordinal, poff, (flags >> 18) & 0x3FFF))
                i += 2 + n
            elif fmt == 0x03:          # EIFMT_HVAL: u16
                i += 2
            elif fmt == 0x02:          # EIFMT_BVAL: u8
                i += 1
        out[sec[len(".nv.info."):]] = [(off, sz) for _, off, sz in sorted(params)]
    return out
