package registry_test

import (
	"testing"

	"github.com/resiliencekit/resilience/registry"
)

// TestSnapshotFastPathCounts pins what the Snapshot comment documents: with
// the consecutive rule and no failure streak, successes and exclusions take
// the fast path and are not counted; once a streak runs, every outcome is.
func TestSnapshotFastPathCounts(t *testing.T) {
	r := registry.New(registry.Config{})
	defer r.Close()
	b, err := r.Breaker("svc", registry.Settings{FailureThreshold: 10})
	if err != nil {
		t.Fatal(err)
	}
	call := func(o registry.Outcome) {
		tk, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		b.Done(tk, o)
	}
	call(registry.Success)
	call(registry.Excluded)
	if s := b.Snapshot(); s.Requests != 0 || s.TotalSuccesses != 0 || s.TotalExclusions != 0 {
		t.Errorf("fast path: requests, successes, exclusions = %d, %d, %d, want 0, 0, 0", s.Requests, s.TotalSuccesses, s.TotalExclusions)
	}
	call(registry.Failure) // a streak starts: from now on every outcome is recorded
	call(registry.Excluded)
	s := b.Snapshot()
	if s.TotalFailures != 1 || s.TotalExclusions != 1 || s.ConsecutiveFailures != 1 {
		t.Errorf("streak: failures, exclusions, streak = %d, %d, %d, want 1, 1, 1", s.TotalFailures, s.TotalExclusions, s.ConsecutiveFailures)
	}
}
