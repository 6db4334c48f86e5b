#!/bin/sh
# Separate-process proxy benchmark: wrk (and bench/loadgen for CONNECT
# modes) against nginx as an HTTPS upstream, directly, through kc-agent's
# reverse route and HTTPS_PROXY interception (the real binary, logged in to
# the test Keycloak), and through nginx, HAProxy and mitmproxy as peers.
# Pinned with taskset; see docs/BENCHMARKS.md. Extra arguments go to
# bench/proxyfair (e.g. -d 2s -rounds 1 -layout load-alone).
set -e
cd "$(dirname "$0")/.."
need=""
command -v wrk >/dev/null 2>&1 || need="$need wrk"
command -v nginx >/dev/null 2>&1 || need="$need nginx-light"
command -v haproxy >/dev/null 2>&1 || need="$need haproxy"
command -v mitmdump >/dev/null 2>&1 || need="$need mitmproxy"
command -v curl >/dev/null 2>&1 || need="$need curl"
if [ -n "$need" ]; then
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi
CGO_ENABLED=0 go build -trimpath -o bin/ ./cmd/kc-agent
exec go run ./bench/proxyfair -bin bin/kc-agent "$@"
