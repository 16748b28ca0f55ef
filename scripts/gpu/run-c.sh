#!/usr/bin/env bash
# GPU run C: final code on the whole zoo: correctness (16 references), our profile at every
# batch, PyTorch eager and CUDA-graph at batches 1, 4, 16 in the same run, side-by-side table.
set -u
out=${OUT:-/tmp/out}
all=resnet18,resnet50,resnet101,resnet152,resnext50_32x4d,wide_resnet50_2,densenet121,densenet161,densenet169,densenet201,mobilenet_v2,mobilenet_v3_large,mobilenet_v3_small,inception_v3,googlenet,squeezenet1_1,efficientnet_b0,mnasnet1_0,regnet_y_400mf,vgg16,alexnet
scripts/gpu/zoo-check.sh "$all" 16 'TestGPUZoo' >/dev/null
grep -E "^\s+--- (PASS|FAIL)" "$out/test.log" | awk '{print $2, $3}' | sort | uniq -c | tr '\n' ';'; echo
grep -E "exec_gpu_test.go:[0-9]+: [^Z]" "$out/test.log" | head -20
t0=$(date +%s)
.devbin/z/cw tools profile -zoo /tmp/zoo -models "$all" -runs 100 -runs-b1 1000 -gaps-ms '' -rows "$out/cw-rows.jsonl" -out "$out/profile-c.json" > "$out/profile.log" 2>&1
echo "profile took $(( $(date +%s) - t0 )) s"; grep -E "breakdown|Error|cannot" "$out/profile.log" | cut -c1-400 | head -50
t0=$(date +%s)
cd scripts/gpu/torch && PYTHONUNBUFFERED=1 python3 bench.py --models "$all" --batches 1,4,16 --precision fp32 --modes eager,graph --iters 100 --warmup 10 --device cuda --out "$out/torch-c.jsonl" > "$out/torch.log" 2>&1
echo "torch took $(( $(date +%s) - t0 )) s"; tail -3 "$out/torch.log"
python3 compare.py "$out/torch-c.jsonl" --profile "$out/profile-c.json" --out "$out/compare.md"
