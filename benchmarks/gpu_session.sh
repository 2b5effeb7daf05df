#!/usr/bin/env bash
# One-shot GPU session for capplan calibration (issue 5): run from the repository root on a
# machine with a CUDA GPU and CuPy. Writes everything under $OUT (default ./gpu-out):
#   env.txt, nvidia-smi.txt    what the machine is
#   calibrate.json, *.yaml      full CuPy calibration + the exported calibrated profile
#   validate.json               capplan validate --backend cupy (median and min)
#   ceilings.txt                measured best GEMM / HBM vs the published ceilings
#   pytest-gpu.txt              tests/gpu
#   calibration.sqlite          the store (commit the YAML, not the store)
# Each step has its own time limit so one slow step cannot eat the session (about 8 min in all).
# Afterwards commit gpu-calibrated.yaml (it carries calibration.date and the fingerprint) as data,
# e.g. benchmarks/results/<device>-calibrated.yaml, with ceilings.txt and validate.json beside it.
# Run on the device machine as:  OUT=$OUT bash benchmarks/gpu_session.sh
set -u
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
STORE="$OUT/calibration.sqlite"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/session.log"; }

log "start in $PWD, python: $($PY --version 2>&1)"
{ date -u; uname -a; $PY -c 'import sys; print(sys.version)'; nvidia-smi -L 2>&1; } > "$OUT/env.txt" 2>&1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
for mod in numpy cupy pydantic typer rich networkx yaml platformdirs threadpoolctl simpy; do
  $PY -c "import $mod; print('$mod', getattr($mod, '__version__', '?'))" >> "$OUT/env.txt" 2>&1 \
    || log "MISSING python module: $mod"
done
if ! $PY -c 'import cupy, sys; sys.exit(0 if cupy.cuda.runtime.getDeviceCount() > 0 else 1)' 2>>"$OUT/env.txt"; then
  log "CuPy with a CUDA device is not usable here; stopping (see env.txt)"
  exit 2
fi

log "calibrate --backend cupy (full sweep)"
timeout 300 $PY -m simulator.cli calibrate --backend cupy --store "$STORE" \
  --export "$OUT/gpu-calibrated.yaml" --json > "$OUT/calibrate.json" 2> "$OUT/calibrate.err"
log "calibrate rc=$?"

log "validate --backend cupy"
timeout 120 $PY -m simulator.cli validate --backend cupy --store "$STORE" --json > "$OUT/validate.json" 2> "$OUT/validate.err"
log "validate rc=$?"
timeout 120 $PY -m simulator.cli validate --backend cupy --store "$STORE" --statistic min --json \
  > "$OUT/validate-min.json" 2>> "$OUT/validate.err"
log "validate --statistic min rc=$?"

if [ -s "$OUT/calibrate.json" ]; then
  $PY benchmarks/bench_calibrate.py --json "$OUT/calibrate.json" \
    --ceilings "${CEILINGS:-../shared/reference/microbench_ceilings.csv}" > "$OUT/ceilings.txt" 2>&1
  log "ceilings rc=$?"
fi

log "tests/gpu"
timeout 120 $PY -m pytest -q tests/gpu > "$OUT/pytest-gpu.txt" 2>&1
log "pytest rc=$?"
log "done; results in $OUT"
