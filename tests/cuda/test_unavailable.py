"""Without the cuda extra, NVRTC, a driver or a device, ce.backends() says
which is missing and backend="cuda" raises BackendUnavailableError with that
reason; nothing else changes."""
import sys
import types

import numpy as np
import pytest

import cnnengine as ce
from cnnengine.backend.cuda import driver as D
from cnnengine.backend.cuda import nvrtc

from ..runtime.onnx_builders import residual_net


def _cuda_info():
    return next(b for b in ce.backends() if b.name == "cuda")


def _assert_absent(rng, words):
    info = _cuda_info()
    assert not info.available and words in info.reason, info.reason
    with pytest.raises(ce.BackendUnavailableError, match=words):
        ce.load(residual_net(rng), backend="cuda")


def test_without_cuda_bindings(rng, monkeypatch):
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)    # import fails as if not installed
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings.nvrtc", None)
    _assert_absent(rng, "cuda-bindings package is not installed")


def test_without_nvrtc(rng, monkeypatch):
    pytest.importorskip("cuda.bindings.driver")

    def missing():
        raise ce.BackendUnavailableError("the NVRTC library is not installed (pip install nvidia-cuda-nvrtc-cu12)")
    monkeypatch.setattr(nvrtc, "version", missing)
    _assert_absent(rng, "NVRTC library is not installed")


def _fake_driver_module(init_error=None, count=0):
    class R:
        CUDA_SUCCESS = 0
        CUDA_ERROR_NO_DEVICE = 100
    drv = types.SimpleNamespace(CUresult=R)

    def cu_init(flags):
        if init_error is not None:
            raise init_error
        return (R.CUDA_SUCCESS,)
    drv.cuInit = cu_init
    drv.cuDeviceGetCount = lambda: (R.CUDA_SUCCESS, count)
    return drv


def test_without_a_driver(rng, monkeypatch):
    monkeypatch.setattr(nvrtc, "version", lambda: (12, 9))
    monkeypatch.setattr(D, "_driver", lambda: _fake_driver_module(init_error=OSError("libcuda.so.1")))
    _assert_absent(rng, "no NVIDIA driver")


def test_without_a_device(rng, monkeypatch):
    monkeypatch.setattr(nvrtc, "version", lambda: (12, 9))
    monkeypatch.setattr(D, "_driver", lambda: _fake_driver_module(count=0))
    _assert_absent(rng, "no CUDA device")


def test_this_machine_says_why_or_runs(rng):
    """Here: either a usable GPU, or the precise reason, and the other backends work either way."""
    info = _cuda_info()
    if not info.available:
        assert info.reason
        with pytest.raises(ce.BackendUnavailableError, match="backend 'cuda' is not available"):
            ce.load(residual_net(rng), backend="cuda")
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    assert ce.load(residual_net(rng)).run(x).shape[0] == 1


def test_cli_bench_on_cuda_or_against_torch_fails_cleanly_without_a_gpu(capsys):
    from cnnengine.backend.cuda import driver
    from cnnengine.cli import main
    if driver.probe()[0]:
        pytest.skip("this machine has a GPU: the benchmark would run")
    assert main(["bench", "lenet5", "--backend", "cuda", "--runs", "1", "--no-memory"]) == 2
    err = capsys.readouterr().err
    assert "backend 'cuda' is not available" in err and "Traceback" not in err
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("PyTorch sees a GPU here")
    assert main(["bench", "lenet5", "--compare", "torch", "--runs", "1", "--no-memory"]) == 2
    err = capsys.readouterr().err
    assert "--compare torch" in err and "CUDA" in err and "Traceback" not in err
