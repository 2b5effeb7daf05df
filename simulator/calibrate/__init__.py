"""calibrate layer (DESIGN.md section 2): measure this device, fit curves, check the simulator.

suite.py      the microbenchmarks, written once for any array module (NumPy or CuPy)
harness.py    timing: warm-up, median of repeats, random non-zero data, rotating buffers
bench_numpy.py / bench_cupy.py   the two backends (CuPy imported lazily, only here)
backends.py   --backend auto|cupy|numpy
fingerprint.py  what a run measured (CPU/GPU identity, threads, caches, versions)
fit.py        measurements -> peaks, launch overhead, efficiency curves, residuals, flags
store.py      SQLite store of runs (atomic, WAL, schema-versioned)
export.py     calibrated profile overlaying the datasheet/template profile
run.py        calibrate end to end (library behind `capplan calibrate`)
cases.py, execute.py, kernels.py, validate.py   `capplan validate`: run graphs op by op, compare
"""
