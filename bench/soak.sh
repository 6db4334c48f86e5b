#!/bin/sh
# The 10-minute soak (by hand; not in CI). SOAK=2m bench/soak.sh for less;
# SOAK_DPOP=refresh binds the login to a key (a realm copy with
# refresh-token-only binding).
set -e
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
CGO_ENABLED=0 go build -o bin/ ./cmd/kc-agent
scripts/with-secret-service.sh go run ./bench/soak -bin bin/kc-agent -d "${SOAK:-10m}" -dpop "${SOAK_DPOP:-}"
