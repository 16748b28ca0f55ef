#!/usr/bin/env bash
# Builds the GPU test binaries (no cgo) into .devbin/ so they can run on the GPU machine,
# where there is no Go toolchain. There, from the repository root:
#   .devbin/run-gpu-tests.sh [-test.run REGEX]           # tests (GPU tests skip without a GPU)
#   .devbin/run-gpu-tests.sh -test.run '^$' -test.bench . -test.benchtime 1x   # benchmarks
# With the device tool: run(command=".devbin/run-gpu-tests.sh", carry=[".devbin"]).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .devbin
CGO_ENABLED=0 go build -o .devbin/cw ./cmd/cw || echo "test-gpu: cw did not build; continuing with the test binaries" >&2
mod=$(go list -m)
runner=.devbin/run-gpu-tests.sh
{
  echo '#!/usr/bin/env bash'
  echo 'set -u; root=$(cd "$(dirname "$0")/.." && pwd); rc=0'
} > "$runner"
# Packages with GPU tests; a directory that does not exist (yet) is skipped.
for dir in runtime/cuda worker; do
  [ -d "$dir" ] || continue
  p="$mod/$dir"
  name=$(echo "$dir" | tr / _)
  rm -f ".devbin/$name.test"
  if ! CGO_ENABLED=0 go test -c -tags invariants -o ".devbin/$name.test" "./$dir"; then
    echo "test-gpu: ./$dir does not build; its tests are left out" >&2
    continue
  fi
  [ -f ".devbin/$name.test" ] || continue
  echo "(cd \"\$root/$dir\" && \"\$root/.devbin/$name.test\" -test.v -test.timeout 9m \"\$@\") || rc=1" >> "$runner"
done
echo 'exit $rc' >> "$runner"
chmod +x "$runner"
ls .devbin
