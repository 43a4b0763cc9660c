#!/usr/bin/env bash
# Everything the GPU machine runs for issue 10, in one go, from the repository root, after the
# payload's device_setup.sh put MXNet (CUDA build), TVM and the wheels on PYTHONPATH (see the
# README's GPU section and ../shared/gpu/README.md). Anyone with a CUDA GPU and a CUDA build of
# MXNet can run it as is: `bash tools/gpu/run_all.sh [smoke|tests|bench|all]` (default all).
# Logs go to $OUT (default /tmp/bridge_cffi_gpu): the probe's report, the pytest runs (one per
# engine, in one file), the benchmark's table and JSON. Skips fail here (BRIDGE_CFFI_GPU_STRICT=1): the GPU must be seen.
set -uo pipefail
WHAT=${1:-all}
OUT=${OUT:-/tmp/bridge_cffi_gpu}
mkdir -p "$OUT"
export PATH=$PATH:/usr/local/cuda/bin
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} PYTHONUNBUFFERED=1 BRIDGE_CFFI_GPU_STRICT=1
PY=${PYTHON:-python3}
status=0
step() { echo "=== $* ($(date -u +%T))"; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader
nvcc --version | tail -1
$PY -c 'import sys, mxnet, tvm, tvm_ffi, numpy; print(sys.version.split()[0], "mxnet", mxnet.__version__, "tvm", tvm.__version__, "tvm_ffi", tvm_ffi.__version__, "numpy", numpy.__version__)'

step "build the extension"
$PY setup.py -q build_ext --inplace >/tmp/bridge_cffi_build.log 2>&1 \
  || { cat /tmp/bridge_cffi_build.log; exit 1; }

step "seed example on gpu(0)"
$PY examples/seed_example_gpu.py || status=1

step "probe"
$PY -m abi_checks >"$OUT/probe.txt" 2>&1
echo "probe exit code $?"
grep -E "^  (gpu|bridge run context|mxnet features) " "$OUT/probe.txt"
grep -A3 "bridge-async" "$OUT/probe.txt" | head -4
[[ $WHAT == smoke ]] && exit $status

if [[ $WHAT == all || $WHAT == tests ]]; then
  for engine in ThreadedEnginePerDevice ThreadedEngine NaiveEngine; do
    step "tests/gpu under $engine"
    BRIDGE_CFFI_GPU_ENGINES=$engine $PY -m pytest -p no:cacheprovider -q -rfEs tests/gpu \
      -k "(test_gpu_scenario and not two_gpu_workers) or gpu_fault" 2>&1 \
      | tee -a "$OUT/pytest.log" | tail -25
    [[ ${PIPESTATUS[0]} == 0 ]] || status=1
  done
  step "tests/gpu: two GPU workers, the probe, the benchmark's quick run"
  $PY -m pytest -p no:cacheprovider -q -rfEs tests/gpu -k "two_gpu_workers or probe or benchmark" \
    2>&1 | tee -a "$OUT/pytest.log" | tail -25
  [[ ${PIPESTATUS[0]} == 0 ]] || status=1
fi

if [[ $WHAT == all || $WHAT == tests ]]; then
  step "control: the ordering scenarios without the stream sync must fail"
  bash tools/gpu/control_without_sync.sh 2>&1 | tee "$OUT/control.log"
  [[ ${PIPESTATUS[0]} == 0 ]] || status=1
fi

if [[ $WHAT == all || $WHAT == bench ]]; then
  step "GPU benchmark"
  $PY -m benchmarks.gpu --json 2>&1 | tee "$OUT/bench.log" || status=1
  cp benchmarks/results/gpu-*.json "$OUT/" 2>/dev/null
  for variant in MXNET_GPU_WORKER_NTHREADS=1 MXNET_ENGINE_TYPE=ThreadedEngine \
                 MXNET_ENGINE_TYPE=NaiveEngine; do
    step "GPU benchmark with $variant"
    env "$variant" $PY -m benchmarks.gpu 2>&1 | tee -a "$OUT/bench.log" || status=1
  done
fi
step "done, status $status"
exit $status
