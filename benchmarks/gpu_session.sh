#!/usr/bin/env bash
# One-shot GPU session for capplan calibration (issue 5). Run from the repository root on a machine
# with a CUDA GPU and CuPy; writes everything under $OUT (default ./gpu-out).
#
# On the workplace's device machine (no network, no pydantic/simpy/platformdirs in its image):
#   1. here:   bash benchmarks/gpu_wheels.sh          (fills the git-ignored .whl/, ~3 MB)
#   2. device: run(command="OUT=$OUT bash benchmarks/gpu_session.sh", carry=[".whl"], timeout_s=600)
#
# Stages, each with its own time limit, cheapest and most informative first, so that a failure late
# in the run still leaves results (worst case about 9.5 min, expected 4-5 min on an H200):
#   tests/gpu (smoke)       -> pytest-gpu.txt
#   quick calibration       -> calibrate-quick.json, gpu-calibrated-quick.yaml, validate-quick.json
#   full calibration        -> calibrate.json, gpu-calibrated.yaml, validate.json, validate-min.json
#   ceilings table          -> ceilings.txt (best GEMM per dtype / HBM vs microbench_ceilings.csv)
#   calibrated vs datasheet -> simulate-*.json (one training scenario on each profile)
# session.log has one line per stage with its exit code; env.txt (in the tarball) what the machine is.
# Commit afterwards (as data, with its date and fingerprint inside): gpu-calibrated.yaml as
# hardware_profiles/calibrated/<device>-<date>.yaml, and quote ceilings.txt / validate.json in the note.
# Rehearsal without a GPU: BACKEND=numpy runs every stage on the CPU (checks the script itself).
set -u
BACKEND="${BACKEND:-cupy}"
DEST="${OUT:-$PWD/gpu-out}"
OUT="${WORK:-/tmp/capplan-gpu}"
mkdir -p "$DEST" "$OUT"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/session.log"; }
pack() {    # everything as one tarball plus the few files worth reading first
  tar -czf "$DEST/results.tar.gz.part" -C "$OUT" --exclude='*.sqlite-wal' --exclude='*.sqlite-shm' . 2>/dev/null     && mv -f "$DEST/results.tar.gz.part" "$DEST/results.tar.gz"
  for f in session.log gpu-calibrated.yaml ceilings.txt validate.json pytest-gpu.txt; do
    [ -s "$OUT/$f" ] && cp -f "$OUT/$f" "$DEST/$f"
  done
  return 0
}
stage() {   # stage NAME SECONDS OUTFILE CMD... : run with a limit, stdout to OUTFILE, stderr to NAME.err
  local name=$1 limit=$2 out=$3; shift 3
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$out" 2> "$OUT/$name.err"
  local rc=$?
  log "$name rc=$rc ($(( $(date +%s) - t0 )) s, limit $limit s)"
  [ $rc -ne 0 ] && tail -5 "$OUT/$name.err" | sed 's/^/    /' | tee -a "$OUT/session.log"
  pack
  return $rc
}

if compgen -G ".whl/*.whl" > /dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    > "$OUT/wheels.txt" 2>&1 && export PYTHONPATH=/tmp/site || log "wheel install failed (see wheels.txt)"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
CLI="$PY -m simulator.cli"

log "start in $PWD, $($PY --version 2>&1)"
{ date -u; uname -a; $PY -c 'import sys; print(sys.version)'; nvidia-smi -L 2>&1; } > "$OUT/env.txt" 2>&1
nvidia-smi >> "$OUT/env.txt" 2>&1 || true
for mod in numpy cupy pydantic pydantic_core typer rich networkx yaml platformdirs threadpoolctl simpy; do
  $PY -c "import $mod; print('$mod', getattr($mod, '__version__', '?'))" >> "$OUT/env.txt" 2>&1 \
    || log "MISSING python module: $mod"
done
if ! $PY -c 'import simulator.cli.app' 2>> "$OUT/env.txt"; then
  log "capplan does not import here; stopping (see env.txt)"; tail -3 "$OUT/env.txt"; pack; exit 2
fi
if [ "$BACKEND" = cupy ] && ! $PY -c 'import cupy, sys; sys.exit(0 if cupy.cuda.runtime.getDeviceCount() > 0 else 1)' 2>> "$OUT/env.txt"; then
  log "CuPy with a CUDA device is not usable here; stopping (see env.txt)"; tail -3 "$OUT/env.txt"; pack; exit 2
fi

stage pytest-gpu 90 "$OUT/pytest-gpu.txt" $PY -m pytest -q -p no:cacheprovider tests/gpu

stage calibrate-quick 100 "$OUT/calibrate-quick.json" $CLI calibrate --backend $BACKEND --quick \
  --store "$OUT/quick.sqlite" --export "$OUT/gpu-calibrated-quick.yaml" --json
stage validate-quick 45 "$OUT/validate-quick.json" $CLI validate --backend $BACKEND --store "$OUT/quick.sqlite" --json

stage calibrate 240 "$OUT/calibrate.json" $CLI calibrate --backend $BACKEND \
  --store "$OUT/calibration.sqlite" --export "$OUT/gpu-calibrated.yaml" --json
stage validate 50 "$OUT/validate.json" $CLI validate --backend $BACKEND --store "$OUT/calibration.sqlite" --json
stage validate-min 40 "$OUT/validate-min.json" $CLI validate --backend $BACKEND --store "$OUT/calibration.sqlite" \
  --statistic min --json

BEST=calibrate.json; [ -s "$OUT/$BEST" ] || BEST=calibrate-quick.json
if [ -s "$OUT/$BEST" ]; then
  CEIL="${CEILINGS:-shared/reference/microbench_ceilings.csv}"
  [ -f "$CEIL" ] || CEIL=tests/validation/data/microbench_ceilings.csv
  stage ceilings 20 "$OUT/ceilings.txt" $PY benchmarks/bench_calibrate.py --json "$OUT/$BEST" --ceilings "$CEIL"
fi

PROFILE="$OUT/gpu-calibrated.yaml"; [ -s "$PROFILE" ] || PROFILE="$OUT/gpu-calibrated-quick.yaml"
if [ -s "$PROFILE" ]; then
  SCEN=scenarios/llama3-70b-pretrain.yaml
  stage simulate-datasheet 30 "$OUT/simulate-datasheet.json" $CLI simulate "$SCEN" \
    --set cluster.hardware=h200-sxm-141gb --json
  stage simulate-calibrated 30 "$OUT/simulate-calibrated.json" $CLI simulate "$SCEN" \
    --set "cluster.hardware=$PROFILE" --json
fi
log "done; results in $DEST"
pack
cat "$OUT/session.log"; [ -s "$OUT/ceilings.txt" ] && cat "$OUT/ceilings.txt"
[ -s "$OUT/validate.json" ] && $PY -c "import json,sys; d=json.load(open(sys.argv[1])); [print(c['name'], round(c['error'],3)) for c in d['cases']]; print('mean_abs_error', d['mean_abs_error'])" "$OUT/validate.json"
exit 0
