#!/usr/bin/env bash
# Issue 11 (the zoo served end to end on one H100) and issue 13 (one worker, two GPUs): the
# experiment driver that runs ON the GPU machine, one part per device call (each < 10 min).
#
#   scripts/gpu/serve/run.sh a      # 1 predictability, 2 §6.2 ResNet-50 ramp (+ PyTorch), faults
#   scripts/gpu/serve/run.sh b      # 3 Azure-like mixed zoo, 4 tight SLOs, 5 PyTorch on 3's trace
#   scripts/gpu/serve/run.sh c      # 4 again at the original's per-GPU load (100 r/s)
#   scripts/gpu/serve/run.sh multi  # issue 13: 1 vs 2 GPUs, per-GPU tails, concurrent LOADs
#   DRY=1 scripts/gpu/serve/run.sh a   # here, no GPU: cpu backend, squeezenet only, tiny sizes
#
# Build first, here: CGO_ENABLED=0 go build -o .devbin/serve/cw ./cmd/cw; carry [".devbin/serve"].
# Results: $OUT/<part>-<experiment>.tgz (logs, summaries, plots) and $OUT/<part>-summary.md.
# Every step has its own time limit, so a part always ends and packs what it has.
set -uo pipefail
part=${1:?usage: run.sh a|b|multi}
cd "$(dirname "$0")/../../.."
CW=${CW:-$PWD/.devbin/serve/cw}
OUT=${OUT:-$PWD/out/serve}
RES=${RES:-/tmp/cw-serve}        # working results; packed into $OUT
ZOO=${ZOO:-/tmp/cw-zoo}
DRY=${DRY:-0}
mkdir -p "$OUT" "$RES" "$ZOO"
SUM="$OUT/$part-summary.md"
: > "$SUM"
say() { echo "$*" | tee -a "$SUM"; }
t0=$(date +%s)
el() { echo $(( $(date +%s) - t0 )); }

if [ "$DRY" = 1 ]; then
  BACKEND=cpu PY=${PY:-/usr/bin/python3} TDEV=cpu
  K=${K:-100}            # instance counts are divided by K
  DUR=3 SLOW=20          # durations (s); SLOs multiplied by SLOW (the cpu backend is ~100x slower)
  RATE_DIV=50
  CPUS="" SPIN=0
  BATCHES=1,2,4          # the cpu backend's 8 MiB IO slot holds squeezenet up to batch 4
else
  BACKEND=cuda PY=${PY:-python3} TDEV=cuda
  K=1 DUR=0 SLOW=1 RATE_DIV=1
  CPUS=${CPUS:-2-9} SPIN=50us
  BATCHES=1,2,4,8,16
fi
# The worker's region per GPU: 74,000 MiB of the H100's 81,559 leaves room for what Prepare
# takes outside it (graphs, cuDNN); the weights cache is the region less the IO and workspace
# arenas (512 MiB each): 72,976 MiB, the PyTorch baseline's weights budget too (like for like).
REGION=${REGION:-74000}; [ "$DRY" = 1 ] && REGION=1024
TORCH_MEM=$(( REGION - 1024 ))
n() { local v=$(( $1 / K )); [ $v -lt 1 ] && v=1; echo $v; }       # instance count
d() { if [ "$DUR" -gt 0 ]; then echo "${DUR}s"; else echo "$1"; fi; } # duration
r() { echo $(( $1 / RATE_DIV > 0 ? $1 / RATE_DIV : 1 )); }            # rate
slo() { echo "$(( $1 * SLOW ))ms"; }                                   # SLO in ms

say "# clockwork serve experiments, part $part ($(date -u +%FT%TZ), backend $BACKEND, DRY=$DRY)"
say ""
if [ "$BACKEND" = cuda ]; then
  nvidia-smi --query-gpu=index,name,memory.total,clocks.sm,power.draw --format=csv,noheader 2>&1 | sed 's/^/    /' | tee -a "$SUM"
  timeout 60 "$CW" tools cuda 2>&1 | sed 's/^/    /' | tee -a "$SUM"
fi
PROFILE=()
[ -f runtime/sim/h100-zoo.json ] && [ "$BACKEND" = cuda ] && PROFILE=(-profile runtime/sim/h100-zoo.json)
if [ ${#PROFILE[@]} -gt 0 ]; then say "controller estimates seeded from ${PROFILE[1]}"; else say "controller estimates: defaults until measured (no runtime/sim/h100-zoo.json)"; fi

# zoo exports the torchvision models named in $1 (comma-separated) unless present. DRY: one
# squeezenet1_1 and a directory per name holding a link to it (instances of one file).
zoo() {
  local want=() m
  IFS=, read -ra want <<< "$1"
  if [ "$DRY" = 1 ]; then
    [ -f "$ZOO/squeezenet1_1/model.onnx" ] || timeout 300 "$CW" tools zoo -out "$ZOO" -models squeezenet1_1 -python "$PY" -check=false >/dev/null
    for m in "${want[@]}"; do
      [ "$m" = squeezenet1_1 ] && continue
      mkdir -p "$ZOO/$m" && ln -sf ../squeezenet1_1/model.onnx "$ZOO/$m/model.onnx"
    done
    return
  fi
  local miss=()
  for m in "${want[@]}"; do [ -f "$ZOO/$m/model.onnx" ] || miss+=("$m"); done
  [ ${#miss[@]} -eq 0 ] && return
  local s=$(date +%s)
  timeout 400 "$CW" tools zoo -out "$ZOO" -models "$(IFS=,; echo "${miss[*]}")" -python "$PY" -check=false > "$RES/zoo-export.log" 2>&1 \
    || { say "zoo export failed:"; tail -5 "$RES/zoo-export.log" | tee -a "$SUM"; }
  say "exported ${miss[*]} in $(( $(date +%s) - s )) s"
}

# serve NAME LIMIT_S ARGS...: cw serve on $BACKEND into $RES/NAME, then the action summary.
serve() {
  local name=$1 lim=$2; shift 2
  local dir="$RES/$part-$name"
  rm -rf "$dir"; mkdir -p "$dir"
  local cpus=(); [ -n "$CPUS" ] && cpus=(-cpus "$CPUS")
  say ""
  say "## $name (t=$(el) s)"
  say '```'
  say "cw serve -backend $BACKEND -model-root ZOO ${cpus[*]} -spin $SPIN -batches $BATCHES -region-mib $REGION -listen 127.0.0.1:0 -progress off -worker-telemetry ${PROFILE[*]} -out DIR $*"
  say '```'
  local s=$(date +%s)
  timeout -s INT -k 20 "$lim" "$CW" serve -backend "$BACKEND" -model-root "$ZOO" "${cpus[@]}" -spin "$SPIN" -batches "$BATCHES" -region-mib "$REGION" -listen 127.0.0.1:0 \
    -progress off -worker-telemetry "${PROFILE[@]}" -out "$dir" "$@" > "$dir/stdout.txt" 2> "$dir/stderr.txt"
  local rc=$?
  LAST_DIR=$dir
  say "exit $rc after $(( $(date +%s) - s )) s"
  grep -v '^  reports in' "$dir/stdout.txt" | tee -a "$SUM" >/dev/null
  sed 's/^/    /' "$dir/stdout.txt" | grep -v 'reports in' || true
  grep -iE 'cannot|fail|error|panic|serving' "$dir/stderr.txt" | head -8 | sed 's/^/    stderr: /' | tee -a "$SUM"
  if [ -s "$dir/actions.tsv" ]; then
    "$CW" tools actions -log "$dir/actions.tsv" -models "$dir/models.tsv" -skip "${SKIP:-2s}" -json "$dir/actions.json" > "$dir/actions.md" 2>&1
    say ""
    cat "$dir/actions.md" >> "$SUM"
    tail -4 "$dir/actions.md"
  fi
}

# pack NAME: $RES/$part-NAME* into $OUT/$part-NAME.tgz (no SVGs: the PNGs say the same).
pack() {
  (cd "$RES" && tar czf "$OUT/$part-$1.tgz" --exclude='*.svg' $part-$1*) 2>/dev/null
  ls -la "$OUT/$part-$1.tgz" | awk '{print "packed", $NF, $5, "bytes"}'
}

case $part in
a)
  zoo resnet50,squeezenet1_1,wide_resnet50_2
  # 1. Predictability: one ResNet-50, steady Poisson; mostly batch 1 at 200 r/s, batched at 1,500.
  SKIP=3s serve exp1-r50-200rps 90 -models resnet50/model.onnx:1 -synth=false -workload poisson -rate "$(r 200)" -duration "$(d 30s)" -slo "$(slo 100)"
  if ! [ -s "$LAST_DIR/summary.json" ]; then  # plumbing broke: stop here and keep the device time
    say "first serve failed; stopping part a"; tail -20 "$LAST_DIR/stderr.txt" | tee -a "$SUM"; pack exp1; exit 1
  fi
  SKIP=3s serve exp1-r50-1500rps 70 -models resnet50/model.onnx:1 -synth=false -workload poisson -rate "$(r 1500)" -duration "$(d 15s)" -slo "$(slo 100)"
  pack exp1
  # 2. §6.2: 1,600 ResNet-50 instances (≈ 650 fit in 80 GB), a minor one at 200 r/s, 1,000 r/s over
  #    the active majors, one more every 12.5 ms after 5 s (the original: 1 per s); synthesised
  #    inputs as the original; one host copy of the weights (1,600 × 102 MB > host memory).
  N62=$(n 1601)
  serve exp2-ramp 150 -models "resnet50/model.onnx:$N62" -share-host-weights -register-parallel 16 -synth=true -workload ramp \
    -rate "$(r 1000)" -minor-rate "$(r 200)" -lead-in 5s -step 12500us -duration "$(d 27s)" -slo "$(slo 100)"
  # The same arrivals to the plain PyTorch server (fp32, as our executor; GPU weights budget as
  # large as our cache: 80 GB minus arenas ≈ 76,000 MiB).
  "$CW" tools trace -workload ramp -models "resnet50/model.onnx:$N62" -rate "$(r 1000)" -minor-rate "$(r 200)" -lead-in 5s -step 12500us \
    -duration "$(d 27s)" -slo "$(slo 100)" -out "$RES/$part-exp2-ramp/trace.tsv" 2>/dev/null
  say ""; say "## exp2 PyTorch baseline (t=$(el) s)"
  PYTHONUNBUFFERED=1 timeout -k 10 120 "$PY" scripts/gpu/torch/baseline_server.py --trace "$RES/$part-exp2-ramp/trace.tsv" --out "$RES/$part-exp2-torch" \
    --device "$TDEV" --precision fp32 --host-copies per-arch --gpu-mem-mib "$TORCH_MEM" --drop-late --deadline-s 60 > "$RES/$part-exp2-torch.log" 2>&1
  say "exit $?"; tail -25 "$RES/$part-exp2-torch.log" | tee -a "$SUM" >/dev/null
  grep -E '"(goodput_rps|slo_attainment|cold_loads|throughput_rps)"' "$RES/$part-exp2-torch/summary.json" 2>/dev/null | tee -a "$SUM"
  pack exp2
  # Faults: a file that is not ONNX, a model larger than the cache (1,280 MiB region: 256 MiB of
  # cache = 16 pages; wide_resnet50_2 needs ~18), four ResNet-50 (7 pages each) and two
  # SqueezeNet (1 page) churning through a cache that holds two ResNet-50.
  printf 'not an onnx file' > "$ZOO/bad.onnx"
  serve faults-serve 90 -models resnet50/model.onnx:4,squeezenet1_1/model.onnx:2,wide_resnet50_2/model.onnx:1,bad.onnx:1 -region-mib 1280 \
    -synth=false -workload poisson -rate "$(r 200)" -duration "$(d 20s)" -slo "$(slo 100)"
  grep -v $'\tok$' "$RES/$part-faults-serve/models.tsv" | tee -a "$SUM"
  # A worker killed mid-run: two worker processes (each 8 GiB of GPU 0), one controller; kill -9
  # the second halfway. Requests in flight on it must be answered, the first keeps serving.
  fd="$RES/$part-faults-kill"; rm -rf "$fd"; mkdir -p "$fd"
  say ""; say "## faults-kill (t=$(el) s)"
  wflags=(-backend "$BACKEND" -model-root "$ZOO" -gpus 1 -spin "$SPIN" -batches "$BATCHES" -region-mib 8192)
  [ "$BACKEND" = cpu ] && wflags=(-backend cpu -model-root "$ZOO" -gpus 1 -spin 0 -batches "$BATCHES")
  "$CW" worker "${wflags[@]}" -addr 127.0.0.1:12351 > "$fd/worker1.log" 2>&1 & w1=$!
  "$CW" worker "${wflags[@]}" -addr 127.0.0.1:12352 > "$fd/worker2.log" 2>&1 & w2=$!
  sleep 3
  "$CW" controller -workers 127.0.0.1:12351,127.0.0.1:12352 -listen 127.0.0.1:12350 -log-dir "$fd" \
    -models r0=resnet50/model.onnx,r1=resnet50/model.onnx,s0=squeezenet1_1/model.onnx,s1=squeezenet1_1/model.onnx > "$fd/controller.log" 2>&1 & c=$!
  for _ in $(seq 120); do grep -q "worker joined" "$fd/controller.log" 2>/dev/null && [ "$(grep -c 'worker joined' "$fd/controller.log")" -ge 2 ] && break; sleep 1; done
  kdur=$(d 20s); kdur=${kdur%s}
  ( sleep $(( kdur / 2 )); kill -9 $w2; echo "killed worker 2 (pid $w2) at $(date +%T.%N)" >> "$fd/kill.txt" ) &
  timeout 90 "$CW" bench -addr 127.0.0.1:12350 -workload poisson -rate "$(r 200)" -duration "${kdur}s" -slo "$(slo 100)" -progress off -out "$fd" > "$fd/stdout.txt" 2>&1
  say "bench exit $?; $(cat "$fd/kill.txt" 2>/dev/null)"
  grep -v 'reports in' "$fd/stdout.txt" | tee -a "$SUM"
  kill -INT $c $w1 2>/dev/null; sleep 2; kill -9 $c $w1 2>/dev/null; wait 2>/dev/null
  grep -iE 'lost|down|error' "$fd/controller.log" | head -5 | sed 's/^/    controller: /' | tee -a "$SUM"
  # Statuses of requests answered after the kill, from the client's log (column: status).
  awk -F'\t' -v k=$(( kdur / 2 )) 'NR==1{for(i=1;i<=NF;i++)h[$i]=i; next} {t=$h["sched_ns"]/1e9; s=(t<k)?"before":"after"; c[s" "$h["status"]]++} END{for(x in c) print "    requests " x ": " c[x]}' \
    "$fd/requests.tsv" 2>/dev/null | sort | tee -a "$SUM"
  pack faults
  ;;
b)
  MODELS=resnet50,resnet18,densenet121,mobilenet_v2,squeezenet1_1
  zoo $MODELS
  # 3. Azure-like, mixed zoo, 1,600 instances (≈ 97 GB of weights at 16 MiB pages > the cache:
  #    cold starts), 100 ms SLO, 400 r/s (fp32 batch-1 exec: ResNet-50 2.9 ms, DenseNet-121
  #    5.9 ms, MobileNet-v2 1.0 ms on the H100: the mix at batch 1 is ≈ 2.4 ms a request, so
  #    ≈ 1,000 r/s would need 2.4 GPUs), 40 trace minutes compressed into 40 s.
  MIX="resnet50/model.onnx:$(n 600),resnet18/model.onnx:$(n 300),densenet121/model.onnx:$(n 200),mobilenet_v2/model.onnx:$(n 300),squeezenet1_1/model.onnx:$(n 200)"
  AZ=(-workload azure -rate "$(r 400)" -duration "$(d 40s)" -compression 60 -slo "$(slo 100)" -seed 1)
  serve exp3-azure 200 -models "$MIX" -share-host-weights -register-parallel 16 -synth=false "${AZ[@]}"
  "$CW" tools trace "${AZ[@]}" -models "$MIX" -out "$RES/$part-exp3-azure/trace.tsv" 2>/dev/null
  pack exp3
  # 4. Tight SLOs (§6.3): 12 ResNet-50, 600 r/s Poisson, the SLO from 3 ms (fp32 batch-1 exec on
  #    the H100: 2.94 ms) ×1.5 every 3 s up to 100× (the original: 2.9 ms, every 30 s).
  serve exp4-slo 90 -models resnet50/model.onnx:12 -synth=false -workload sweep -rate "$(r 600)" -duration 45s \
    -slo-start "$(( 3000 * SLOW ))us" -slo-factor 1.5 -slo-interval "$(d 3s)" -slo-end "$(slo 300)"
  # Goodput per SLO step, from the client's log (slo_ns column).
  awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i; next} {s=$h["slo_ns"]; n[s]++; if($h["within_slo"]=="true") g[s]++} END{for(s in n) printf "    slo %.2f ms: %d requests, %.2f%% within\n", s/1e6, n[s], 100*g[s]/n[s]}' \
    "$RES/$part-exp4-slo/requests.tsv" 2>/dev/null | sort -k2,2g | tee -a "$SUM"
  pack exp4
  # 5. The same trace as 3 against the plain PyTorch server: batch 1 FIFO, eager fp32, weights
  #    moved on demand within a budget as large as our cache.
  say ""; say "## exp5 PyTorch baseline on exp3's trace (t=$(el) s)"
  PYTHONUNBUFFERED=1 timeout -k 10 200 "$PY" scripts/gpu/torch/baseline_server.py --trace "$RES/$part-exp3-azure/trace.tsv" --out "$RES/$part-exp5-torch" \
    --device "$TDEV" --precision fp32 --host-copies per-arch --gpu-mem-mib "$TORCH_MEM" --drop-late --deadline-s 90 > "$RES/$part-exp5-torch.log" 2>&1
  say "exit $?"
  tail -25 "$RES/$part-exp5-torch.log" >> "$SUM"
  grep -E '"(goodput_rps|slo_attainment|cold_loads|throughput_rps|requests|late|dropped)"' "$RES/$part-exp5-torch/summary.json" 2>/dev/null | tee -a "$SUM"
  pack exp5
  ;;
c)
  zoo resnet50
  # 4 again at the original's per-GPU load: 600 r/s over 6 GPUs = 100 r/s on one.
  serve exp4-slo-100rps 90 -models resnet50/model.onnx:12 -synth=false -workload sweep -rate "$(r 100)" -duration 45s \
    -slo-start "$(( 3000 * SLOW ))us" -slo-factor 1.5 -slo-interval "$(d 3s)" -slo-end "$(slo 300)"
  awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)h[$i]=i; next} {s=$h["slo_ns"]; n[s]++; if($h["within_slo"]=="true") g[s]++} END{for(s in n) printf "    slo %.2f ms: %d requests, %.2f%% within\n", s/1e6, n[s], 100*g[s]/n[s]}' \
    "$RES/$part-exp4-slo-100rps/requests.tsv" 2>/dev/null | sort -k2,2g | tee -a "$SUM"
  pack exp4
  ;;
multi)
  zoo resnet50
  REGION=0  # the H200s: 16 ResNet-50 need no care
  say ""; say "## LOAD bandwidth, each GPU alone then all at once (t=$(el) s)"
  gp=0; [ "$BACKEND" = cpu ] && gp=2
  timeout 120 "$CW" tools h2d -backend "$BACKEND" -gpus $gp -model-mib 112 -loads "$(( 200 / K > 5 ? 200 / K : 5 ))" 2>&1 | tee -a "$SUM"
  # Saturating closed loop, 16 ResNet-50 (all resident), synthesised inputs: 1 GPU, then 2, in one call.
  NM=16; [ "$DRY" = 1 ] && NM=2
  for g in 1 2; do
    SKIP=3s serve "multi-${g}gpu" 90 -gpus $g -models "resnet50/model.onnx:$NM" -synth=true \
      -workload closed -clients 8 -duration "$(d 25s)" -slo "$(slo 100)"
  done
  for g in 1 2; do
    grep -E '"(throughput_rps|goodput_rps)"' "$RES/$part-multi-${g}gpu/summary.json" | sed "s/^/    ${g} GPU: /" | tee -a "$SUM"
  done
  pack multi
  ;;
*) echo "unknown part $part: want a, b, c or multi" >&2; exit 2 ;;
esac
say ""; say "part $part done in $(el) s"
ls -la "$OUT"
