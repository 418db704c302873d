# resilience: fault-tolerance middleware for go-kit endpoints.
# `make` alone lists the targets.

GO        ?= go
PKGS      ?= ./...
BENCHTIME ?= 1s
COUNT     ?= 6

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# apt-get needs root; elsewhere sudo.
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo
demo: ## run the demo (cmd/demo): the guide's scenarios over real HTTP, a timeline and a summary (~6 s)
	$(GO) run ./cmd/demo

.PHONY: redis
redis: ## install redis-server with apt-get if missing (the tests start their own on a free port)
	@command -v redis-server >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

.PHONY: serve
serve: ## serve the demo service and its live status page on http://127.0.0.1:8080/
	$(GO) run ./cmd/demo serve

.PHONY: e2e
e2e: ## browser test of the status page in headless Chromium (installs Debian's chromium when missing)
	@if [ -z "$$CHROMIUM" ] && ! command -v chromium >/dev/null 2>&1; then \
		echo "make e2e: installing Debian's chromium"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; \
	fi
	cd e2e && $(GO) test -tags e2e -count=1 -v ./...

.PHONY: test
test: redis ## vet and run every test with the race detector
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -shuffle=on $(PKGS)

.PHONY: bench
bench: redis ## run the benchmarks (this module, then bench/ against the peers)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)
	@if [ -f bench/go.mod ]; then cd bench && $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...; fi

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

.PHONY: cover
cover: ## run the tests with coverage and print the total
	$(GO) test -count=1 -coverprofile=cover.out $(PKGS)
	$(GO) tool cover -func=cover.out | tail -1
