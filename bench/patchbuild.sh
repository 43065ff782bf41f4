#!/usr/bin/env bash
# Time to build one livepatch on a prepared tree, with the fixed units
# compiled in a copy mounted at the tree's own path (the default) and in
# the copy's own directory (TUXTAPE_WORKSPACE_MOUNT=0, where kbuild rebuilds
# objtool and resolve_btfids), alternating, COUNT runs each. Prints each
# run and the medians. KERNEL is a kernel record or debian:RELEASE=VERSION;
# FIX a fix that applies to it.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
kernel=${KERNEL:-debian:6.1.0-50-cloud-amd64=6.1.176-1}
fix=${FIX:-../shared/corpus/debian-6.1.176/patches/CVE-2026-53163.patch}
go build -o bin/ ./cmd/tuxtape
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bin/tuxtape -q patch build --kernel "$kernel" --fix "$fix" -o "$out/warm.ko" >/dev/null # prepare and cache
declare -a mounted own
for i in $(seq "$count"); do
  for mode in 1 0; do
    start=$(date +%s.%N)
    TUXTAPE_WORKSPACE_MOUNT=$mode bin/tuxtape -q patch build --kernel "$kernel" --fix "$fix" -o "$out/x.ko" >/dev/null
    t=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    echo "run $i mount=$mode: ${t} s"
    if [ "$mode" = 1 ]; then mounted+=("$t"); else own+=("$t"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m=$(median "${mounted[@]}"); o=$(median "${own[@]}")
echo "median: mounted at the tree's path ${m} s, own directory ${o} s, ratio $(awk -v o="$o" -v m="$m" 'BEGIN {printf "%.2f", o / m}')x"
