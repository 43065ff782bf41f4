#!/usr/bin/env bash
# Full and incremental sync speed on the real CNA bundle, with the
# read-and-decode baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./bench/syncbench -bundle "${TUXTAPE_VULNS_BUNDLE:-../shared/data/vulns-2026-08-19.bundle}" "$@"
