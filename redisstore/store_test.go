package redisstore_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/redistest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/redisstore"
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

// TestOpenUnreachable: Open with an address where no Redis listens says so
// at once (a log line naming the address, OnStatus told it is unreachable)
// and returns a store that works, deciding locally.
func TestOpenUnreachable(t *testing.T) {
	var (
		h   logRecords
		log statusLog
	)
	addr := freeAddr(t)
	s := redisstore.Open(addr, redisstore.Config{Timeout: 200 * time.Millisecond, OnStatus: log.add, Logger: slog.New(&h)})
	defer s.Close()
	if got := h.count(slog.LevelWarn, "addr", addr); got != 1 {
		t.Errorf("warnings naming %s = %d, want 1", addr, got)
	}
	log.mu.Lock()
	if len(log.list) != 1 || log.list[0].Healthy || log.list[0].Err == nil {
		t.Errorf("statuses = %+v, want one unhealthy status with an error", log.list)
	}
	log.mu.Unlock()
	ep := s.RateLimit("open", middleware.RateLimitConfig{Rate: 1, Burst: 1, Observer: &eventLog{}})(endpoint.Nop)
	if _, err := ep(context.Background(), nil); err != nil {
		t.Errorf("call on an unreachable store = %v, want admitted locally", err)
	}
}

// TestOpenReachableSaysNothing: Open on a live Redis logs nothing and
// reports nothing.
func TestOpenReachableSaysNothing(t *testing.T) {
	srv := redistest.Start(t)
	var (
		h   logRecords
		log statusLog
	)
	s := redisstore.Open(srv.Addr, redisstore.Config{OnStatus: log.add, Logger: slog.New(&h)})
	defer s.Close()
	h.mu.Lock()
	if len(h.recs) != 0 {
		t.Errorf("log records = %d, want 0", len(h.recs))
	}
	h.mu.Unlock()
	if log.has(false) || log.has(true) {
		t.Error("a status was reported for a reachable Redis")
	}
}

// TestStoreOnStatusPanics: a panicking OnStatus, told of an outage by a
// rate limit (on the call that noticed) and by a registry (on its own
// goroutine), is logged at Error with its stack; the process lives and the
// store keeps deciding.
func TestStoreOnStatusPanics(t *testing.T) {
	srv := redistest.Start(t)
	var (
		h     logRecords
		calls atomic.Int32
	)
	cfg := testCfg
	cfg.Logger = slog.New(&h)
	cfg.OnStatus = func(registry.StoreStatus) {
		calls.Add(1)
		panic("status hook")
	}
	s := newStore(t, srv.Addr, cfg)
	reg := s.Registry(registry.Config{})
	b, err := reg.Breaker("hook", registry.Settings{FailureThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	ep := s.RateLimit("hook", middleware.RateLimitConfig{Rate: 100, Burst: 10, Observer: &eventLog{}})(endpoint.Nop)
	srv.Stop()
	if _, err := ep(context.Background(), nil); err != nil {
		t.Errorf("rate-limited call during the outage = %v, want admitted locally", err)
	}
	for range 3 {
		call(b, registry.Failure)
	}
	if got := b.State(); got != registry.StateOpen {
		t.Errorf("breaker state = %v, want open (decided locally)", got)
	}
	if _, ok := waitFor(bound, func() bool { return h.count(slog.LevelError, "stack", "goroutine") >= 2 }); !ok {
		t.Errorf("error records with a stack = %d, want 2 (the rate limit's and the registry's)", h.count(slog.LevelError, "stack", "goroutine"))
	}
	if _, err := ep(context.Background(), nil); err != nil {
		t.Errorf("call after the panic = %v, want admitted", err)
	}
}
