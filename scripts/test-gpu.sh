#!/usr/bin/env bash
# Builds the GPU test binaries (no cgo) into .devbin/ so they can run on the GPU machine,
# where there is no Go toolchain. There, from the repository root:
#   .devbin/run-gpu-tests.sh [-test.run REGEX]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .devbin
CGO_ENABLED=0 go build -o .devbin/cw ./cmd/cw
mod=$(go list -m)
runner=.devbin/run-gpu-tests.sh
{
  echo '#!/usr/bin/env bash'
  echo 'set -u; root=$(cd "$(dirname "$0")/.." && pwd); rc=0'
} > "$runner"
for p in $(go list ./runtime/... ./worker/... 2>/dev/null | grep -E '/runtime/cuda|/worker$' || true); do
  dir=${p#"$mod"/}
  name=$(echo "$dir" | tr / _)
  CGO_ENABLED=0 go test -c -tags invariants -o ".devbin/$name.test" "$p"
  [ -f ".devbin/$name.test" ] || continue
  echo "(cd \"\$root/$dir\" && \"\$root/.devbin/$name.test\" -test.v -test.timeout 9m \"\$@\") || rc=1" >> "$runner"
done
echo 'exit $rc' >> "$runner"
chmod +x "$runner"
ls .devbin
