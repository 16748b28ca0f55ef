#!/usr/bin/env bash
# GPU run A: export the zoo with 64 references, the executor's zoo test on every model, and a
# first side-by-side on a few models.
set -u
out=${OUT:-/tmp/out}
all=resnet18,resnet50,resnet101,resnet152,resnext50_32x4d,wide_resnet50_2,densenet121,densenet161,densenet169,densenet201,mobilenet_v2,mobilenet_v3_large,mobilenet_v3_small,inception_v3,googlenet,squeezenet1_1,shufflenet_v2_x1_0,efficientnet_b0,mnasnet1_0,regnet_y_400mf,vgg16,alexnet,convnext_tiny,vit_b_16
scripts/gpu/zoo-check.sh "$all" 64 'TestGPUZoo'
grep -E "^\s+--- (PASS|FAIL)" "$out/test.log" | sort | uniq -c | sort -rn | head -40
grep -B1 -A3 -E "^\s+--- FAIL" "$out/test.log" | head -5
grep -E "exec_gpu_test.go:[0-9]+: [^Z]" "$out/test.log" | head -40
.devbin/z/cw tools profile -zoo /tmp/zoo -models resnet50,mobilenet_v2,densenet121 -batches 1,16 -runs 300 -runs-b1 3000 -gap-runs 100 -rows "$out/cw-rows.jsonl" -out "$out/profile-a.json" 2>&1 | tee "$out/profile.log"
cd scripts/gpu/torch && PYTHONUNBUFFERED=1 python3 bench.py --models resnet50,mobilenet_v2,densenet121 --batches 1,16 --precision fp32 --modes eager,graph --iters 300 --device cuda --out "$out/torch-a.jsonl" > "$out/torch.log" 2>&1; tail -5 "$out/torch.log"
python3 compare.py "$out/torch-a.jsonl" --profile "$out/profile-a.json"
