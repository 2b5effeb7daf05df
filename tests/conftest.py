"""Shared fixtures: run the CLI in process, paths to the shared reference data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_REFERENCE = REPO.parent / "shared" / "reference"


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"CliResult(code={self.code}, out={self.out[-400:]!r}, err={self.err[-400:]!r})"


@pytest.fixture
def cli(capsys):
    """Run `capplan ARGS` in process through the real entry point (error handling included)."""
    from simulator.cli.app import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


CPU_TEMPLATE_PROFILE = """\
name: cpu-generic
vendor: generic
kind: cpu
peak_flops_per_s: {fp32: 1 TFLOPS, fp64: 0.5 TFLOPS}
memory: {capacity_bytes: 16 GiB, bandwidth_bytes_per_s: 50 GB/s}
compute_units: 8
launch_overhead_s: 1 us
power: {tdp_w: 100 W}
sources: {peak_flops_per_s.fp32: t, peak_flops_per_s.fp64: t, memory.capacity_bytes: t,
  memory.bandwidth_bytes_per_s: t, compute_units: t, launch_overhead_s: t, power.tdp_w: t}
"""


@pytest.fixture(scope="session")
def benchmark_script():
    """Load a script of benchmarks/ as a module by name (they are scripts, not a package)."""
    import importlib.util
    loaded = {}

    def load(name: str):
        if name not in loaded:
            path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
            spec = importlib.util.spec_from_file_location(name, path)
            loaded[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(loaded[name])
        return loaded[name]
    return load


@pytest.fixture
def cpu_template_profiles(tmp_path) -> Path:
    """A --profiles-dir holding a small cpu-generic template, independent of the bundled data."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "cpu-generic.yaml").write_text(CPU_TEMPLATE_PROFILE)
    return folder


def pytest_collection_modifyitems(config, items):
    """Skip tests marked `gpu` unless CuPy sees a usable CUDA device."""
    try:
        import cupy  # noqa: F401
        has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure means no usable GPU
        has_gpu = False
    if has_gpu or os.environ.get("CAPPLAN_FORCE_GPU_TESTS"):
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU with CuPy")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
