#!/usr/bin/env bash
# GPU run E: graph-level convolution algorithm choice. ResNet-50 batch 1 prepared 3 times (a
# fresh process, so a fresh Prepare, each); zoo test on 6 models (8 references); PyTorch eager
# and CUDA-graph and our profile for the same models at batches 1 and 16, in the same call.
set -u
out=${OUT:-/tmp/out}; mkdir -p "$out" /tmp/zoo
m=resnet50,resnet18,densenet121,mobilenet_v2,inception_v3,efficientnet_b0
t0=$(date +%s)
PYTHONUNBUFFERED=1 python3 scripts/zoo/export.py --out /tmp/zoo --models "$m" --references 8 --threads 16 >"$out/export.log" 2>&1 || { echo "export failed"; tail -30 "$out/export.log"; }
echo "export took $(( $(date +%s) - t0 )) s"; nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv,noheader
for i in 1 2 3; do
  t0=$(date +%s%N)
  .devbin/z/cw tools profile -zoo /tmp/zoo -models resnet50 -batches 1 -runs-b1 3000 -gaps-ms "" -breakdown=false > "$out/r50-$i.log" 2>&1
  echo "r50 prepare $i ($(( ($(date +%s%N) - t0) / 1000000 )) ms process): $(grep -oE "prepared \[1\] in [^ ]+|AlgoSwaps:[0-9]+|GraphNs:[^G]*GraphPick:[^ ]*|p50 +[0-9.]+ µs +p99 +[0-9.]+ +p99.99 +[0-9.]+" "$out/r50-$i.log" | tr '\n' ' ')"
done
(cd runtime/cuda && MODEL_ZOO=/tmp/zoo ../../.devbin/z/cuda.test -test.v -test.timeout 3m -test.run TestGPUZoo > "$out/test.log" 2>&1)
grep -E "^\s+--- (PASS|FAIL)" "$out/test.log" | awk '{print $2}' | sort | uniq -c | tr '\n' ' '; echo
grep -E "exec_gpu_test.go:[0-9]+: [^Z]" "$out/test.log" | head -10
grep -oE "ZOO [a-z0-9_]+: refs [0-9]+, max err/scale b1 [^ ]+ b16 [^,]+|prepare [0-9.]+m?s" "$out/test.log" | paste -sd' ' | sed 's/ ZOO/\nZOO/g'
(cd scripts/gpu/torch && PYTHONUNBUFFERED=1 python3 bench.py --models "$m" --batches 1,16 --precision fp32 --modes eager,graph --iters 200 --warmup 10 --device cuda --out "$out/torch-e.jsonl" > "$out/torch.log" 2>&1)
tail -1 "$out/torch.log"
t0=$(date +%s)
.devbin/z/cw tools profile -zoo /tmp/zoo -models "$m" -batches 1,16 -runs 100 -runs-b1 1000 -gaps-ms "" -breakdown=false -rows "$out/cw-rows.jsonl" -out "$out/profile-e.json" > "$out/profile.log" 2>&1
echo "profile took $(( $(date +%s) - t0 )) s"; grep -E "cannot|rror" "$out/profile.log" | head -5
grep -oE "^[a-z0-9_]+: prepared .* in [^ ]+|GraphPick:[^ ]*" "$out/profile.log" | paste -sd' ' | sed 's/\] /]\n/g'
python3 scripts/gpu/torch/compare.py "$out/torch-e.jsonl" --profile "$out/profile-e.json" --out "$out/compare.md" | grep -E "^\| [a-z].*\||Median"
rm -f "$out/export.log"
