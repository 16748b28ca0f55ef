#!/usr/bin/env bash
# GPU run F: the whole zoo at batch 1 after the graph-level algorithm choice (run E): our exec
# time and PyTorch's (CUDA graph, eager) in the same call, ResNet-50 over 10,000 runs first (the
# most valuable row if the call is cut short), shufflenet_v2_x1_0 checked against PyTorch.
set -u
out=${OUT:-/tmp/out}; mkdir -p "$out" /tmp/zoo
m=resnet50,resnet18,resnet101,resnet152,resnext50_32x4d,wide_resnet50_2,densenet121,densenet161,densenet169,densenet201,mobilenet_v2,mobilenet_v3_large,mobilenet_v3_small,inception_v3,googlenet,squeezenet1_1,shufflenet_v2_x1_0,efficientnet_b0,mnasnet1_0,regnet_y_400mf,vgg16,alexnet
t0=$(date +%s)
PYTHONUNBUFFERED=1 python3 scripts/zoo/export.py --out /tmp/zoo --models resnet50,shufflenet_v2_x1_0 --references 8 --threads 16 >"$out/export.log" 2>&1 || tail -20 "$out/export.log"
echo "export r50 took $(( $(date +%s) - t0 )) s"
.devbin/f/cw tools profile -zoo /tmp/zoo -models resnet50 -batches 1 -runs-b1 10000 -gaps-ms "" -breakdown=false > "$out/r50-10k.log" 2>&1
grep -E "p99.99|GraphPick" "$out/r50-10k.log" | head -5
(cd runtime/cuda && MODEL_ZOO=/tmp/zoo ZOO_MODELS=shufflenet_v2_x1_0 ../../.devbin/f/cuda.test -test.v -test.timeout 2m -test.run TestGPUZoo > "$out/test.log" 2>&1); grep -E -- "--- (PASS|FAIL)|ZOO|err" "$out/test.log" | head -8
t0=$(date +%s)
PYTHONUNBUFFERED=1 python3 scripts/zoo/export.py --out /tmp/zoo --models "$m" --threads 16 >>"$out/export.log" 2>&1 || tail -20 "$out/export.log"
echo "export took $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
.devbin/f/cw tools profile -zoo /tmp/zoo -models "$m" -batches 1 -runs-b1 500 -warmup 30 -gaps-ms "" -breakdown=false -rows "$out/cw-rows.jsonl" -out "$out/profile-f.json" > "$out/profile.log" 2>&1
echo "profile took $(( $(date +%s) - t0 )) s"; grep -E "cannot|rror" "$out/profile.log" | head -5
(cd scripts/gpu/torch && PYTHONUNBUFFERED=1 python3 bench.py --models "$m" --batches 1 --precision fp32 --modes eager,graph --iters 200 --warmup 10 --device cuda --out "$out/torch-f.jsonl" > "$out/torch.log" 2>&1)
tail -2 "$out/torch.log"
python3 scripts/gpu/torch/compare.py "$out/torch-f.jsonl" --profile "$out/profile-f.json" --out "$out/compare.md" 2>&1 | grep -E "^\| [a-z].*\||Median|edian|rror" | head -40
rm -f "$out/export.log"
