#!/usr/bin/env bash
# GPU run B: zoo test on every model (fused convs) and a profile with per-op breakdown of a few.
set -u
out=${OUT:-/tmp/out}
all=resnet18,resnet50,resnet101,resnet152,resnext50_32x4d,wide_resnet50_2,densenet121,densenet161,densenet169,densenet201,mobilenet_v2,mobilenet_v3_large,mobilenet_v3_small,inception_v3,googlenet,squeezenet1_1,efficientnet_b0,mnasnet1_0,regnet_y_400mf,vgg16,alexnet
scripts/gpu/zoo-check.sh "$all" 64 'TestGPUZoo'
grep -E "^\s+--- (PASS|FAIL)" "$out/test.log" | sort | uniq -c | sort -rn | head -40
grep -E "exec_gpu_test.go:[0-9]+: [^Z]" "$out/test.log" | head -40
.devbin/z/cw tools profile -zoo /tmp/zoo -models resnet50,mobilenet_v2,densenet121,efficientnet_b0 -batches 1,16 -runs 300 -runs-b1 2000 -gaps-ms 1,20 -gap-runs 100 -rows "$out/cw-rows.jsonl" -out "$out/profile-b.json" 2>&1 | tee "$out/profile.log" | grep -v "gap  *[1-9]"
