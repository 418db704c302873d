package policy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/policy"
)

// TestRetryBudgetFromFile checks that a stack's retry budget is read from the
// file and shared by every Stack the Set gives for that name.
func TestRetryBudgetFromFile(t *testing.T) {
	set, err := policy.Parse([]byte("svc:\n  retry: {max_attempts: 3, no_delay: true, budget: {ratio: 0.1, min_retries: 5}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := set.Stack("svc")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := set.Stack("svc")
	if a.Retry.Budget == nil || a.Retry.Budget != b.Retry.Budget {
		t.Fatalf("budgets %p and %p, want one shared budget", a.Retry.Budget, b.Retry.Budget)
	}
	if got := a.Retry.Budget.Available(); got != 5 {
		t.Errorf("Available() = %d, want the reserve 5", got)
	}
	if want := "retry budget 10% of calls, reserve 5"; !strings.Contains(a.Explain(), want) {
		t.Errorf("Explain():\n%s\nwant it to mention %q", a.Explain(), want)
	}
}

// TestHedgeFromFile checks a hedge read from a file: every call idempotent,
// and its hedges counted against the stack's retry budget.
func TestHedgeFromFile(t *testing.T) {
	set, err := policy.Parse([]byte("svc:\n  retry: {max_attempts: 3, budget: {ratio: 0.1}}\n  hedge: {quantile: 0.95, delay: 20ms, max_hedges: 2, idempotent: true, retry_budget: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := set.Stack("svc")
	if err != nil {
		t.Fatal(err)
	}
	h := s.Hedge
	if h.Idempotent == nil || !h.Idempotent(context.Background(), nil) || h.Budget == nil || h.Budget != s.Retry.Budget ||
		h.Quantile != 0.95 || h.Delay != 20*time.Millisecond || h.MaxHedges != 2 {
		t.Errorf("hedge %+v, want every call idempotent, the retry's budget, p95, 20ms, 2 hedges", h)
	}
	if want := "hedge: a call its Idempotent approves is sent again after the p95 of recent latencies (at least 20ms), up to 2 more times"; !strings.Contains(s.Explain(), want) {
		t.Errorf("Explain():\n%s\nwant %q", s.Explain(), want)
	}
}

// TestBreakerOpenDurationFromFile checks that the breaker's growing and
// jittered open duration is read from the file.
func TestBreakerOpenDurationFromFile(t *testing.T) {
	set, err := policy.Parse([]byte("svc:\n  circuit_breaker: {reset_timeout: 10s, max_reset_timeout: 5m, reset_backoff: 1.5, reset_jitter: 0.1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := set.Stack("svc")
	if err != nil {
		t.Fatal(err)
	}
	cb := s.CircuitBreaker
	if cb.ResetTimeout != 10*time.Second || cb.MaxResetTimeout != 5*time.Minute || cb.ResetBackoff != 1.5 || cb.ResetJitter != 0.1 {
		t.Errorf("circuit_breaker %+v, want reset 10s growing x1.5 up to 5m, jitter 0.1", cb)
	}
}
