#!/usr/bin/env bash
# The static include graph (kbuild.Static with Headers) against a real
# build's profile, per header changed by the corpus's fixes: units in the
# real profile, in the static graph, true positives, precision, recall, and
# the totals; and what the graph costs (time, heap, JSON size). TREE is a
# prepared tree with its .config; REAL a real profile's JSON (tuxtape
# kernel profile NAME --real --json) or, with REAL_BUILD, a finished
# in-tree build to read it from. Extra arguments go to the program (-all,
# -c, -q, -explain HEADER, -headers FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
tree=${TREE:-/root/.cache/tuxtape/trees/6.1.0-50-cloud-amd64_6.1.176-1}
args=(-tree "$tree" -config "${CONFIG:-$tree/.config}" -patches "${PATCHES:-../shared/corpus/debian-6.1.176/patches}")
if [ -n "${REAL_BUILD:-}" ]; then
  args+=(-real-build "$REAL_BUILD")
else
  args+=(-real "${REAL:-/tmp/cloud-real-profile.json}")
fi
go run ./bench/includes "${args[@]}" "$@"
