#!/bin/sh
# Benchmarks, each printing ratios against a baseline measured in the same
# run. Starts its own Keycloak (the test harness) and Secret Service.
set -e
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
# The peers the benchmarks compare with (Debian packages).
need=""
command -v oidc-agent >/dev/null 2>&1 || need="$need oidc-agent-cli"
command -v nginx >/dev/null 2>&1 || need="$need nginx-light"
command -v mitmdump >/dev/null 2>&1 || need="$need mitmproxy"
command -v wrk >/dev/null 2>&1 || need="$need wrk"
command -v haproxy >/dev/null 2>&1 || need="$need haproxy"
if [ -n "$need" ]; then
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi
# Built as released (goreleaser: CGO_ENABLED=0 -trimpath).
CGO_ENABLED=0 go build -trimpath -o bin/ ./cmd/kc-agent
echo "== Go benchmark: token round trip over the socket"
go test -run '^$' -bench TokenRoundTrip -benchtime 3000x ./agent/daemon/
echo
echo "== keychain read the agent does before every refresh (real Secret Service), beside the write it already did"
scripts/with-secret-service.sh go test -run '^$' -bench KeychainGet -benchtime 200x ./agent/store/
echo
echo "== whole-process kc-agent token vs a direct refresh grant and oidc-agent"
scripts/with-secret-service.sh go run ./bench/tokenbench -bin bin/kc-agent
scripts/with-secret-service.sh go run ./bench/pyclient -bin bin/kc-agent
echo
echo "== proxy, separate processes: wrk/loadgen -> proxy -> nginx upstream, vs nginx, HAProxy, mitmproxy"
bench/proxy-fair.sh
echo "== the proxy when every request opens a connection (curl in a loop)"
bench/proxy-fair.sh -close -c 1,8 -only "reverse route"
echo
echo "== proxy overhead, in-process (one Go process is load, upstream and proxy; for profiles)"
go run ./bench/proxybench -n 20000 -c 8 -compare
echo
echo "== refresh storm: concurrent token requests across an expiry (rotation on)"
scripts/with-secret-service.sh go run ./bench/stormbench -bin bin/kc-agent -n 1000
