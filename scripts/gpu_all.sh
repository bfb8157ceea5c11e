#!/usr/bin/env bash
# Every GPU measurement of chapters 3b, 10, 12b and 13b that the stored results come from, in one run, most important
# first, within a time limit (for a lent GPU whose minutes are counted). Results go to $OUT (default: a new temporary
# folder); copy them into data/ by hand once you have read them. From the repository root, on a CUDA machine:
#
#     TOTAL_S=580 OUT=/tmp/gpu bash scripts/gpu_all.sh
#
# 1. tests/test_gpu.py (about 5 minutes), storing its results -> $OUT/gpu_test_last.json, $OUT/pytest.log
# 2. scripts/gpu_routed.py with what is left (float64 checks, then the 4K-1M sweep, 65,536 first) -> $OUT/routed_gpu.json
# 3. with what is still left: the variable-length workload -> $OUT/bench_mixed_gpu.json
# 4. what a new shape costs each SDPA backend (about 20 s) -> $OUT/sdpa_new_shape.json
# STEPS picks and orders the steps (default: "tests sweep mixed sdpa"); two calls can share the work, e.g.
# STEPS="tests sdpa mixed" then STEPS=sweep.
set -u
STEPS=${STEPS:-tests sweep mixed sdpa}
T0=$(date +%s); TOTAL=${TOTAL_S:-900}; OUT=${OUT:-$(mktemp -d)}; export OUT
left() { echo $(( TOTAL - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
for step in $STEPS; do
  L=$(left); echo "$step gets $L s"
  case $step in
  tests)
    MSA_GPU_TEST_OUT=$OUT/gpu_test_last.json timeout ${TEST_S:-330} python3 -m pytest tests/test_gpu.py -v -rs --durations=0 > $OUT/pytest.log 2>&1
    echo "pytest rc=$?" >> $OUT/pytest.log
    grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed|rc=" $OUT/pytest.log | tail -30 ;;
  sweep)
    [ "$L" -gt 90 ] || continue
    BUDGET_S=$(( L * ${SWEEP_SHARE:-67} / 100 )) PYTHONUNBUFFERED=1 timeout $(( L - 10 )) python3 scripts/gpu_routed.py > $OUT/sweep.log 2>&1
    echo "sweep rc=$?" >> $OUT/sweep.log
    grep -v "^{'what'" $OUT/sweep.log | grep -v "^W1\|^  \|^  File" | tail -45 ;;
  mixed)
    [ "$L" -gt 60 ] || continue
    timeout $(( L - 5 )) python3 -m msa_nb.bench --device cuda --lengths-mixed 32 --out $OUT/bench_mixed_gpu.json > $OUT/mixed.log 2>&1
    echo "mixed rc=$?" >> $OUT/mixed.log; tail -8 $OUT/mixed.log ;;
  sdpa)
    [ "$L" -gt 30 ] || continue
    PYTHONUNBUFFERED=1 timeout $(( L - 5 )) python3 scripts/gpu_sdpa_shapes.py > $OUT/sdpa.log 2>&1
    echo "sdpa rc=$?" >> $OUT/sdpa.log; tail -9 $OUT/sdpa.log ;;
  esac
done
echo "results in $OUT"
