#!/bin/sh
# The demo: a local Keycloak with a demo realm, then kc-agent login, token,
# status, a real API call with the token, and logout, in a throwaway
# kc-agent home. Set DEMO_INTERACTIVE=1 to sign in yourself in a browser
# (user demo, password demo); by default a scripted browser does it.
set -e
cd "$(dirname "$0")/.."
if [ "${KC_AGENT_IN_SECRET_SESSION:-}" != 1 ]; then
	exec scripts/with-secret-service.sh "$0" "$@"
fi
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
[ -n "${NO_COLOR:-}" ] && step() { printf '\n== %s\n' "$*" >&2; }

step "building kc-agent"
CGO_ENABLED=0 go build -o bin/ ./cmd/kc-agent
go build -o bin/kctest ./internal/testenv/cmd/kctest
KC=$PWD/bin/kc-agent

step "starting a local Keycloak 26.7.3 (first run downloads it through Maven)"
URL=$(bin/kctest start)
ISSUER="$URL/realms/demo"
echo "Keycloak is at $URL; realm 'demo', user 'demo', password 'demo'" >&2

DEMO_HOME=$(mktemp -d)
export KC_AGENT_CONFIG="$DEMO_HOME/config.yaml" KC_AGENT_STATE_DIR="$DEMO_HOME/state" KC_AGENT_SOCK="$DEMO_HOME/run/agent.sock"
trap '"$KC" status >/dev/null 2>&1 && kill $(cat "$DEMO_HOME/agent.pid" 2>/dev/null) 2>/dev/null; rm -rf "$DEMO_HOME"' EXIT
if [ "${DEMO_INTERACTIVE:-}" != 1 ]; then
	export BROWSER="$PWD/bin/kctest signin demo demo %s"
fi

step "kc-agent login $ISSUER"
"$KC" login "$ISSUER"

step "cat \$KC_AGENT_CONFIG   (written by login)"
cat "$KC_AGENT_CONFIG"

step "kc-agent doctor"
"$KC" doctor || true

step "kc-agent token --format json   (starts the agent in the background)"
"$KC" token --format json | python3 -c 'import json,sys; t=json.load(sys.stdin); print("token_type:", t["token_type"], " expires_at:", t["expires_at"], " expires_in:", t["expires_in"], " token: %s... (%d chars)" % (t["access_token"][:12], len(t["access_token"])))'
"$KC" status --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' > "$DEMO_HOME/agent.pid"

step "the same user and roles as in the browser: claims of the access token"
"$KC" token | python3 -c 'import base64,json,sys; p=sys.stdin.read().split(".")[1]; c=json.loads(base64.urlsafe_b64decode(p+"=="*2)); print("user:", c["preferred_username"], " roles:", c.get("realm_access",{}).get("roles"))'

step "kc-agent token --format header | curl -H @- \$ISSUER/protocol/openid-connect/userinfo"
"$KC" token --format header | curl -sf -H @- "$ISSUER/protocol/openid-connect/userinfo"; echo

step "kc-agent status"
"$KC" status

step "kc-agent logout"
"$KC" logout

step "kc-agent token after logout: exit 4, login required"
set +e
"$KC" token; echo "exit status: $?" >&2
set -e
kill "$(cat "$DEMO_HOME/agent.pid")" 2>/dev/null || true
step "done. Stop Keycloak with: make keycloak-stop"
