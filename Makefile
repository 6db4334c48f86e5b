# kc-agent — the targets the README names.
GO ?= go
PKGS := ./...

.PHONY: wheels soak faults release-check build deps test test-short test-windows demo keycloak keycloak-stop bench lint fuzz snapshot clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/kc-agent

# The whole suite: unit tests, real Keycloak, real Secret Service, real
# Chromium/curl/python, the Windows build under Wine. CI runs exactly this.
test: deps
	KC_AGENT_REQUIRE_SECRET_SERVICE=1 KC_AGENT_REQUIRE_CHROMIUM=1 KC_AGENT_REQUIRE_PYTHON=1 KC_AGENT_REQUIRE_JUPYTER=1 KC_AGENT_REQUIRE_OTHER_UID=1 \
		KC_AGENT_REQUIRE_WINE=1 KC_AGENT_REQUIRE_JUPYTERHUB=1 KC_AGENT_REQUIRE_SWTPM=1 \
		scripts/with-secret-service.sh $(GO) test -race -count=1 -timeout 30m $(PKGS)

# The Windows part of test alone: every package's Windows test binary under
# Wine (one subtest per package), and kc-agent.exe end to end.
test-windows: deps
	KC_AGENT_REQUIRE_WINE=1 $(GO) test -count=1 -v -timeout 10m ./internal/testenv/wine
	KC_AGENT_REQUIRE_WINE=1 $(GO) test -count=1 -v -timeout 10m -run '^TestWindows' ./cmd/kc-agent

deps:
	@scripts/install-test-deps.sh

# Unit tests only (no Keycloak, no Secret Service).
test-short:
	$(GO) test -short -count=1 $(PKGS)

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt needed"; exit 1)
	$(GO) vet $(PKGS)
	GOOS=windows $(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	@big=$$(git ls-files -z | xargs -0 stat -c '%s %n' 2>/dev/null | awk '$$1 > 1048576 {print $$2}'); \
		test -z "$$big" || (echo "tracked files over 1 MB (build outputs belong in bin/ or dist/): $$big"; exit 1)
	@! $(GO) list -deps ./installers | grep -q 'kc-agent/agent/' || (echo "installers must not import agent/"; exit 1)
	@! $(GO) list -deps ./agent/config ./agent/tokens ./agent/cleartext ./agent/store ./agent/oidc | grep -qx 'github.com/kc-agent/kc-agent/ipc' || (echo "the domain (agent/config, tokens, cleartext, store, oidc) must not import the wire (ipc)"; exit 1)
	@! grep -l '"github.com/kc-agent/kc-agent/agent/\(store\|oidc\)"' $$(git ls-files 'cmd/kc-agent/*.go' | grep -v -e '_test\.go$$' -e '/doctor\.go$$') || (echo "cmd/kc-agent signs in and out through agent/session, not agent/store or agent/oidc (doctor.go aside)"; exit 1)
	@! $(GO) list -deps ./cmd/kc-agent | grep -q '^k8s.io/' || (echo "client-go is for tests only: the binary must not import k8s.io"; exit 1)

# Each fuzz target for a short while.
fuzz:
	scripts/fuzz.sh 20s

# A local Keycloak with the demo realm, then a walk through login.
demo: deps
	scripts/demo.sh

keycloak:
	$(GO) run ./internal/testenv/cmd/kctest start

keycloak-stop:
	$(GO) run ./internal/testenv/cmd/kctest stop

bench:
	bench/run.sh

soak:
	bench/soak.sh

# Fault scenarios (kill -9 mid-refresh, Keycloak restart, Secret Service
# killed, disk full). They kill shared peers, so they run alone, after test.
faults: deps
	KC_AGENT_REQUIRE_SECRET_SERVICE=1 KC_AGENT_REQUIRE_OTHER_UID=1 scripts/with-secret-service.sh \
		$(GO) test -tags faults -run '^TestFault' -count=1 -v -timeout 10m ./cmd/kc-agent/

# The Python client's platform wheels, each with its kc-agent, and a pure
# one (build/wheels); checked by scripts/check-wheels.py.
wheels:
	python3 scripts/build-wheels.py --out build/wheels
	python3 scripts/check-wheels.py build/wheels

# Cross-compile every release target, goreleaser check, host snapshot.
release-check:
	scripts/release-check.sh

clean:
	rm -rf bin dist build
