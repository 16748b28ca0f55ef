#!/usr/bin/env bash
# On the GPU machine: export the zoo (PyTorch references) and run the cuda executor's zoo test.
# usage: scripts/gpu/zoo-check.sh MODELS REFS [test.run regexp]; writes $OUT/export.log, $OUT/test.log
set -u
models=$1; refs=${2:-16}; run=${3:-'TestGPUZoo|TestGPUPrepare'}
out=${OUT:-/tmp/out}; mkdir -p "$out" /tmp/zoo
t0=$(date +%s)
PYTHONUNBUFFERED=1 python3 scripts/zoo/export.py --out /tmp/zoo --models "$models" --references "$refs" --threads 16 >"$out/export.log" 2>&1 || { echo "export failed"; tail -30 "$out/export.log"; }
echo "export took $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv,noheader
cd runtime/cuda && MODEL_ZOO=/tmp/zoo ../../.devbin/z/cuda.test -test.v -test.timeout 9m -test.run "$run" 2>&1 | tee "$out/test.log" | grep -E "^(---|===|FAIL|ok|PASS)|ZOO|Error|error|panic" | head -150
