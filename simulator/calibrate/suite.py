"""The microbenchmark suite, written once for any array backend (NumPy or CuPy).

A backend (simulator/calibrate/bench_numpy.py, bench_cupy.py) supplies the
array module, a timer, a GEMM routine per dtype, the sweep sizes and any
device-only tests (host-device copies, peer-to-peer, NCCL). `plan_suite`
lists the tasks (so a progress bar knows the total), `run_suite` runs them.

Tests and what they measure (bytes counted as STREAM does, McCalpin 1995):
  gemm   C = A @ B, square and skinny shapes, per dtype       -> matmul curve, peak FLOP/s
  bmm    batched A[b] @ B[b] (attention-like per-head GEMMs)  -> attention curve
  conv   NCHW convolution as im2col + GEMM (kernels.conv2d)   -> conv curve
  copy   c = a            2 arrays moved                       -> memory curve
  add    c = a + b        3 arrays moved                       -> memory curve, bandwidth
  scale  c = s * a        2 arrays moved                       -> memory curve
  triad  a = b + s * c    3 arrays moved (fused on a GPU)      -> memory curve where fused
  exp    c = exp(a)           (elementwise kernel)              -> reported
  sum    a.sum()              (reduction)                       -> reduce curve (CPU)
  gelu   kernels.gelu(a)  (the activation the executor runs)   -> vector_flops_per_s (CPU)
  layernorm kernels.layernorm over rows of 1024                 -> norm curve (CPU)
  softmax   kernels.softmax over rows of 256                    -> softmax curve (CPU)
  maxpool   kernels.pool2d 2x2 stride 2 on 32x32 planes         -> pooling curve (CPU)
  gap       global average pool of 7x7 planes (ResNet's last)   -> pooling curve (CPU)
  launch one tiny call    (call or kernel-launch overhead)     -> launch_overhead_s
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from simulator.calibrate.kernels import gelu, layernorm, pool2d, softmax
from simulator.graph.ops import PER_ELEMENT_FLOPS
from simulator.calibrate.harness import (Settings, Timer, gemm_flops, random_array, rotation_sets,
                                         time_call)
from simulator.schema.calibration import Fingerprint, Measurement


ROUND2_MAX_FLOPS = 5e9        # the few largest GEMMs (seconds each on a CPU) run one round only
VECTOR_MAX_SETS = 64          # input sets conv and vector-class tests rotate over (>= 2x the LLC)


@dataclass
class Backend:
    """Everything the shared suite needs from one array library on one device."""

    name: str
    xp: object
    timer: Timer
    fingerprint: Fingerprint
    cache_bytes: float                       # last-level cache (CPU L3, GPU L2)
    limit_bytes: float                       # most memory the suite may allocate at once
    gemm_dtypes: dict[str, object]           # dtype name -> array dtype used for storage
    matmul: Callable[[object, object, object, str], None]   # (a, b, out, dtype name)
    gemm_shapes: Callable[[bool], list[tuple[int, int, int]]]
    bmm_shapes: Callable[[bool], list[tuple[int, int, int, int]]]
    conv_shapes: Callable[[bool], list[tuple[int, int, int, int, int, int]]]  # n, cin, hw, cout, k, s
    stream_sizes: Callable[[bool], list[int]]                # elements per array
    triad: Callable[[object, object, object, float], None]   # a = b + s * c
    triad_fused: bool = False
    extra_tasks: Callable[["Backend", bool, np.random.Generator, Settings], list["Task"]] | None = None
    operand: Callable[[np.random.Generator, tuple, str], object] | None = None   # random GEMM operand
    notes: list[str] = field(default_factory=list)
    # quick mode: dtypes after the first get only square GEMMs up to this many FLOPs
    # (None: every dtype gets every shape, as on a GPU where each GEMM takes milliseconds)
    quick_secondary_max_flops: float | None = 2.2e9


@dataclass(frozen=True)
class Task:
    """One measurement to take: a label for the progress bar and the function taking it."""

    label: str
    run: Callable[[], Measurement | None]
    flops: float = 0.0          # of one call, for planning (0 for data movement)


def plan_suite(backend: Backend, *, quick: bool, settings: Settings, seed: int = 0,
               only: Iterable[str] | None = None) -> list[Task]:
    """All tasks of a calibration run, in order; `only` keeps the named tests."""
    rng = np.random.default_rng(seed)
    compute = _compute_tasks(backend, quick, settings, rng)
    tasks: list[Task] = [_launch_task(backend, settings, rng)] + compute
    for n in backend.stream_sizes(quick):
        for test in ("copy", "add", "scale", "triad"):
            tasks.append(_stream_task(backend, settings, rng, test, n))
    for n in backend.stream_sizes(quick)[1::2]:
        tasks.append(_stream_task(backend, settings, rng, "exp", n))
        tasks.append(_stream_task(backend, settings, rng, "sum", n))
        tasks.append(_stream_task(backend, settings, rng, "gelu", n))
    sizes = backend.stream_sizes(quick)[1::2]
    vector = [_vector_task(backend, settings, rng, test, n)      # quick: not the largest (seconds each)
              for n in ((sizes[:-1] or sizes) if quick else sizes) for test in VECTOR_SHAPES]
    tasks += vector
    if backend.extra_tasks is not None:
        tasks.extend(backend.extra_tasks(backend, quick, rng, settings))
    # a second round of the compute and vector-class tests, minutes later: run_suite keeps the faster round,
    # so a transient slow spell of a shared machine does not end up in the curves
    tasks += [Task(t.label + " (round 2)", t.run) for t in compute + vector if t.flops <= ROUND2_MAX_FLOPS]
    if only:
        wanted = set(only)
        tasks = [t for t in tasks if t.label.split(" ")[0] in wanted]
    return tasks


def _compute_tasks(backend: Backend, quick: bool, settings: Settings, rng) -> list[Task]:
    tasks = []
    for i, dtype in enumerate(backend.gemm_dtypes):
        for m, n, k in backend.gemm_shapes(quick):
            limit = backend.quick_secondary_max_flops
            if quick and i > 0 and limit is not None and (gemm_flops(m, n, k) > limit or not m == n == k):
                continue          # quick on a CPU: other dtypes get only the square GEMMs up to 1024
            tasks.append(_gemm_task(backend, settings, rng, dtype, m, n, k))
    main_dtype = "fp32" if "fp32" in backend.gemm_dtypes else next(iter(backend.gemm_dtypes))
    for b, m, n, k in backend.bmm_shapes(quick):
        tasks.append(_bmm_task(backend, settings, rng, main_dtype, b, m, n, k))
    for shape in backend.conv_shapes(quick):
        tasks.append(_conv_task(backend, settings, rng, main_dtype, *shape))
    return tasks


def best_of_rounds(measurements: list[Measurement]) -> list[Measurement]:
    """One measurement per (test, dtype, shape): the round with the smaller median, first order."""
    best: dict[tuple, Measurement] = {}
    for m in measurements:
        key = (m.test, m.dtype, m.shape)
        if key not in best or m.duration_s < best[key].duration_s:
            best[key] = m
    return list(best.values())


def run_suite(tasks: list[Task], progress: Callable[[str], None] | None = None,
              failed: list[str] | None = None) -> list[Measurement]:
    """Run the tasks in order, calling progress(label) after each; skipped tasks return None.
    Tests measured in two rounds keep their faster round (best_of_rounds).

    With a `failed` list, a task that raises (an out-of-memory shape, a kernel a device does
    not support) is recorded there as "label: error" and the run goes on, so one bad test
    cannot throw away a whole GPU session; Ctrl-C (not an Exception) still stops the run.
    Without it, or when every task failed, the first error is raised."""
    out = []
    first_error: Exception | None = None
    try:
        for task in tasks:
            try:
                m = task.run()
            except Exception as exc:  # noqa: BLE001 - any failure of one microbenchmark
                if failed is None:
                    raise
                first_error = first_error or exc
                failed.append(f"{task.label}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                m = None
            if m is not None:
                out.append(m)
            if progress is not None:
                progress(task.label)
    finally:
        _VECTORS.clear()
    if not out and first_error is not None:
        raise first_error
    return best_of_rounds(out)


def _operand(backend: Backend, rng, shape, dtype: str):
    if backend.operand is not None:
        return backend.operand(rng, shape, dtype)
    return random_array(backend.xp, rng, shape, backend.gemm_dtypes[dtype])


def measurement(test, op_class, dtype, shape, flops, nbytes, timing, gemm=None, batch=1) -> Measurement:
    m, n, k = gemm if gemm is not None else (None, None, None)
    return Measurement(test=test, op_class=op_class, dtype=dtype, shape=shape, flops=flops,
                       bytes=nbytes, duration_s=timing.median_s, min_s=timing.min_s,
                       max_s=timing.max_s, repeats=timing.repeats, inner=timing.inner,
                       gemm_m=m, gemm_n=n, gemm_k=k, batch=batch)


def _launch_task(backend: Backend, settings: Settings, rng) -> Task:
    def run():
        xp = backend.xp
        a = random_array(xp, rng, (1,), np.float32)
        out = xp.empty_like(a)
        timing = time_call(lambda i: xp.multiply(a, 1.0, out=out), timer=backend.timer,
                           settings=settings)
        return measurement("launch", "launch", "fp32", "n=1", 0.0, 8.0, timing)
    return Task("launch", run)


def _gemm_task(backend: Backend, settings: Settings, rng, dtype: str, m: int, n: int, k: int) -> Task:
    def run():
        xp, store = backend.xp, backend.gemm_dtypes[dtype]
        itemsize = np.dtype(store).itemsize
        per_set = (m * k + k * n + m * n) * itemsize
        if per_set > backend.limit_bytes:
            return None
        sets = rotation_sets(per_set, backend.cache_bytes, limit_bytes=backend.limit_bytes)
        bufs = [(_operand(backend, rng, (m, k), dtype), _operand(backend, rng, (k, n), dtype),
                 xp.empty((m, n), dtype=store)) for _ in range(sets)]
        timing = time_call(lambda i: backend.matmul(*bufs[i % sets], dtype), timer=backend.timer,
                           settings=settings)
        del bufs
        return measurement("gemm", "matmul", dtype, f"{m}x{n}x{k}", gemm_flops(m, n, k),
                           float(per_set), timing, gemm=(m, n, k))
    return Task(f"gemm {dtype} {m}x{n}x{k}", run, gemm_flops(m, n, k))


def _bmm_task(backend: Backend, settings: Settings, rng, dtype: str, b: int, m: int, n: int, k: int) -> Task:
    def run():
        xp, store = backend.xp, backend.gemm_dtypes[dtype]
        itemsize = np.dtype(store).itemsize
        per_set = b * (m * k + k * n + m * n) * itemsize
        sets = rotation_sets(per_set, backend.cache_bytes, limit_bytes=backend.limit_bytes)
        bufs = [(_operand(backend, rng, (b, m, k), dtype), _operand(backend, rng, (b, k, n), dtype),
                 xp.empty((b, m, n), dtype=store)) for _ in range(sets)]
        timing = time_call(lambda i: backend.matmul(*bufs[i % sets], dtype), timer=backend.timer,
                           settings=settings)
        return measurement("bmm", "matmul", dtype, f"{b}x{m}x{n}x{k}", b * gemm_flops(m, n, k),
                           float(per_set), timing, gemm=(m, n, k), batch=b)
    return Task(f"bmm {dtype} {b}x{m}x{n}x{k}", run)


def _conv_task(backend: Backend, settings: Settings, rng, dtype: str, n: int, cin: int, hw: int,
               cout: int, k: int, stride: int) -> Task:
    from simulator.calibrate.kernels import conv2d

    def run():
        xp, store = backend.xp, backend.gemm_dtypes[dtype]
        pad = (k - 1) // 2
        ho = (hw + 2 * pad - k) // stride + 1
        itemsize = np.dtype(store).itemsize
        x0 = _operand(backend, rng, (n, cin, hw, hw), dtype)
        w0 = _operand(backend, rng, (cin * k * k, cout), dtype)
        # inputs and weights rotate over sets beyond the last-level cache, as the GEMM tests'
        # operands do (each set a copy of one draw): a conv in a forward pass reads them cold
        sets = rotation_sets((x0.size + w0.size) * itemsize, backend.cache_bytes,
                             limit_bytes=backend.limit_bytes / 2, max_sets=VECTOR_MAX_SETS)
        xs = xp.empty((sets,) + x0.shape, dtype=x0.dtype)
        ws = xp.empty((sets,) + w0.shape, dtype=w0.dtype)
        xs[...] = x0
        ws[...] = w0
        timing = time_call(lambda i: conv2d(xp, xs[i % sets], ws[i % sets], stride, pad),
                           timer=backend.timer, settings=settings)
        nbytes = (x0.size + w0.size + n * cout * ho * ho) * itemsize
        del xs, ws
        return measurement("conv", "matmul", dtype, f"{n}x{cin}x{hw}x{hw}->{cout} k{k}s{stride}",
                           gemm_flops(n * ho * ho, cout, cin * k * k), float(nbytes), timing,
                           gemm=(n * ho * ho, cout, cin * k * k))
    return Task(f"conv {dtype} {n}x{cin}x{hw}x{hw}->{cout} k{k}", run)


# arrays read+written per element, whether the kernel is one pass over memory
_STREAM = {"copy": 2, "add": 3, "scale": 2, "triad": 3, "exp": 2, "sum": 1, "gelu": 2}
# FLOPs per element in the graph's convention (simulator.graph.ops.PER_ELEMENT_FLOPS), so a
# measured rate is in the units the cost model divides the graph's elementwise FLOPs by
_FLOPS_PER_ELEMENT = {"add": 1.0, "scale": 1.0, "triad": 2.0, "sum": 1.0,
                      "exp": float(PER_ELEMENT_FLOPS["exp"]), "gelu": float(PER_ELEMENT_FLOPS["gelu"])}


_VECTORS: dict = {}


def _vectors(backend: Backend, rng, n: int):
    """Operands a, b, c of n fp32 elements, shared by the tests of one size (one size kept)."""
    if n not in _VECTORS:
        _VECTORS.clear()
        xp = backend.xp
        a = random_array(xp, rng, (n,), np.float32)
        _VECTORS[n] = (a, random_array(xp, rng, (n,), np.float32), xp.empty_like(a))
    return _VECTORS[n]


def _stream_task(backend: Backend, settings: Settings, rng, test: str, n: int) -> Task:
    def run():
        xp = backend.xp
        nbytes = _STREAM[test] * n * 4.0
        if 3 * n * 4.0 > backend.limit_bytes:
            return None
        a, b, c = _vectors(backend, rng, n)
        kernels = {
            "copy": lambda i: xp.copyto(c, a),
            "add": lambda i: xp.add(a, b, out=c),
            "scale": lambda i: xp.multiply(a, 0.75, out=c),
            "triad": lambda i: backend.triad(c, b, a, 0.75),
            "exp": lambda i: xp.exp(a, out=c),
            "sum": lambda i: a.sum(),
            "gelu": lambda i: gelu(xp, a),
        }
        timing = time_call(kernels[test], timer=backend.timer, settings=settings)
        op_class = _stream_class(test, backend.triad_fused)
        flops = _FLOPS_PER_ELEMENT.get(test, 0.0) * n
        return measurement(test, op_class, "fp32", f"n={n}", flops, nbytes, timing)
    return Task(f"{test} fp32 n={n}", run)


def _stream_class(test: str, triad_fused: bool) -> str:
    if test in ("copy", "add", "scale") or (test == "triad" and triad_fused):
        return "stream"
    if test == "sum":
        return "reduction"
    return "elementwise"     # exp, and triad where it takes two passes (NumPy)


# vector-class tests: array shape for about n elements (typical DL layouts: a hidden size of
# 1024, attention rows of 256, VGG-style 2x2 pooling of 32x32 maps, ResNet's 7x7 global pool)
VECTOR_SHAPES = {
    "layernorm": lambda n: (max(1, n // 1024), min(n, 1024)),
    "softmax": lambda n: (max(1, n // 256), min(n, 256)),
    "maxpool": lambda n: (1, max(1, n // 1024), 32, 32),
    "gap": lambda n: (1, max(1, n // 49), 7, 7),
}
_VECTOR_CLASS = {"layernorm": "norm", "softmax": "softmax", "maxpool": "pooling", "gap": "pooling"}


def _vector_flops(test: str, shape: tuple) -> float:
    """FLOPs of one call in the graph's convention (simulator.graph.ops, graph/importers/cnn.py)."""
    elems = float(np.prod(shape))
    if test == "layernorm":
        return PER_ELEMENT_FLOPS["layernorm"] * elems
    if test == "softmax":
        return PER_ELEMENT_FLOPS["softmax"] * elems
    return elems          # maxpool: out * k * k = input elements (2x2, stride 2); gap: input elements


def _vector_task(backend: Backend, settings: Settings, rng, test: str, n: int) -> Task:
    """One vector-class op as the executor runs it, on inputs that rotate over sets with a
    footprint beyond the last-level cache (as the GEMM tests do): in a forward pass the
    big GEMMs between two such ops sweep the cache, so their inputs arrive from DRAM
    (in-pass times of these ops are 1.3-2.5x their hot-cache repeats on a CPU)."""
    shape = VECTOR_SHAPES[test](n)

    def run():
        xp = backend.xp
        elems = float(np.prod(shape))
        if 3 * elems * 4.0 > backend.limit_bytes:
            return None
        sets = rotation_sets(elems * 4.0, backend.cache_bytes, limit_bytes=backend.limit_bytes / 2,
                             max_sets=VECTOR_MAX_SETS)
        xs = xp.empty((sets,) + shape, dtype=np.float32)   # one allocation, a view per set, each
        xs[...] = random_array(xp, rng, shape, np.float32)  # set a copy (a broadcast, not a fresh draw)
        if test == "layernorm":
            gamma = random_array(xp, rng, shape[-1:], np.float32)
            beta = random_array(xp, rng, shape[-1:], np.float32)
            kernel = lambda i: layernorm(xp, xs[i % sets], gamma, beta)
            nbytes = 2 * elems * 4.0
        elif test == "softmax":
            out = xp.empty(shape, dtype=np.float32)
            kernel = lambda i: softmax(xp, xs[i % sets], out=out)
            nbytes = 2 * elems * 4.0
        elif test == "maxpool":
            kernel = lambda i: pool2d(xp, xs[i % sets], 2, 2, 0, "max")
            nbytes = 1.25 * elems * 4.0
        else:
            kernel = lambda i: xs[i % sets].mean(axis=(2, 3))
            nbytes = (elems + elems / 49.0) * 4.0
        timing = time_call(kernel, timer=backend.timer, settings=settings)
        del xs
        return measurement(test, _VECTOR_CLASS[test], "fp32", "x".join(map(str, shape)),
                           _vector_flops(test, shape), nbytes, timing)
    return Task(f"{test} fp32 {'x'.join(map(str, shape))}", run)
