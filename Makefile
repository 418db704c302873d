# resilience: fault-tolerance middleware for go-kit endpoints.
# `make` alone lists the targets.

GO        ?= go
PKGS      ?= ./...
BENCHTIME ?= 1s
COUNT     ?= 6

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: demo
demo: ## run the demo (cmd/demo): the guide's scenarios against a flaky endpoint
	$(GO) run ./cmd/demo

.PHONY: test
test: ## vet and run every test with the race detector
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -shuffle=on $(PKGS)

.PHONY: bench
bench: ## run the benchmarks (this module, then bench/ against the peers)
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

# The reliability suite (RELIABILITY.md). `make test` runs its short forms.
SOAK_CALLS   ?= 1000000
FUZZTIME     ?= 30s
STRESS_COUNT ?= 20
# package:target for each fuzz target `make fuzz` runs.
FUZZ_TARGETS ?= ./middleware:FuzzRetryConfigDelayFor ./health:FuzzHealthJSON ./endpoint:FuzzTypedBridge
# The concurrency tests `make stress` repeats.
STRESS_RUN   ?= Stress|Concurrent|Race|Contention|MixedLoad|Herd|UnderConcurrency|UnderLoad

.PHONY: soak
# The model check runs without -race here (5M steps; under the race detector it takes over 10
# minutes): `make test` runs it with -race in its short form.
soak: ## long forms: 1M-call chaos soak, 10,000 breaker model sequences, 10,000-call timeout bound
	$(GO) test -race -count=1 -timeout 60m -run '^TestSoak$$' -v ./middleware -soak.calls=$(SOAK_CALLS)
	RAPID_CHECKS=10000 RAPID_STEPS=500 $(GO) test -count=1 -timeout 60m -run '^TestBreakerModel$$' -v ./middleware
	$(GO) test -count=1 -run '^TestTimeoutAbandonLatencyBound$$' -v ./middleware -timeout.calls=10000 -timeout.strict

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$fn ($$pkg)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

.PHONY: stress
stress: ## the concurrency tests with -race, -count=20 -cpu=1,2,4
	$(GO) test -race -count=$(STRESS_COUNT) -cpu=1,2,4 -timeout 60m -run '$(STRESS_RUN)' ./middleware ./registry ./health ./endpoint/...
