#!/usr/bin/env bash
# Runs every Fuzz* target in the module for $1 (default 20s) each.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-20s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
    echo "fuzz: $pkg $f ($t)"
    go test -tags invariants -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg"
  done
done
