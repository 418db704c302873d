// Package outcomes measures what each resilience toolkit does for a service
// while its dependency fails: how many calls get a real answer in time, how
// many a fallback, how slow the caller sees them, and how hard the service
// hits the dependency. It is issue 15's benchmark: where the parent package
// counts nanoseconds on the success path, this one counts outcomes under
// faults.
//
// # The model
//
// A [Dependency] is a server in fake time (testing/synctest): one or more
// instances, each a fixed number of workers taking calls from one FIFO queue,
// each call served for a log-normal service time (median 10ms, p99 about
// 50ms by default). Offered
// more than its capacity (workers / mean service time), its queue and latency
// grow as a real server's do; a queued call whose caller has gone is dropped
// when a worker reaches it, as a server that checks deadlines does. A fault
// schedule makes it fail fast, hang (a black hole: the call returns only when
// the caller's context ends), slow down by a factor, or fail a share of calls,
// over a time window, on every instance or on some. The client in front of
// the instances sends attempt n of caller call i to instance (i+n-1) mod
// instances, so a retry goes to the next instance; go-kit's contender
// balances over the instances' own endpoints instead.
//
// Callers are open-loop: Poisson arrivals at a set rate (raised to a multiple
// of the capacity in an overload window), each call with its own deadline
// (default 1s), so overload shows instead of being hidden by callers that
// wait for each other.
//
// # Reproducibility
//
// Every random draw comes from math/rand/v2 PCG sources derived from the
// run's seed: the arrival times from one source, each dependency call's
// service time and fault draw from a source keyed by (caller call, attempt),
// so the draws do not depend on the order in which goroutines run. The
// contenders retry without jitter for the same reason (jitter from a global
// source would make every run differ). Under synctest, two runs with one seed
// give the same tables.
//
// # Scenarios and contenders
//
// Scenarios are rows of data in testdata/scenarios.json ([LoadScenarios]);
// the contenders ([Contenders]) wrap the same client endpoint with the
// equivalent policy: fallback value, breaker opening on 5 consecutive
// failures with a 10s reset, 3 attempts with backoff, attempt timeout 250ms.
// [Ideal] is the run no library can beat, computed call by call from the
// same arrivals and draws. [Table] and [Picture] write a scenario's tables
// and its picture (SVG, goodput and p99 over time).
//
//	go test ./outcomes -run '^TestOutcomes$' -outcomes.write   # writes bench/OUTCOMES.md and bench/img (make outcomes)
package outcomes
