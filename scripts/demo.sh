#!/bin/sh
# The demo: a local Keycloak with a demo realm, then kc-agent login, token,
# status, a real API call with the token, a notebook (the Python client from
# its wheel, in a kernel with no kc-agent variables) reading an API through a
# route and with KcAgentAuth, and logout, in a throwaway kc-agent home. The
# agent listens at this user's default place, where kernels look. Set DEMO_INTERACTIVE=1 to sign in yourself in a browser
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

unset KC_AGENT_SOCK KC_AGENT_PROFILE
if "$KC" status >/dev/null 2>&1; then
	echo "demo: a kc-agent already runs for $(id -un); the demo's agent needs the default place: stop it first (kc-agent service stop)" >&2
	exit 1
fi
DEMO_HOME=$(mktemp -d)
export KC_AGENT_CONFIG="$DEMO_HOME/config.yaml" KC_AGENT_STATE_DIR="$DEMO_HOME/state"
trap 'kill $(cat "$DEMO_HOME/agent.pid" "$DEMO_HOME/api.pid" 2>/dev/null) 2>/dev/null; rm -rf "$DEMO_HOME"' EXIT
if [ "${DEMO_INTERACTIVE:-}" != 1 ]; then
	export BROWSER="$PWD/bin/kctest signin demo demo %s"
fi

step "kc-agent login $ISSUER"
"$KC" login "$ISSUER"

step "a small API that checks each token at Keycloak, and a route to it"
bin/kctest api "$ISSUER" > "$DEMO_HOME/api.url" &
echo $! > "$DEMO_HOME/api.pid"
for i in $(seq 50); do [ -s "$DEMO_HOME/api.url" ] && break; sleep 0.1; done
API=$(cat "$DEMO_HOME/api.url")
printf 'proxy:\n  listen: 127.0.0.1:0\nroutes:\n  - name: demo-api\n    upstream: %s\n' "$API" >> "$KC_AGENT_CONFIG"
echo "API at $API" >&2

step "cat \$KC_AGENT_CONFIG   (written by login, plus the route)"
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

step "a notebook: pip install kc-agent-client (the wheel, with its kc-agent), then nbconvert --execute"
python3 scripts/build-wheels.py --out "$DEMO_HOME/wheels" --only host >/dev/null
# Debian's python3, whose ipykernel and requests the venv sees.
/usr/bin/python3 -m venv --system-site-packages "$DEMO_HOME/venv"
"$DEMO_HOME/venv/bin/pip" install -q --no-index --no-deps "$DEMO_HOME"/wheels/kc_agent_client-*-py3-none-[!a]*.whl
mkdir -p "$DEMO_HOME/nb" "$DEMO_HOME/jupyter/kernels/kcdemo" "$DEMO_HOME/kernel-home"
printf '{"argv": ["%s", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "kc-agent demo", "language": "python"}\n' \
	"$DEMO_HOME/venv/bin/python" > "$DEMO_HOME/jupyter/kernels/kcdemo/kernel.json"
printf '{"api": "%s"}\n' "$API" > "$DEMO_HOME/nb/demo.json"
cp scripts/demo/notebook.ipynb "$DEMO_HOME/nb/"
# Like a kernel started from a launcher: no kc-agent variables, no
# XDG_RUNTIME_DIR, a short PATH without kc-agent.
(cd "$DEMO_HOME/nb" && env -i HOME="$DEMO_HOME/kernel-home" PATH=/usr/bin:/bin LANG=C.UTF-8 JUPYTER_PATH="$DEMO_HOME/jupyter" \
	/usr/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.kernel_name=kcdemo \
	--ExecutePreprocessor.timeout=120 --allow-errors --output executed.ipynb notebook.ipynb >"$DEMO_HOME/nbconvert.log" 2>&1) ||
	{ cat "$DEMO_HOME/nbconvert.log" >&2; exit 1; }
python3 scripts/demo/show-notebook.py "$DEMO_HOME/nb/executed.ipynb"
if grep -Eq 'eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.' "$DEMO_HOME/nb/executed.ipynb"; then
	echo "demo: the saved notebook contains a token" >&2
	exit 1
fi
echo "(the saved notebook has no token in it)" >&2

step "kc-agent logout"
"$KC" logout

step "kc-agent token after logout: exit 4, login required"
set +e
"$KC" token; echo "exit status: $?" >&2
set -e
kill "$(cat "$DEMO_HOME/agent.pid")" 2>/dev/null || true
step "done. Stop Keycloak with: make keycloak-stop"
