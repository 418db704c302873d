package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/internal/redistest"
	"github.com/resiliencekit/resilience/registry"
)

// TestRecord drives the record script step by step: each step is an
// operation and the state it must leave.
func TestRecord(t *testing.T) {
	srv := redistest.Start(t)
	const reset = 100 * time.Millisecond
	settings := registry.Settings{FailureThreshold: 2, SuccessThreshold: 2, ResetTimeout: reset}
	type step struct {
		op         registry.Op
		staleGen   bool          // send the generation before the current one
		sleep      time.Duration // before the step
		wantState  registry.State
		wantFails  int
		wantProbes int
		admitted   bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "failures open, a stale outcome changes nothing", steps: []step{
			{op: registry.OpFailure, wantState: registry.StateClosed, wantFails: 1},
			{op: registry.OpSuccess, wantState: registry.StateClosed},
			{op: registry.OpFailure, wantState: registry.StateClosed, wantFails: 1},
			{op: registry.OpFailure, wantState: registry.StateOpen},
			{op: registry.OpReset, wantState: registry.StateClosed},
			{op: registry.OpFailure, staleGen: true, wantState: registry.StateClosed},
		}},
		{name: "half-open admits SuccessThreshold probes, an exclusion frees one", steps: []step{
			{op: registry.OpTrip, wantState: registry.StateOpen},
			{op: registry.OpProbe, wantState: registry.StateOpen},
			{op: registry.OpProbe, sleep: reset + 10*time.Millisecond, wantState: registry.StateHalfOpen, wantProbes: 1, admitted: true},
			{op: registry.OpProbe, wantState: registry.StateHalfOpen, wantProbes: 2, admitted: true},
			{op: registry.OpProbe, wantState: registry.StateHalfOpen, wantProbes: 2},
			{op: registry.OpExcluded, wantState: registry.StateHalfOpen, wantProbes: 1},
			{op: registry.OpProbe, wantState: registry.StateHalfOpen, wantProbes: 2, admitted: true},
			{op: registry.OpSuccess, wantState: registry.StateHalfOpen, wantProbes: 2},
			{op: registry.OpSuccess, wantState: registry.StateClosed},
		}},
		{name: "a probe failure opens again", steps: []step{
			{op: registry.OpTrip, wantState: registry.StateOpen},
			{op: registry.OpProbe, sleep: reset + 10*time.Millisecond, wantState: registry.StateHalfOpen, wantProbes: 1, admitted: true},
			{op: registry.OpFailure, wantState: registry.StateOpen},
		}},
		{name: "probe slots of probes that never reported expire", steps: []step{
			{op: registry.OpTrip, wantState: registry.StateOpen},
			{op: registry.OpProbe, sleep: reset + 10*time.Millisecond, wantState: registry.StateHalfOpen, wantProbes: 1, admitted: true},
			{op: registry.OpProbe, wantState: registry.StateHalfOpen, wantProbes: 2, admitted: true},
			{op: registry.OpProbe, wantState: registry.StateHalfOpen, wantProbes: 2},
			{op: registry.OpProbe, sleep: reset + 10*time.Millisecond, wantState: registry.StateHalfOpen, wantProbes: 1, admitted: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, srv.Addr, testCfg)
			ctx := context.Background()
			name := tt.name
			var gen uint64
			for i, st := range tt.steps {
				time.Sleep(st.sleep)
				g := gen
				if st.staleGen {
					g--
				}
				ss, err := s.Record(ctx, name, settings, g, st.op)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				gen = ss.Generation
				if ss.State != st.wantState || ss.Failures != st.wantFails || ss.Probes != st.wantProbes || ss.Admitted != st.admitted {
					t.Errorf("step %d (op %d): state %v, failures %d, probes %d, admitted %v; want %v, %d, %d, %v",
						i, st.op, ss.State, ss.Failures, ss.Probes, ss.Admitted, st.wantState, st.wantFails, st.wantProbes, st.admitted)
				}
				loaded, err := s.Load(ctx, []string{name})
				if err != nil {
					t.Fatalf("step %d: Load: %v", i, err)
				}
				if l := loaded[0]; l.State != ss.State || l.Generation != ss.Generation || l.Failures != ss.Failures {
					t.Errorf("step %d: Load = %+v, want what Record returned (%+v)", i, l, ss)
				}
			}
		})
	}
}
