// Package registrytest checks circuit breakers against one reference
// model of the rules package registry documents, in the manner of
// testing/fstest.TestFS and testing/slogtest.Run: [Run] makes registries as
// a [Harness] says (local, or sharing a [registry.Store]) and checks their
// breakers with consecutive and ratio rules, calls held across state
// changes, Reset and Trip, time exactly at and 1ns before ResetTimeout,
// half-open probe limits, several replicas on one store and store outages
// ([Flaky]), and random sequences of all of these.
//
// A Store implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		registrytest.Run(t, registrytest.Harness{
//			NewStore: func(t *testing.T) registry.Store { return mystore.New(...) },
//			Replicas: 3,
//		})
//	}
package registrytest

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"

	"github.com/sony/gobreaker/v2"

	"github.com/resiliencekit/resilience/registry"
)

// Harness says how [Run] makes the registries it checks. The zero Harness
// checks local registries (no store) in fake time.
type Harness struct {
	// NewStore returns an empty store for one case; each case calls it
	// once and shares the store (in front of which the suite puts a
	// [Flaky]) between its Replicas registries. The store must start empty
	// for each call (a fresh key prefix will do). Nil: local registries,
	// and the cases about stores are skipped.
	NewStore func(t *testing.T) registry.Store
	// Replicas is the number of registries each case makes on the store,
	// as the replicas of one service. The suite drives calls through the
	// first and Reset and Trip through any, and checks that every replica
	// follows. Default 1. Ignored without NewStore.
	Replicas int
	// RealTime says that the store does not keep the fake time of a
	// [testing/synctest] bubble (its clock is another process's, as
	// Redis's is, or it does network I/O): the cases then run in real time,
	// look at ResetTimeout's edges Margin away from them instead of exactly
	// at and 1ns before, and the random sequences (which need exact time)
	// are skipped. Default false: every case runs in a bubble, in fake time.
	RealTime bool
	// Margin is how far from a time edge a real-time case looks, and how
	// long it waits for a change to reach the other replicas. Default 50ms.
	// Used only with RealTime.
	Margin time.Duration
}

// Run checks the breakers of registries made as h says against the
// reference model, one subtest per case. Call it from a test function.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Replicas <= 0 || h.NewStore == nil {
		h.Replicas = 1
	}
	if h.Margin <= 0 {
		h.Margin = 50 * time.Millisecond
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.store && h.NewStore == nil {
				t.Skip("needs a store")
			}
			if c.fake && h.RealTime {
				t.Skip("needs fake time")
			}
			if h.RealTime {
				c.run(t, h)
				return
			}
			synctest.Test(t, func(t *testing.T) { c.run(t, h) })
		})
	}
}

// cases are the suite's cases, in order.
var cases = []struct {
	name        string
	store, fake bool // needs a store; needs fake time
	run         func(*testing.T, Harness)
}{
	{name: "Consecutive", run: testConsecutive},
	{name: "Ratio", run: testRatio},
	{name: "HeldCalls", run: testHeldCalls},
	{name: "Reset", run: testReset},
	{name: "Trip", run: testTrip},
	{name: "ResetTimeoutEdges", run: testResetTimeoutEdges},
	{name: "HalfOpenProbes", run: testHalfOpenProbes},
	{name: "Listeners", run: testListeners},
	{name: "Replicas", store: true, run: testReplicas},
	{name: "Conflict", store: true, run: testConflict},
	{name: "StoreOutage", store: true, run: testStoreOutage},
	{name: "Sequences", fake: true, run: testSequences},
}

// env is one case's registries, their breakers of one name, and the model
// they are checked against.
type env struct {
	t      tb
	h      Harness
	flaky  *Flaky // nil without a store
	regs   []*registry.Registry
	bs     []*registry.Breaker // bs[0] takes the calls
	m      *model
	held   []heldCall
	steps  int
	mu     sync.Mutex
	heard  [][]registry.StateChange // per replica
	panics map[int]bool             // replicas whose listener panics at the next change
}

type heldCall struct {
	epoch int
	tk    registry.Ticket
}

// settings are the breaker settings of the scripted cases.
func (h Harness) settings() registry.Settings {
	rt := 10 * time.Second
	if h.RealTime {
		rt = 5 * h.Margin
	}
	return registry.Settings{FailureThreshold: 3, SuccessThreshold: 2, ResetTimeout: rt}
}

// tb is what the suite needs of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

// newEnv makes the registries of one case (of the test tt, for NewStore;
// failures and cleanups go to t) and their breakers with settings s.
func newEnv(t tb, tt *testing.T, h Harness, s registry.Settings) *env {
	t.Helper()
	e := &env{t: t, h: h, panics: map[int]bool{}}
	if h.NewStore != nil {
		e.flaky = NewFlaky(h.NewStore(tt))
	}
	e.heard = make([][]registry.StateChange, h.Replicas)
	for i := range h.Replicas {
		cfg := registry.Config{Listeners: []func(registry.StateChange){e.listener(i)}, Logger: slog.New(slog.DiscardHandler)}
		if e.flaky != nil {
			cfg.Store = e.flaky
			if !h.RealTime {
				// Store operations take no fake time: a timeout of 1ns
				// never ends one, and keeps a replica's wait after a full
				// half-open within one instant.
				cfg.StoreTimeout = time.Nanosecond
			}
		}
		r := registry.New(cfg)
		t.Cleanup(func() { r.Close() })
		b, err := r.Breaker("conformance", s)
		if err != nil {
			t.Fatalf("replica %d: Breaker: %v", i, err)
		}
		e.regs = append(e.regs, r)
		e.bs = append(e.bs, b)
	}
	e.m = newModel(e.bs[0].Settings(), e.flaky != nil)
	e.settle()
	return e
}

func (e *env) listener(i int) func(registry.StateChange) {
	return func(c registry.StateChange) {
		e.mu.Lock()
		e.heard[i] = append(e.heard[i], c)
		boom := e.panics[i]
		delete(e.panics, i)
		e.mu.Unlock()
		if boom {
			panic(errListener)
		}
	}
}

var errListener = errors.New("registrytest: listener panic")

// settle lets every change reach every replica: in fake time, until every
// goroutine of the bubble is blocked; in real time, for a tenth of Margin.
func (e *env) settle() {
	if e.h.RealTime {
		time.Sleep(e.h.Margin / 10)
		return
	}
	synctest.Wait()
}

// sleep lets d pass, then settles.
func (e *env) sleep(d time.Duration) {
	time.Sleep(d)
	e.settle()
}

// call makes one call through the first replica's breaker with outcome o,
// and the same on the model; it reports whether the call was admitted.
func (e *env) call(o registry.Outcome) bool {
	e.t.Helper()
	epoch, state, ok := e.m.allow()
	tk, err := e.bs[0].Allow()
	if !e.admission(err, state, ok) {
		return false
	}
	e.bs[0].Done(tk, o)
	e.m.done(epoch, o)
	e.settle()
	e.check()
	return true
}

// begin admits a call through the first replica and holds it.
func (e *env) begin() bool {
	e.t.Helper()
	epoch, state, ok := e.m.allow()
	tk, err := e.bs[0].Allow()
	if !e.admission(err, state, ok) {
		return false
	}
	e.held = append(e.held, heldCall{epoch: epoch, tk: tk})
	e.check()
	return true
}

// finish ends held call i with outcome o.
func (e *env) finish(i int, o registry.Outcome) {
	e.t.Helper()
	h := e.held[i]
	e.held = append(e.held[:i], e.held[i+1:]...)
	e.bs[0].Done(h.tk, o)
	e.m.done(h.epoch, o)
	e.settle()
	e.check()
}

// reset and trip drive replica i's breaker, and the model.
func (e *env) reset(i int) {
	e.t.Helper()
	e.bs[i].Reset()
	e.m.reset()
	e.settle()
	e.check()
}

func (e *env) trip(i int) {
	e.t.Helper()
	e.bs[i].Trip()
	e.m.trip()
	e.settle()
	e.check()
}

// admission checks the breaker's answer to Allow against the model's.
func (e *env) admission(err error, state registry.State, ok bool) bool {
	e.t.Helper()
	if ok {
		if err != nil {
			e.t.Fatalf("step %d: Allow = %v, the model admits the call in %v", e.steps, err, state)
		}
		return true
	}
	ce, isOpen := errors.AsType[*registry.CircuitOpenError](err)
	if !isOpen {
		e.t.Fatalf("step %d: Allow err = %v, want a *CircuitOpenError (model: %v)", e.steps, err, state)
	}
	if ce.State != state {
		e.t.Fatalf("step %d: rejection state = %v, want %v", e.steps, ce.State, state)
	}
	want := gobreaker.ErrOpenState
	if state == registry.StateHalfOpen {
		want = gobreaker.ErrTooManyRequests
	}
	if !errors.Is(err, want) || !errors.Is(err, registry.ErrOpen) {
		e.t.Fatalf("step %d: err = %v, want it to match %v and ErrOpen", e.steps, err, want)
	}
	if state == registry.StateOpen && !e.h.RealTime {
		if got, want := ce.HalfOpenAt, e.m.openedAt.Add(e.m.s.ResetTimeout); !got.Equal(want) {
			e.t.Fatalf("step %d: HalfOpenAt = %v, want %v", e.steps, got, want)
		}
	}
	return false
}

// check compares the breakers with the model: the first replica's state
// and counts, every other replica's state.
func (e *env) check() {
	e.t.Helper()
	e.steps++
	e.m.now()
	if e.m.shared {
		// In real time a change made on another replica reaches this one
		// through the store's push, within the harness's Margin.
		e.eventually(func() bool { return e.bs[0].State() == e.m.state })
	}
	s := e.bs[0].Snapshot()
	if s.State != e.m.state {
		e.t.Fatalf("step %d: state = %v, want %v", e.steps, s.State, e.m.state)
	}
	if got := e.bs[0].State(); got != e.m.state {
		e.t.Fatalf("step %d: State() = %v, want %v", e.steps, got, e.m.state)
	}
	if s.ConsecutiveFailures != e.m.streak {
		e.t.Fatalf("step %d: consecutive failures = %d, want %d", e.steps, s.ConsecutiveFailures, e.m.streak)
	}
	failures := e.m.failures
	if e.m.shared {
		failures = e.m.streak // a shared breaker's snapshot: the fleet's streak
	}
	if e.m.s.FailureRatio == 0 && s.TotalFailures != failures {
		// (With the ratio rule, a closed breaker's counts are the window's.)
		e.t.Fatalf("step %d: failures = %d, want %d", e.steps, s.TotalFailures, failures)
	}
	switch e.m.state {
	case registry.StateHalfOpen:
		requests := e.m.requests
		if e.m.shared {
			requests = e.m.slots // the fleet's probe slots taken
		} else if s.TotalExclusions != e.m.exclusions {
			e.t.Fatalf("step %d: half-open exclusions = %d, want %d", e.steps, s.TotalExclusions, e.m.exclusions)
		}
		// A push may bring a Load older than the last Record's answer of
		// the same generation: a shared breaker's half-open counts are
		// only as last known, so they are compared for local breakers.
		if !e.m.shared && (s.Requests != requests || s.TotalSuccesses != e.m.successes) {
			e.t.Fatalf("step %d: half-open requests, successes = %d, %d, want %d, %d", e.steps, s.Requests, s.TotalSuccesses, requests, e.m.successes)
		}
	case registry.StateOpen:
		if !e.h.RealTime {
			if want := time.Until(e.m.openedAt.Add(e.m.s.ResetTimeout)); s.UntilHalfOpen != want {
				e.t.Fatalf("step %d: UntilHalfOpen = %v, want %v", e.steps, s.UntilHalfOpen, want)
			}
			if !s.OpenedAt.Equal(e.m.openedAt) {
				e.t.Fatalf("step %d: OpenedAt = %v, want %v", e.steps, s.OpenedAt, e.m.openedAt)
			}
		}
	}
	for i, b := range e.bs[1:] {
		if !e.eventually(func() bool { return b.State() == e.m.state }) {
			e.t.Fatalf("step %d: replica %d: state = %v, want %v", e.steps, i+1, b.State(), e.m.state)
		}
	}
}

// eventually reports whether cond holds: at once in fake time (the
// bubble has settled), within Margin in real time.
func (e *env) eventually(cond func() bool) bool {
	if !e.h.RealTime {
		return cond()
	}
	deadline := time.Now().Add(e.h.Margin)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// drain ends the calls still held, as successes.
func (e *env) drain() {
	for len(e.held) > 0 {
		e.finish(0, registry.Success)
	}
}

// wantState fails the test unless the first replica is in state s.
func (e *env) wantState(what string, s registry.State) {
	e.t.Helper()
	if got := e.bs[0].State(); got != s {
		e.t.Fatalf("%s: state = %v, want %v", what, got, s)
	}
}

func testConsecutive(t *testing.T, h Harness) {
	e := newEnv(t, t, h, h.settings())
	e.call(registry.Failure)
	e.call(registry.Failure)
	e.call(registry.Excluded) // counts neither way: the streak goes on
	e.call(registry.Success)  // clears the streak
	e.call(registry.Failure)
	e.call(registry.Failure)
	e.wantState("2 consecutive failures of 3", registry.StateClosed)
	e.call(registry.Failure)
	e.wantState("3 consecutive failures of 3", registry.StateOpen)
	if e.call(registry.Success) {
		t.Fatal("open breaker admitted a call")
	}
}

func testRatio(t *testing.T, h Harness) {
	s := h.settings()
	s.FailureThreshold, s.FailureRatio, s.MinRequests = 100, 0.5, 4
	s.Window, s.WindowBuckets = 10*s.ResetTimeout, 10
	if h.NewStore != nil {
		st := h.NewStore(t)
		r := registry.New(registry.Config{Store: st})
		defer r.Close()
		if _, err := r.Breaker("ratio", s); !errors.Is(err, registry.ErrInvalidSettings) {
			t.Fatalf("Breaker with FailureRatio on a store: err = %v, want ErrInvalidSettings", err)
		}
		return
	}
	e := newEnv(t, t, h, s)
	e.call(registry.Success)
	e.call(registry.Failure)
	e.call(registry.Success)
	e.call(registry.Excluded)
	e.wantState("1 failure of 3 outcomes", registry.StateClosed)
	e.call(registry.Failure) // 2 of 4: the ratio is reached
	e.wantState("2 failures of 4 outcomes", registry.StateOpen)
	e.sleep(s.ResetTimeout)
	e.call(registry.Success)
	e.call(registry.Success)
	e.wantState("2 successful probes", registry.StateClosed)
	// The window rolls: old outcomes leave it.
	e.call(registry.Failure)
	e.call(registry.Success)
	e.call(registry.Success)
	e.sleep(s.Window)
	e.call(registry.Failure)
	e.call(registry.Failure)
	e.call(registry.Success)
	e.wantState("the earlier outcomes have left the window", registry.StateClosed)
	e.call(registry.Failure)
	e.wantState("3 failures of 4 in the window", registry.StateOpen)
}

func testHeldCalls(t *testing.T, h Harness) {
	s := h.settings()
	e := newEnv(t, t, h, s)
	last := len(e.bs) - 1
	e.begin()
	e.begin()
	e.begin()
	e.call(registry.Failure)
	e.trip(last) // the held calls are from before the trip
	e.finish(0, registry.Failure)
	e.wantState("a failure from before the trip", registry.StateOpen)
	e.reset(0)
	e.finish(0, registry.Failure) // from before the reset: no streak
	e.finish(0, registry.Success)
	// Held probes across a state change.
	e.trip(0)
	e.sleep(s.ResetTimeout)
	e.begin()
	e.begin()
	e.trip(last)
	e.finish(0, registry.Success) // from the half-open spell before the trip
	e.wantState("a probe from before the trip", registry.StateOpen)
	e.sleep(s.ResetTimeout)
	e.begin()
	e.call(registry.Failure) // the probe's spell ends
	e.finish(0, registry.Success)
	e.drain()
	e.wantState("a probe from before the failure", registry.StateOpen)
}

func testReset(t *testing.T, h Harness) {
	s := h.settings()
	e := newEnv(t, t, h, s)
	e.call(registry.Failure)
	e.call(registry.Failure)
	e.reset(len(e.bs) - 1) // clears the streak
	e.call(registry.Failure)
	e.call(registry.Failure)
	e.wantState("2 failures after the reset", registry.StateClosed)
	e.call(registry.Failure)
	e.reset(0)
	e.wantState("reset while open", registry.StateClosed)
	e.trip(0)
	e.sleep(s.ResetTimeout)
	e.call(registry.Success)
	e.reset(0)
	e.wantState("reset while half-open", registry.StateClosed)
	e.reset(0) // a reset while closed changes nothing
	if n := e.heardBy(0); n != 5 {
		t.Errorf("changes heard = %d, want 5", n)
	}
}

func testTrip(t *testing.T, h Harness) {
	s := h.settings()
	e := newEnv(t, t, h, s)
	e.trip(0)
	opened := e.bs[0].Snapshot().OpenedAt
	e.sleep(s.ResetTimeout / 2)
	e.trip(len(e.bs) - 1) // already open: nothing changes
	if got := e.bs[0].Snapshot().OpenedAt; !got.Equal(opened) {
		t.Errorf("Trip while open moved OpenedAt from %v to %v", opened, got)
	}
	e.sleep(s.ResetTimeout / 2)
	e.begin()
	e.trip(0) // half-open: opens again, for a whole ResetTimeout
	e.drain()
	e.sleep(s.ResetTimeout / 2)
	e.wantState("half a ResetTimeout after the trip", registry.StateOpen)
	e.sleep(s.ResetTimeout / 2)
	e.call(registry.Success)
	e.call(registry.Success)
	e.wantState("2 probes after the trip", registry.StateClosed)
}

func testResetTimeoutEdges(t *testing.T, h Harness) {
	s := h.settings()
	e := newEnv(t, t, h, s)
	before, after := time.Nanosecond, time.Duration(0)
	if h.RealTime {
		before, after = h.Margin, h.Margin
	}
	for range 2 {
		e.trip(0)
		start := time.Now()
		e.sleep(s.ResetTimeout - before)
		if e.call(registry.Success) {
			t.Fatalf("call %v after the trip (ResetTimeout %v) admitted", time.Since(start), s.ResetTimeout)
		}
		e.sleep(before + after)
		if !e.call(registry.Success) {
			t.Fatalf("call %v after the trip (ResetTimeout %v) rejected", time.Since(start), s.ResetTimeout)
		}
		if !h.RealTime {
			if got := time.Since(start); got != s.ResetTimeout {
				t.Fatalf("first probe %v after the trip, want exactly %v", got, s.ResetTimeout)
			}
		}
		e.call(registry.Failure) // opens again at once, for a whole ResetTimeout
		e.sleep(s.ResetTimeout - before)
		e.wantState("just before ResetTimeout after the failed probe", registry.StateOpen)
		e.sleep(before + after)
		e.wantState("ResetTimeout after the failed probe", registry.StateHalfOpen)
		e.reset(0)
	}
}

func testHalfOpenProbes(t *testing.T, h Harness) {
	s := h.settings()
	e := newEnv(t, t, h, s)
	e.trip(0)
	e.sleep(s.ResetTimeout + time.Nanosecond)
	e.begin()
	e.begin()
	if e.begin() {
		t.Fatal("a third probe admitted with SuccessThreshold 2")
	}
	e.finish(0, registry.Excluded) // frees its slot
	e.begin()
	e.finish(0, registry.Success)
	e.wantState("1 successful probe of 2", registry.StateHalfOpen)
	e.finish(0, registry.Success)
	e.wantState("2 successful probes", registry.StateClosed)
	// A failed probe opens it again.
	e.trip(0)
	e.sleep(s.ResetTimeout)
	e.begin()
	e.begin()
	e.finish(1, registry.Failure)
	e.wantState("a failed probe", registry.StateOpen)
	e.drain()
}

func testListeners(t *testing.T, h Harness) {
	s := h.settings()
	e := newEnv(t, t, h, s)
	e.trip(0)
	e.sleep(s.ResetTimeout)
	e.call(registry.Success)
	e.call(registry.Success)
	want := []struct{ from, to registry.State }{
		{registry.StateClosed, registry.StateOpen},
		{registry.StateOpen, registry.StateHalfOpen},
		{registry.StateHalfOpen, registry.StateClosed},
	}
	for i := range e.bs {
		e.mu.Lock()
		heard := e.heard[i]
		e.mu.Unlock()
		if len(heard) != len(want) {
			t.Fatalf("replica %d heard %d changes, want %d: %v", i, len(heard), len(want), heard)
		}
		for j, c := range heard {
			if c.Name != "conformance" || c.From != want[j].from || c.To != want[j].to {
				t.Errorf("replica %d change %d = %+v, want %v -> %v", i, j, c, want[j].from, want[j].to)
			}
		}
	}
	// A listener's panic on the caller's goroutine goes on to the caller;
	// on the breaker's timer it is logged. Either way the breaker goes on.
	e.trip(0)
	e.arm(0)
	e.sleep(s.ResetTimeout) // the timer half-opens it: the panic is logged
	e.begin()
	e.begin()
	e.finish(0, registry.Success)
	e.arm(0)
	h1 := e.held[0]
	e.held = e.held[1:]
	raised := func() (raised bool) {
		defer func() {
			if v := recover(); v != nil {
				if v != errListener {
					panic(v)
				}
				raised = true
			}
		}()
		e.bs[0].Done(h1.tk, registry.Success) // closes it
		return false
	}()
	e.m.done(h1.epoch, registry.Success)
	e.settle()
	e.check()
	// A store's push may bring the change to a shared breaker before the
	// Record's answer does (the store's watcher runs on a goroutine of its
	// own, in fake time too): then it is heard, and the panic logged, on the
	// registry's goroutine. A local breaker must raise it on the caller's.
	if !raised && !e.m.shared {
		t.Error("a listener's panic in Done did not reach the caller")
	}
	for i := range e.bs {
		if n := e.heardBy(i); n != 2*len(want) {
			t.Errorf("replica %d heard %d changes, want %d", i, n, 2*len(want))
		}
	}
}

// arm makes replica i's listener panic at the next change it hears.
func (e *env) arm(i int) {
	e.mu.Lock()
	e.panics[i] = true
	e.mu.Unlock()
}

// heardBy returns the number of changes replica i's listener heard.
func (e *env) heardBy(i int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.heard[i])
}

func testReplicas(t *testing.T, h Harness) {
	s := h.settings()
	e := newEnv(t, t, h, s)
	// Failures are counted fleet-wide: one from each replica opens it.
	m := e.m
	for i := range s.FailureThreshold {
		b := e.bs[i%len(e.bs)]
		tk, err := b.Allow()
		if err != nil {
			t.Fatalf("failure %d: Allow = %v", i+1, err)
		}
		epoch, _, _ := m.allow()
		b.Done(tk, registry.Failure)
		m.done(epoch, registry.Failure)
		e.settle()
	}
	if len(e.bs) > 1 && s.FailureThreshold > 1 {
		e.check() // open everywhere
	}
	e.wantState("FailureThreshold failures across the fleet", registry.StateOpen)
	for i := range e.bs {
		if !e.eventually(func() bool { return e.bs[i].State() == registry.StateOpen }) {
			t.Errorf("replica %d: state = %v, want open", i, e.bs[i].State())
		}
	}
	e.reset(len(e.bs) - 1)
	if ss, ok := e.regs[0].StoreStats(); !ok || !ss.Healthy {
		t.Errorf("StoreStats = %+v, %v, want healthy", ss, ok)
	}
}

func testConflict(t *testing.T, h Harness) {
	s := h.settings()
	e := newEnv(t, t, h, s)
	e.call(registry.Failure) // the store keeps the settings' fingerprint
	var mu sync.Mutex
	var statuses []registry.StoreStatus
	other := s
	other.FailureThreshold++
	r := registry.New(registry.Config{Store: e.flaky, StoreTimeout: e.storeTimeout(), OnStoreStatus: func(st registry.StoreStatus) {
		mu.Lock()
		statuses = append(statuses, st)
		mu.Unlock()
	}})
	defer r.Close()
	b, err := r.Breaker("conformance", other)
	if err != nil {
		t.Fatalf("Breaker with other settings on the store: %v (a store conflict is reported, not returned)", err)
	}
	for range other.FailureThreshold {
		if tk, err := b.Allow(); err == nil {
			b.Done(tk, registry.Failure)
		}
	}
	if got := b.State(); got != registry.StateOpen {
		t.Errorf("breaker with other settings after %d failures: state = %v, want open (decided locally)", other.FailureThreshold, got)
	}
	e.settle()
	if !e.eventually(func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(statuses) > 0
	}) {
		t.Fatal("no status reported for the conflict")
	}
	mu.Lock()
	st := statuses[0]
	mu.Unlock()
	if _, ok := errors.AsType[*registry.KeyError](st.Err); !ok || st.Healthy || st.Name != "conformance" || !errors.Is(st.Err, registry.ErrConflict) {
		t.Errorf("status = %+v, want unhealthy naming \"conformance\" with a *KeyError matching ErrConflict", st)
	}
	e.wantState("the replicas with the store's settings", registry.StateClosed)
	e.check()
}

// storeTimeout is the StoreTimeout the suite gives registries.
func (e *env) storeTimeout() time.Duration {
	if e.h.RealTime {
		return 0
	}
	return time.Nanosecond
}

func testStoreOutage(t *testing.T, h Harness) {
	s := h.settings()
	e := newEnv(t, t, h, s)
	resync := registry.DefaultResyncInterval
	outage := func(what string, f func()) {
		t.Helper()
		e.flaky.SetDown(true)
		f()
		if ss, _ := e.regs[0].StoreStats(); ss.Healthy || ss.Errors == 0 {
			t.Errorf("%s: StoreStats = %+v, want unhealthy with errors", what, ss)
		}
		e.flaky.SetDown(false)
		e.sleep(resync + e.h.Margin) // a resync finds the store again
		if ss, _ := e.regs[0].StoreStats(); !ss.Healthy {
			t.Errorf("%s, after the outage: StoreStats = %+v, want healthy", what, ss)
		}
	}
	// Locally decided: the consecutive rule, half-open, probes.
	outage("consecutive rule while the store is down", func() {
		for range s.FailureThreshold {
			tk, err := e.bs[0].Allow()
			if err != nil {
				t.Fatalf("closed breaker while the store is down: Allow = %v", err)
			}
			e.bs[0].Done(tk, registry.Failure)
		}
		e.wantState("FailureThreshold failures decided locally", registry.StateOpen)
		e.sleep(s.ResetTimeout + e.h.Margin)
		e.wantState("ResetTimeout later", registry.StateHalfOpen)
		var tks []registry.Ticket
		for range s.SuccessThreshold {
			tk, err := e.bs[0].Allow()
			if err != nil {
				t.Fatalf("half-open probe while the store is down: %v", err)
			}
			tks = append(tks, tk)
		}
		if _, err := e.bs[0].Allow(); !errors.Is(err, registry.ErrOpen) {
			t.Fatalf("a probe past SuccessThreshold while the store is down: err = %v, want ErrOpen", err)
		}
		e.bs[0].Done(tks[0], registry.Excluded)
		tk, err := e.bs[0].Allow()
		if err != nil {
			t.Fatalf("probe after an excluded one while the store is down: %v", err)
		}
		tks[0] = tk
		for _, tk := range tks {
			e.bs[0].Done(tk, registry.Success)
		}
		e.wantState("SuccessThreshold probes decided locally", registry.StateClosed)
		e.bs[0].Trip()
		e.wantState("Trip while the store is down", registry.StateOpen)
		e.sleep(s.ResetTimeout + e.h.Margin)
		tk, err = e.bs[0].Allow()
		if err != nil {
			t.Fatalf("probe after a local trip: %v", err)
		}
		e.bs[0].Done(tk, registry.Failure)
		e.wantState("a failed probe decided locally", registry.StateOpen)
		e.bs[0].Reset()
		e.wantState("Reset while the store is down", registry.StateClosed)
		e.bs[0].Trip()
	})
	// The store's state wins after the outage: it never heard of the trip.
	e.m = newModel(s, true)
	e.check()
	// The store fails in the middle of a call: the outcome is decided
	// locally.
	e.call(registry.Failure)
	tk, err := e.bs[0].Allow()
	if err != nil {
		t.Fatal(err)
	}
	outage("a failure recorded as the store goes down", func() {
		e.bs[0].Done(tk, registry.Failure)
		if got := e.bs[0].Snapshot().ConsecutiveFailures; got != 2 {
			t.Errorf("streak after a failure decided locally = %d, want 2", got)
		}
	})
	e.m = newModel(s, true)
	e.m.streak = 1 // the store's
	e.check()
	e.reset(0)
	// The store fails as a half-open breaker asks for a probe slot.
	e.trip(0)
	e.sleep(s.ResetTimeout)
	outage("a probe asked for as the store goes down", func() {
		tk, err := e.bs[0].Allow()
		if err != nil {
			t.Fatalf("probe decided locally: %v", err)
		}
		e.bs[0].Done(tk, registry.Failure)
		e.wantState("a failed probe decided locally", registry.StateOpen)
	})
	// What was decided locally is not replayed into the store: a reset
	// brings every replica back to one state.
	e.bs[0].Reset()
	e.m = newModel(s, true)
	e.settle()
	e.check()
}

// testSequences runs random sequences (pgregory.net/rapid: as many as its
// -rapid.checks flag or RAPID_CHECKS says, default 100) of calls (each outcome, held calls
// finishing later), time advances, resets and trips (by any replica)
// against the breakers and the model, and compares them after every step.
// A failing sequence is shrunk by rapid and printed.
func testSequences(t *testing.T, h Harness) {
	var sequences, steps int
	rapid.Check(bubbleTB{t}, func(rt *rapid.T) {
		s := registry.Settings{
			FailureThreshold: rapid.IntRange(1, 5).Draw(rt, "failure_threshold"),
			SuccessThreshold: rapid.IntRange(1, 4).Draw(rt, "success_threshold"),
			// Reset timeouts of tens of milliseconds keep the fake time
			// of thousands of sequences under rapid's 24h limit (which it
			// reads from the bubble's fake clock).
			ResetTimeout: time.Duration(rapid.IntRange(1, 5).Draw(rt, "reset_timeout_10ms")) * 10 * time.Millisecond,
		}
		if h.NewStore == nil && rapid.Bool().Draw(rt, "ratio_rule") {
			s.FailureRatio = float64(rapid.IntRange(1, 4).Draw(rt, "failure_ratio_quarters")) / 4
			s.MinRequests = rapid.IntRange(1, 6).Draw(rt, "min_requests")
			s.Window, s.WindowBuckets = 100*time.Millisecond, rapid.IntRange(2, 5).Draw(rt, "window_buckets")
		}
		e := newEnv(rt, t, h, s)
		defer e.drain()
		sequences++
		outcome := rapid.SampledFrom([]registry.Outcome{registry.Success, registry.Failure, registry.Excluded})
		replica := rapid.IntRange(0, len(e.bs)-1)
		rt.Repeat(map[string]func(*rapid.T){
			"call": func(rt *rapid.T) { e.call(outcome.Draw(rt, "outcome")) },
			"begin": func(rt *rapid.T) {
				if len(e.held) >= 6 {
					rt.Skip("enough calls in flight")
				}
				e.begin()
			},
			"finish": func(rt *rapid.T) {
				if len(e.held) == 0 {
					rt.Skip("no call in flight")
				}
				e.finish(rapid.IntRange(0, len(e.held)-1).Draw(rt, "held"), outcome.Draw(rt, "held_outcome"))
			},
			"advance": func(rt *rapid.T) {
				d := e.m.s.ResetTimeout
				e.sleep(rapid.SampledFrom([]time.Duration{time.Nanosecond, time.Millisecond, d / 2, d - time.Nanosecond, d, d + time.Nanosecond, 2 * d}).Draw(rt, "advance"))
				e.check()
			},
			"reset": func(rt *rapid.T) { e.reset(replica.Draw(rt, "replica")) },
			"trip":  func(rt *rapid.T) { e.trip(replica.Draw(rt, "replica")) },
		})
		steps += e.steps
	})
	t.Logf("%d sequences, %d steps checked", sequences, steps)
}

// bubbleTB is a *testing.T that rapid does not recognise as one: rapid
// asks a *testing.T for its deadline, which is not allowed in a bubble.
type bubbleTB struct{ *testing.T }
