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
echo "== Go benchmark: token round trip over the socket, and a DPoP proof's (POST /v1/proof)"
go test -run '^$' -bench 'TokenRoundTrip|ProofRoundTrip' -benchtime 3000x ./agent/daemon/
echo
echo "== DPoP: route requests/s with dpop: on against off, alternating rounds (issue 29; goal on/off >= 0.9)"
go test -run '^$' -bench DPoPRouteRatio -benchtime 1x ./agent/proxy/
echo
echo "== keychain read the agent does before every refresh (real Secret Service), beside the write it already did"
scripts/with-secret-service.sh go test -run '^$' -bench KeychainGet -benchtime 200x ./agent/store/
echo
echo "== whole-process kc-agent token vs a direct refresh grant and oidc-agent"
# The before: the last two-program build (a small front answering token
# itself), or the ref in KC_AGENT_BENCH_BEFORE, timed in the same loop.
before_ref="${KC_AGENT_BENCH_BEFORE:-8577277}"
before_dir="$(mktemp -d)"
trap 'git worktree remove --force "$before_dir/src" >/dev/null 2>&1 || true; rm -rf "$before_dir"' EXIT
before_flag=""
if git worktree add -q --detach "$before_dir/src" "$before_ref" 2>/dev/null &&
	(cd "$before_dir/src" && CGO_ENABLED=0 go build -trimpath -o "$before_dir/bin/" ./cmd/...); then
	before_flag="-before $before_dir/bin/kc-agent"
	echo "before: $before_ref ($(cd "$before_dir/src" && git log -1 --format=%s | cut -c1-60))"
else
	echo "before: could not build $before_ref; timing this build alone"
fi
scripts/with-secret-service.sh go run ./bench/tokenbench -bin bin/kc-agent $before_flag
scripts/with-secret-service.sh go run ./bench/pyclient -bin bin/kc-agent
echo
echo "== device sign-in: approval at Keycloak to sign-in complete, intervals 1 s and 5 s, against x/oauth2's loop"
go run ./bench/devicebench
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
