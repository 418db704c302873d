package policy_test

import (
	"strings"
	"testing"

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
