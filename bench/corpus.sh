#!/usr/bin/env bash
# Runs every fix of the real corpus through the livepatch generator and the
# VM, and prints the classification table and the median build time.
# About an hour on 2 cores (the first run also fetches and prepares the kernel).
# TUXTAPE_KERNEL names a kernel record with a real build profile
# (tuxtape kernel add/build): then header fixes are handled too, and the
# summary counts the fixes that change only .c files the kernel compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/ ./cmd/tuxtape
exec bin/tuxtape patch corpus "${TUXTAPE_CORPUS:-../shared/corpus/debian-6.1.176}" \
  --kernel "${TUXTAPE_KERNEL:-debian:6.1.0-50-cloud-amd64=6.1.176-1}" --vm --report "${REPORT:-corpus-report.json}" "$@"
