#!/usr/bin/env bash
# Heartbeat throughput and latency of the fleet API over real gRPC with TLS
# and agent tokens, for SQLite and then a throwaway PostgreSQL, in one run.
# Extra arguments go to fleetbench (go run ./bench/fleetbench -h).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${FLEETBENCH_PG_STARTED:-}" ]; then
  # Its own port, so that it runs beside the tests' PostgreSQL.
  export FLEETBENCH_PG_STARTED=1 TUXTAPE_TEST_PG_PORT=${FLEETBENCH_PG_PORT:-55479}
  unset TUXTAPE_TEST_PG
  exec ./scripts/with-postgres "$0" "$@"
fi
go build -o "${TMPDIR:-/tmp}/fleetbench.$$" ./bench/fleetbench
trap 'rm -f "${TMPDIR:-/tmp}/fleetbench.$$"' EXIT
"${TMPDIR:-/tmp}/fleetbench.$$" -backends sqlite,postgres -pg "$TUXTAPE_TEST_PG" "$@"
