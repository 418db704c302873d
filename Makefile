# resilience: fault-tolerance middleware for go-kit endpoints.
# `make` alone lists the targets.

GO        ?= go
PKGS      ?= ./...
BENCHTIME ?= 1s
COUNT     ?= 6
BENCH_COUNT ?= 10
BENCH_TIME  ?= 50ms
ROW       ?= breaker_closed

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# apt-get needs root; elsewhere sudo.
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo
demo: ## run the demo (cmd/demo): the guide's scenarios over real HTTP, a timeline and a summary (about 5 s)
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
	cd e2e && UPDATE_SCREENSHOT=$(UPDATE_SCREENSHOT) $(GO) test -tags e2e -count=1 -v ./...

.PHONY: screenshot
screenshot: ## refresh docs/status.png from the browser test (make e2e with UPDATE_SCREENSHOT=1)
	$(MAKE) e2e UPDATE_SCREENSHOT=1

.PHONY: test
test: redis ## vet and run every test with the race detector, and the outcomes benchmark's short form
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -shuffle=on $(PKGS)
	@# The outcomes benchmark's short form (bench/ is a module of its own):
	@# reproducible tables, and our stack's outage invariants (detection
	@# within FailureThreshold calls, only probes after it, a probe
	@# ResetTimeout after each opening, every call back by its deadline).
	@# Fake time: about 15 seconds.
	cd bench && $(GO) test -count=1 -run '^TestOutcomes$$' ./outcomes

.PHONY: bench-test
bench-test: ## run the bench/ module's own tests (every contender builds and answers; cmd/results)
	cd bench && $(GO) vet ./... && $(GO) test -race -count=1 ./...

.PHONY: bench
bench: ## run bench/ against the peers (BENCH_COUNT passes of BENCH_TIME each) and write bench/RESULTS.md
	cd bench && $(GO) test -c -o bench.test .
	@# $(BENCH_COUNT) passes over the whole suite rather than -count: every
	@# contender's samples are spread over the run, next to the floor's, so a
	@# burst of noise on this shared machine cannot land on one contender only.
	cd bench && : > results.txt && for i in $$(seq $(BENCH_COUNT)); do \
		echo "pass $$i of $(BENCH_COUNT)"; \
		./bench.test -test.run '^$$' -test.bench '^BenchmarkSuite$$' -test.benchmem -test.benchtime $(BENCH_TIME) -test.timeout 30m >> results.txt || exit 1; \
	done
	cd bench && $(GO) run ./cmd/results -o RESULTS.md -notes notes.md -meta "$(BENCH_COUNT) passes, -benchtime $(BENCH_TIME)" results.txt
	@echo "wrote bench/RESULTS.md (raw: bench/results.txt; compare two runs: cd bench && go tool benchstat old.txt results.txt)"

.PHONY: outcomes
outcomes: ## run the outcome scenarios against the peers in fake time; write bench/OUTCOMES.md and bench/img/*.svg (about 20 s)
	cd bench && $(GO) test -count=1 -run '^TestOutcomes$$' ./outcomes -outcomes.write
	@echo "wrote bench/OUTCOMES.md and bench/img/*.svg (scenarios: bench/outcomes/testdata/scenarios.json)"

.PHONY: bench-unit
bench-unit: redis ## run this module's own micro-benchmarks (middleware, registry, redisstore)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

.PHONY: bench-profile
bench-profile: ## CPU and memory profiles of one bench/ row: make bench-profile ROW=breaker_closed
	cd bench && $(GO) test -run '^$$' -bench '^BenchmarkSuite$$/^row=$(ROW)$$' -benchmem -benchtime 1s -cpuprofile cpu.out -memprofile mem.out -o bench.test .
	cd bench && $(GO) tool pprof -top -nodecount 25 bench.test cpu.out

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
FUZZ_TARGETS ?= ./middleware:FuzzRetryConfigDelayFor ./middleware:FuzzLoadStacks ./health:FuzzHealthJSON ./endpoint:FuzzTypedBridge
# The concurrency tests `make stress` repeats.
STRESS_RUN   ?= Stress|Concurrent|Race|Contention|MixedLoad|Herd|UnderConcurrency|UnderLoad

.PHONY: soak
# The model check runs without -race here (5M steps; under the race detector it takes over 10
# minutes): `make test` runs it with -race in its short form.
soak: ## long forms: 1M-call chaos soak, 10,000 breaker model sequences, 10,000-call timeout bound
	$(GO) test -race -count=1 -timeout 60m -run '^TestSoak$$' -v ./middleware -soak.calls=$(SOAK_CALLS)
	RAPID_CHECKS=10000 RAPID_STEPS=500 $(GO) test -count=1 -timeout 60m -run '^TestConformance$$/^local$$/^Sequences$$' -v ./registry
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
