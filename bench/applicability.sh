#!/usr/bin/env bash
# Applicability and profile figures: the gauge over every published CVE
# against ten kernels, the prioritizer over every record, and the static
# build profile of the Debian cloud config (needs its source: see
# TUXTAPE_KERNEL_SRC below). Prints the Go benchmark lines; quote medians.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
go test -run '^$' -bench 'BenchmarkJudgeAll' -count "$count" ./internal/analysis/gauge/
go test -run '^$' -bench 'BenchmarkScoreAll' -count "$count" ./internal/analysis/priority/
go test -run '^$' -bench 'BenchmarkDocument' -count "$count" ./internal/analysis/openvex/
if [ -n "${TUXTAPE_KERNEL_SRC:-}" ]; then
  TUXTAPE_KERNEL_CONFIG=${TUXTAPE_KERNEL_CONFIG:-$HOME/.cache/tuxtape/debs/extracted/linux-image-6.1.0-50-cloud-amd64_6.1.176-1/boot/config-6.1.0-50-cloud-amd64} \
    go test -run '^$' -bench 'BenchmarkStatic' -count "$count" ./internal/build/kbuild/
else
  echo "BenchmarkStatic skipped: set TUXTAPE_KERNEL_SRC to an unpacked 6.1.176 source tree" >&2
fi
