"""Backend choice: auto falls back to NumPy with a notice; cupy without a GPU is one clear error."""
from __future__ import annotations

import sys
import types

import pytest

from simulator.calibrate import backends
from simulator.errors import InputError


def test_numpy_needs_no_notice():
    assert backends.resolve_backend("numpy") == ("numpy", None)


def test_auto_without_a_gpu_uses_numpy_and_says_so(monkeypatch):
    monkeypatch.setattr(backends, "cupy_status", lambda: (False, "CuPy is not installed"))
    name, notice = backends.resolve_backend("auto")
    assert name == "numpy" and "no usable GPU" in notice and "\n" not in notice


def test_auto_with_a_gpu_uses_cupy_and_says_so(monkeypatch):
    monkeypatch.setattr(backends, "cupy_status", lambda: (True, "NVIDIA H200"))
    assert backends.resolve_backend("auto") == ("cupy", "backend auto: using CuPy on NVIDIA H200")


def test_cupy_without_a_gpu_is_an_input_error(monkeypatch):
    monkeypatch.setattr(backends, "cupy_status", lambda: (False, "CuPy sees no CUDA device"))
    with pytest.raises(InputError, match="--backend cupy is not usable here: CuPy sees no CUDA device"):
        backends.resolve_backend("cupy")
    with pytest.raises(InputError, match="unknown backend"):
        backends.resolve_backend("tpu")


def test_a_broken_cupy_install_is_reported_not_raised(monkeypatch):
    fake = types.ModuleType("cupy")

    class _Runtime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("cudaErrorInsufficientDriver")
    fake.cuda = types.SimpleNamespace(runtime=_Runtime())
    monkeypatch.setitem(sys.modules, "cupy", fake)
    ok, why = backends.cupy_status()
    assert not ok and "cudaErrorInsufficientDriver" in why


def test_cupy_that_fails_to_import_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)      # import raises ImportError
    ok, why = backends.cupy_status()
    assert not ok and "does not import" in why


def test_importing_calibrate_does_not_import_cupy():
    import subprocess
    code = ("import sys, simulator.calibrate.run, simulator.calibrate.validate, "
            "simulator.cli.calibrate_cmd; print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
