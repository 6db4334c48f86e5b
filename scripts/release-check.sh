#!/bin/sh
# Release checks for CI: every release target cross-compiles, goreleaser.yaml
# passes `goreleaser check`, and a snapshot builds for this host.
set -e
cd "$(dirname "$0")/.."
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do
	echo "release-check: go build $target"
	GOOS=${target%/*} GOARCH=${target#*/} CGO_ENABLED=0 go build ./cmd/kc-agent
done
tools="${XDG_CACHE_HOME:-$HOME/.cache}/kc-agent-tools"
if [ ! -x "$tools/goreleaser" ]; then
	echo "release-check: building goreleaser v2.15.1 (once per machine)"
	mkdir -p "$tools"
	(cd /tmp && GOBIN="$tools" GOFLAGS=-buildvcs=false go install github.com/goreleaser/goreleaser/v2@v2.15.1)
fi
"$tools/goreleaser" check
rm -rf build/wheels
"$tools/goreleaser" build --snapshot --single-target --clean
ls dist/*/kc-agent >/dev/null
! ls dist/*/kc-agent-core >/dev/null 2>&1 || { echo "release-check: a kc-agent-core was built: kc-agent is one program"; exit 1; }
# The wheels: goreleaser's before hook built them into build/wheels.
# In CI the Windows wheel's binary must run under Wine (make test installed it).
[ "${CI:-}" = true ] && export KC_AGENT_REQUIRE_WINE=1
python3 scripts/check-wheels.py build/wheels
echo "release-check: ok"
