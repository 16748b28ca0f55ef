#!/usr/bin/env bash
# GPU run D (last): zoo test at batch 1 on the final code (8 references), our profile of the
# whole zoo with idle gaps, ResNet-50 batch 1 over 10,000 runs, PyTorch batch 1 in the same run.
set -u
out=${OUT:-/tmp/out}
all=resnet18,resnet50,resnet101,resnet152,resnext50_32x4d,wide_resnet50_2,densenet121,densenet161,densenet169,densenet201,mobilenet_v2,mobilenet_v3_large,mobilenet_v3_small,inception_v3,googlenet,squeezenet1_1,efficientnet_b0,mnasnet1_0,regnet_y_400mf,vgg16,alexnet
scripts/gpu/zoo-check.sh "$all" 8 'TestGPUZoo' >/dev/null
grep -E "^\s+--- (PASS|FAIL)" "$out/test.log" | awk '{print $2}' | sort | uniq -c | tr '\n' ' '; echo
grep -E "exec_gpu_test.go:[0-9]+: [^Z]" "$out/test.log" | head -10
t0=$(date +%s)
.devbin/z/cw tools profile -zoo /tmp/zoo -models resnet50 -batches 1 -runs-b1 10000 -gaps-ms 1,5,20 -gap-runs 300 -breakdown=false -rows "$out/r50-rows.jsonl" > "$out/r50.log" 2>&1
grep -E "b1 " "$out/r50.log"
.devbin/z/cw tools profile -zoo /tmp/zoo -models "$all" -runs 60 -runs-b1 600 -gaps-ms "" -breakdown=false -rows "$out/cw-rows.jsonl" -out "$out/profile-d.json" > "$out/profile.log" 2>&1
echo "profile took $(( $(date +%s) - t0 )) s"; grep -E "cannot|rror" "$out/profile.log" | head
cd scripts/gpu/torch && PYTHONUNBUFFERED=1 python3 bench.py --models "$all" --batches 1 --precision fp32 --modes eager,graph --iters 100 --warmup 10 --device cuda --out "$out/torch-d.jsonl" > "$out/torch.log" 2>&1
PYTHONUNBUFFERED=1 python3 bench.py --models resnet50 --batches 1 --precision fp32 --modes graph --iters 10000 --gap-iters 300 --gaps-ms 0,1,5,20 --device cuda --out "$out/torch-r50.jsonl" >> "$out/torch.log" 2>&1
cat "$out/torch-r50.jsonl" >> "$out/torch-d.jsonl"; rm "$out/torch-r50.jsonl"; cat "$out/r50-rows.jsonl" >> "$out/cw-rows.jsonl"; rm "$out/r50-rows.jsonl"
grep -E "resnet50" "$out/torch.log" | head
python3 compare.py "$out/torch-d.jsonl" --profile "$out/profile-d.json" --out "$out/compare.md" | grep -E "^\| [a-z].*\| 1 \||Median"
rm -f "$out/export.log"
