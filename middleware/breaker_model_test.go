package middleware_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"
	"pgregory.net/rapid"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// breakerModel is the guide's circuit breaker written plainly: the reference
// TestBreakerModel checks registry.Breaker and middleware.CircuitBreaker
// against. It follows the state machine of the guide and the documented
// rules: FailureThreshold consecutive failures open a closed breaker; it is
// half-open at exactly ResetTimeout after opening; half-open admits up to
// SuccessThreshold probes at once (an excluded probe frees its slot), the
// SuccessThreshold-th success closes it and a failure opens it; excluded
// outcomes (cancellations, errors the breaker does not watch) count neither
// way; outcomes of calls admitted before a state change or a reset change
// nothing; Reset closes and clears; Trip opens.
type breakerModel struct {
	failureThreshold, successThreshold int
	resetTimeout                       time.Duration

	state    registry.State
	epoch    int       // bumped at every state change and reset
	streak   int       // consecutive failures, closed only
	failures int       // failures recorded since the last state change or reset
	openedAt time.Time // when the breaker last opened

	// half-open counts, since the breaker half-opened
	requests, successes, exclusions int
}

// now brings the model up to the present: an open breaker whose reset
// timeout has passed is half-open.
func (m *breakerModel) now() {
	if m.state == registry.StateOpen && !time.Now().Before(m.openedAt.Add(m.resetTimeout)) {
		m.setState(registry.StateHalfOpen)
	}
}

func (m *breakerModel) setState(s registry.State) {
	m.state = s
	m.epoch++
	m.streak, m.failures = 0, 0
	m.requests, m.successes, m.exclusions = 0, 0, 0
	if s == registry.StateOpen {
		m.openedAt = time.Now()
	}
}

// allow returns the epoch of an admitted call and true, or the state that
// rejects it and false.
func (m *breakerModel) allow() (int, registry.State, bool) {
	m.now()
	switch m.state {
	case registry.StateOpen:
		return 0, registry.StateOpen, false
	case registry.StateHalfOpen:
		if m.requests-m.exclusions >= m.successThreshold {
			return 0, registry.StateHalfOpen, false
		}
		m.requests++
	}
	return m.epoch, m.state, true
}

// done records the outcome of a call admitted in epoch.
func (m *breakerModel) done(epoch int, o registry.Outcome) {
	m.now()
	if epoch != m.epoch {
		return
	}
	switch o {
	case registry.Success:
		m.streak = 0
		if m.state == registry.StateHalfOpen {
			m.successes++
			if m.successes >= m.successThreshold {
				m.setState(registry.StateClosed)
			}
		}
	case registry.Failure:
		if m.state == registry.StateHalfOpen {
			m.setState(registry.StateOpen)
			return
		}
		m.streak++
		m.failures++
		if m.streak >= m.failureThreshold {
			m.setState(registry.StateOpen)
		}
	case registry.Excluded:
		if m.state == registry.StateHalfOpen {
			m.exclusions++
		}
	}
}

func (m *breakerModel) reset() {
	m.setState(registry.StateClosed)
}

func (m *breakerModel) trip() {
	m.now()
	if m.state != registry.StateOpen {
		m.setState(registry.StateOpen)
	}
}

// The outcomes an operation asks the endpoint for.
type modelOutcome int

const (
	outSuccess   modelOutcome = iota
	outFailure                // an error in FailOn
	outUnwatched              // an error in neither FailOn nor FailIf
	outCancel                 // the caller cancels; the endpoint returns ctx.Err()
	outDeadline               // the caller's deadline passes; the endpoint returns ctx.Err()
	outPanic                  // the endpoint panics
	outCount
)

func (o modelOutcome) String() string {
	return [...]string{"success", "failure", "unwatched error", "cancel", "caller deadline", "panic"}[o]
}

var (
	errWatched   = errors.New("model: watched error")
	errUnwatched = errors.New("model: unwatched error")
)

// expected returns the outcome the breaker must record for o.
func (o modelOutcome) expected(failOnAll bool) registry.Outcome {
	switch o {
	case outSuccess:
		return registry.Success
	case outFailure, outPanic:
		return registry.Failure
	case outUnwatched:
		if failOnAll {
			return registry.Failure
		}
	}
	return registry.Excluded
}

// heldCall is a call admitted and still running in the endpoint.
type heldCall struct {
	epoch   int
	outcome chan modelOutcome
	cancel  context.CancelFunc
	done    chan struct{}
}

// modelRun is one sequence: the breaker under test, its model and the calls
// in flight.
type modelRun struct {
	m         breakerModel
	b         *registry.Breaker
	ep        func(ctx context.Context, o modelOutcome, hold chan modelOutcome) (called bool, err error, panicked bool)
	failOnAll bool
	held      []*heldCall
	steps     int
}

func newModelRun(t *rapid.T) *modelRun {
	ft := rapid.IntRange(1, 5).Draw(t, "failure_threshold")
	st := rapid.IntRange(1, 4).Draw(t, "success_threshold")
	// Reset timeouts of tens of milliseconds keep the fake time of 10,000
	// sequences of 500 steps under rapid's 24h limit (which it reads from
	// the bubble's fake clock).
	rt := time.Duration(rapid.IntRange(1, 5).Draw(t, "reset_timeout_10ms")) * 10 * time.Millisecond
	failOnAll := rapid.Bool().Draw(t, "fail_on_every_error")
	reg := registry.New(registry.Config{})
	cfg := middleware.BreakerConfig{Registry: reg, FailureThreshold: ft, SuccessThreshold: st, ResetTimeout: rt, Observer: quiet}
	if !failOnAll {
		cfg.FailOn = []error{errWatched}
	}
	mw := middleware.CircuitBreaker("model", cfg)
	b, ok := reg.Get("model")
	if !ok {
		t.Fatalf("registry has no breaker after CircuitBreaker")
	}
	r := &modelRun{
		m:         breakerModel{failureThreshold: ft, successThreshold: st, resetTimeout: rt},
		b:         b,
		failOnAll: failOnAll,
	}
	r.ep = func(ctx context.Context, o modelOutcome, hold chan modelOutcome) (called bool, err error, panicked bool) {
		inner := mw(func(ctx context.Context, _ any) (any, error) {
			called = true
			if hold != nil {
				o = <-hold
			}
			switch o {
			case outSuccess:
				return "ok", nil
			case outFailure:
				return nil, errWatched
			case outUnwatched:
				return nil, errUnwatched
			case outCancel, outDeadline:
				<-ctx.Done()
				return nil, ctx.Err()
			}
			panic(errModelPanic)
		})
		defer func() {
			if v := recover(); v != nil {
				if v != errModelPanic {
					panic(v)
				}
				panicked = true
			}
		}()
		_, err = inner(ctx, nil)
		return called, err, false
	}
	return r
}

var errModelPanic = errors.New("model: panic")

// callCtx returns the caller's context for outcome o: cancelled or past its
// deadline for outCancel and outDeadline (in the instant of the call).
func callCtx(o modelOutcome) (context.Context, context.CancelFunc) {
	switch o {
	case outCancel:
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx, cancel
	case outDeadline:
		return context.WithDeadline(context.Background(), time.Now())
	}
	return context.WithCancel(context.Background())
}

// checkRejection checks a rejected call: no endpoint call, a
// *CircuitOpenError in the model's state.
func (r *modelRun) checkRejection(t *rapid.T, called bool, err error, state registry.State) {
	if called {
		t.Fatalf("step %d: endpoint called while the model rejects (%v)", r.steps, state)
	}
	ce, ok := errors.AsType[*middleware.CircuitOpenError](err)
	if !ok {
		t.Fatalf("step %d: err = %v, want a *CircuitOpenError (model: %v)", r.steps, err, state)
	}
	if ce.State != state {
		t.Fatalf("step %d: rejection state = %v, want %v", r.steps, ce.State, state)
	}
	want := gobreaker.ErrOpenState
	if state == registry.StateHalfOpen {
		want = gobreaker.ErrTooManyRequests
	}
	if !errors.Is(err, want) || !errors.Is(err, middleware.ErrCircuitOpen) {
		t.Fatalf("step %d: err = %v, want it to match %v and ErrCircuitOpen", r.steps, err, want)
	}
	if state == registry.StateOpen {
		if got, want := ce.HalfOpenAt, r.m.openedAt.Add(r.m.resetTimeout); !got.Equal(want) {
			t.Fatalf("step %d: HalfOpenAt = %v, want %v", r.steps, got, want)
		}
	}
}

func (r *modelRun) call(t *rapid.T) {
	o := modelOutcome(rapid.IntRange(0, int(outCount)-1).Draw(t, "outcome"))
	epoch, state, ok := r.m.allow()
	ctx, cancel := callCtx(o)
	called, err, panicked := r.ep(ctx, o, nil)
	cancel()
	if !ok {
		r.checkRejection(t, called, err, state)
		return
	}
	if !called {
		t.Fatalf("step %d: %v call rejected (%v), model admits it in %v", r.steps, o, err, state)
	}
	if (o == outPanic) != panicked {
		t.Fatalf("step %d: panicked = %v, want %v", r.steps, panicked, o == outPanic)
	}
	r.m.done(epoch, o.expected(r.failOnAll))
}

func (r *modelRun) begin(t *rapid.T) {
	if len(r.held) >= 6 {
		t.Skip("enough calls in flight")
	}
	epoch, state, ok := r.m.allow()
	h := &heldCall{epoch: epoch, outcome: make(chan modelOutcome, 1), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	var called bool
	var err error
	go func() {
		defer close(h.done)
		called, err, _ = r.ep(ctx, outSuccess, h.outcome)
	}()
	synctest.Wait() // the call is either blocked in the endpoint or rejected
	select {
	case <-h.done:
		cancel()
		if ok {
			t.Fatalf("step %d: held call rejected (%v), model admits it in %v", r.steps, err, state)
		}
		r.checkRejection(t, called, err, state)
	default:
		if !ok {
			t.Fatalf("step %d: held call admitted, model rejects it (%v)", r.steps, state)
		}
		r.held = append(r.held, h)
	}
}

func (r *modelRun) finish(t *rapid.T) {
	if len(r.held) == 0 {
		t.Skip("no call in flight")
	}
	i := rapid.IntRange(0, len(r.held)-1).Draw(t, "held")
	o := modelOutcome(rapid.SampledFrom([]modelOutcome{outSuccess, outFailure, outUnwatched, outCancel, outPanic}).Draw(t, "held_outcome"))
	h := r.held[i]
	r.held = append(r.held[:i], r.held[i+1:]...)
	if o == outCancel {
		h.cancel()
	}
	h.outcome <- o
	<-h.done
	h.cancel()
	r.m.done(h.epoch, o.expected(r.failOnAll))
}

func (r *modelRun) advance(t *rapid.T) {
	rt := r.m.resetTimeout
	d := rapid.SampledFrom([]time.Duration{time.Nanosecond, time.Millisecond, rt / 2, rt - time.Nanosecond, rt, rt + time.Nanosecond, 2 * rt}).Draw(t, "advance")
	time.Sleep(d)
	synctest.Wait() // the breaker's half-open timer has run
}

// check compares the breaker with the model, after every step.
func (r *modelRun) check(t *rapid.T) {
	r.steps++
	r.m.now()
	s := r.b.Snapshot()
	if s.State != r.m.state {
		t.Fatalf("step %d: state = %v, want %v", r.steps, s.State, r.m.state)
	}
	if got := r.b.State(); got != r.m.state {
		t.Fatalf("step %d: State() = %v, want %v", r.steps, got, r.m.state)
	}
	got := [4]int{s.ConsecutiveFailures, s.TotalFailures}
	want := [4]int{r.m.streak, r.m.failures}
	switch r.m.state {
	case registry.StateHalfOpen:
		// Every count is exact in half-open.
		got[2], got[3] = s.Requests, s.TotalSuccesses
		want[2], want[3] = r.m.requests, r.m.successes
		if s.TotalExclusions != r.m.exclusions {
			t.Fatalf("step %d: half-open exclusions = %d, want %d", r.steps, s.TotalExclusions, r.m.exclusions)
		}
	case registry.StateOpen:
		if want := time.Until(r.m.openedAt.Add(r.m.resetTimeout)); s.UntilHalfOpen != want {
			t.Fatalf("step %d: UntilHalfOpen = %v, want %v", r.steps, s.UntilHalfOpen, want)
		}
		if !s.OpenedAt.Equal(r.m.openedAt) {
			t.Fatalf("step %d: OpenedAt = %v, want %v", r.steps, s.OpenedAt, r.m.openedAt)
		}
	}
	if got != want {
		t.Fatalf("step %d: [consecutive failures, failures, half-open requests, half-open successes] = %v, want %v (state %v)", r.steps, got, want, r.m.state)
	}
}

// drain ends the calls still in flight, so that no goroutine outlives the
// sequence.
func (r *modelRun) drain() {
	for _, h := range r.held {
		h.outcome <- outSuccess
		<-h.done
		h.cancel()
	}
	r.held = nil
}

// modelChecks sets rapid's number of sequences and their average length
// for `make test` (1,000 of about 100 steps), unless the command line or
// RAPID_CHECKS / RAPID_STEPS asked for others (`make soak`: 10,000 of 500).
func modelChecks(t *testing.T) {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range map[string]string{"rapid.checks": "1000", "rapid.steps": "100"} {
		env := "RAPID_" + map[string]string{"rapid.checks": "CHECKS", "rapid.steps": "STEPS"}[name]
		if _, ok := os.LookupEnv(env); ok || set[name] {
			continue
		}
		if err := flag.Set(name, v); err != nil {
			t.Fatalf("flag.Set(%s): %v", name, err)
		}
	}
}

// TestBreakerModel runs random sequences of calls (each outcome, held calls
// finishing later), time advances, resets and trips against a breaker and
// its model, in fake time, and compares state and counts after every step.
// A failing sequence is shrunk by rapid and printed.
func TestBreakerModel(t *testing.T) {
	modelChecks(t)
	var sequences, steps int
	synctest.Test(t, func(t *testing.T) {
		// rapid asks a *testing.T for its deadline, which is not allowed
		// inside a bubble: hand it the test under another type.
		rapid.Check(bubbleTB{t}, func(rt *rapid.T) {
			r := newModelRun(rt)
			defer r.drain()
			sequences++
			rt.Repeat(map[string]func(*rapid.T){
				"call":    r.call,
				"begin":   r.begin,
				"finish":  r.finish,
				"advance": r.advance,
				"reset": func(*rapid.T) {
					r.b.Reset()
					r.m.reset()
				},
				"trip": func(*rapid.T) {
					r.b.Trip()
					r.m.trip()
				},
				"": r.check,
			})
			steps += r.steps
		})
	})
	t.Logf("breaker model: %d sequences, %d steps checked", sequences, steps)
}

// bubbleTB is a *testing.T that rapid does not recognise as one.
type bubbleTB struct{ *testing.T }
