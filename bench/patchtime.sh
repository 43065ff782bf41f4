#!/usr/bin/env bash
# Where a livepatch build's time goes, as the generator builds today and as
# it did until 2026-12-02 (see bench/patchtime), alternating on the same corpus
# fixes in one run; prints each build, the medians per phase and the ratio.
# Arguments go to patchtime (go run ./bench/patchtime -h), e.g. -count 5.
# Quote the figures only from a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/patchtime "$@"
