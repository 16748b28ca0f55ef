#!/usr/bin/env bash
# Installs the Debian packages listed in the files given (default scripts/apt-packages.txt, what
# `make test` needs; `make generate` adds scripts/apt-packages-generate.txt).
# Go tools are pinned with `tool` lines in go.mod and need no install step.
set -euo pipefail
cd "$(dirname "$0")/.."
lists=("$@")
[ ${#lists[@]} -eq 0 ] && lists=(scripts/apt-packages.txt)
mapfile -t want < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "${lists[@]}" | grep -v '^$' || true)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: need root to install ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
