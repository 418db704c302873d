package registry

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sony/gobreaker/v2"

	"github.com/resiliencekit/resilience/internal/callback"
)

// State is a breaker's state. It prints as "closed", "open" or "half-open".
type State uint8

// The breaker states.
const (
	// StateClosed: calls go through; failures are counted.
	StateClosed State = iota
	// StateOpen: calls are rejected at once with a [*CircuitOpenError].
	StateOpen
	// StateHalfOpen: up to SuccessThreshold probes go through at once; the
	// SuccessThreshold-th success closes the breaker, a failure opens it.
	StateHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	}
	return "unknown"
}

// MarshalText returns the state's name, so states print by name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func stateOf(s gobreaker.State) State {
	switch s {
	case gobreaker.StateOpen:
		return StateOpen
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	}
	return StateClosed
}

// Outcome is how a call admitted by [Breaker.Allow] ended, as reported to
// [Breaker.Done].
type Outcome uint8

// The outcomes.
const (
	// Success: the call succeeded. It clears the failure streak and counts
	// towards closing a half-open breaker.
	Success Outcome = iota
	// Failure: the call failed. It extends the failure streak and opens a
	// half-open breaker.
	Failure
	// Excluded: the call counts neither as a success nor as a failure (the
	// caller cancelled it, or its error is not one the breaker watches). A
	// half-open probe that ends Excluded frees its slot at once.
	Excluded
	// Slow: the call succeeded, but took SlowCallDuration or longer (see
	// [Settings].SlowCallRatio). Closed, it is a success that also counts
	// towards the slow-call rule; half-open, it is a failed probe: the
	// service answers, but not in time. Without the slow-call rule it is a
	// success.
	Slow
)

// Ticket is a call admitted by [Breaker.Allow]; hand it back to
// [Breaker.Done] exactly once with the call's outcome.
type Ticket struct {
	gate uint64      // the gate at admission: epoch<<1, | 1 on the fast path
	done func(error) // gobreaker's, on the slow path
}

// Snapshot is a breaker's state and counts at one instant, for dashboards.
//
// The counts (Requests, TotalSuccesses, TotalFailures, TotalExclusions) are
// gobreaker's: they start from zero at every state change and at a reset,
// and with the ratio rule they cover the rolling window. One thing differs
// from gobreaker: with the consecutive rule alone, a call admitted while the
// breaker is closed and has no failure streak takes a fast path, and if it
// ends in a success or an exclusion it records nothing (recording it would
// cost a write to shared memory on every call). So in the closed state
// Requests, TotalSuccesses and TotalExclusions count only the calls admitted
// while a failure streak was running. TotalFailures, ConsecutiveFailures and
// every count in the half-open state are exact. For true call counts, put a
// Measure layer (package middleware) in front of the breaker.
//
// For a breaker shared through a [Store], the snapshot is this replica's
// view: ConsecutiveFailures and TotalFailures are the fleet's failure streak
// as last known here, and in the half-open state Requests and
// TotalSuccesses are the fleet's probe slots taken and probe successes.
type Snapshot struct {
	// Name is the breaker's name.
	Name string `json:"name"`
	// State is the state current at the call, never a stale open: a
	// breaker whose reset timeout has ended is half-open.
	State State `json:"state"`
	// ConsecutiveFailures is the current failure streak.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// Requests is the number of calls admitted and recorded since the last
	// state change (see the type's comment).
	Requests int `json:"requests"`
	// TotalSuccesses, TotalFailures and TotalExclusions count the outcomes
	// recorded since the last state change (see the type's comment).
	TotalSuccesses  int `json:"total_successes"`
	TotalFailures   int `json:"total_failures"`
	TotalExclusions int `json:"total_exclusions"`
	// OpenedAt is when the breaker last opened; zero while it is closed.
	OpenedAt time.Time `json:"opened_at,omitzero"`
	// UntilHalfOpen is the time left before an open breaker half-opens;
	// zero in the other states.
	UntilHalfOpen time.Duration `json:"until_half_open,omitempty"`
	// Settings are the breaker's settings, defaults applied.
	Settings Settings `json:"settings"`
	// Mode is how the breaker decides: "normal" unless an operator set a
	// manual mode ([Breaker.SetMode]).
	Mode Mode `json:"mode"`
}

// machine is the state machine behind a local Breaker: a gobreaker
// two-step breaker. A breaker of a registry with a [Store] has none: its
// state mirrors the store's (see shared.go), and it decides with the same
// rules locally while the store is unreachable.
type machine interface {
	Allow() (done func(err error), err error)
	State() gobreaker.State
	Counts() gobreaker.Counts
}

// errFailure and errExcluded are what a Breaker tells gobreaker: the
// caller has already classified the outcome.
var (
	errFailure  = errors.New("registry: failure")
	errExcluded = errors.New("registry: excluded")
)

func isExcluded(err error) bool { return err == errExcluded }

// subscription is one subscriber of a breaker: fn, called with every state
// change, and how many Subscribe calls with the same identity hold it.
type subscription struct {
	id   any // the key's identity (see identity); nil: equal to no other
	fn   func(StateChange)
	refs int
}

// window is the ratio rule's rolling window: WindowBuckets buckets of
// Window/WindowBuckets each, in a ring, and their sum. Moving it on costs
// O(1) per bucket that has left the window, and at most one clearing of the
// ring (gobreaker's own rolling window costs O(buckets) per bucket left: up
// to O(buckets²) for one call after a quiet spell). Guarded by the
// breaker's mu.
type window struct {
	period  time.Duration
	start   time.Time // when the bucket of age 0 began
	age     int64     // the age of the current bucket
	buckets []winCounts
	total   winCounts
}

// winCounts are the calls and outcomes one bucket, or the whole window,
// holds.
type winCounts struct{ Requests, Successes, Failures, Exclusions, Slow uint32 }

func newWindow(s Settings) *window {
	return &window{
		period:  s.Window / time.Duration(s.WindowBuckets),
		start:   time.Now(),
		buckets: make([]winCounts, s.WindowBuckets),
	}
}

// reset empties the window, starting now.
func (w *window) reset(now time.Time) {
	clear(w.buckets)
	w.total = winCounts{}
	w.start, w.age = now, 0
}

// current moves the window on to now and returns the current bucket.
func (w *window) current(now time.Time) *winCounts {
	n := int64(len(w.buckets))
	if a := int64(now.Sub(w.start) / w.period); a > w.age {
		if a-w.age >= n {
			clear(w.buckets)
			w.total = winCounts{}
		} else {
			for g := w.age + 1; g <= a; g++ {
				c := &w.buckets[g%n]
				w.total.Requests -= c.Requests
				w.total.Successes -= c.Successes
				w.total.Failures -= c.Failures
				w.total.Exclusions -= c.Exclusions
				w.total.Slow -= c.Slow
				*c = winCounts{}
			}
		}
		w.age = a
	}
	return &w.buckets[w.age%n]
}

// request counts an admitted call.
func (w *window) request(now time.Time) {
	w.current(now).Requests++
	w.total.Requests++
}

// record counts an outcome, in the bucket current now.
func (w *window) record(now time.Time, o Outcome) {
	c := w.current(now)
	switch o {
	case Success:
		c.Successes++
		w.total.Successes++
	case Failure:
		c.Failures++
		w.total.Failures++
	case Slow:
		c.Successes++
		w.total.Successes++
		c.Slow++
		w.total.Slow++
	default:
		c.Exclusions++
		w.total.Exclusions++
	}
}

// Breaker is one named circuit breaker, built on sony/gobreaker v2. Get one
// from a [Registry]. A Breaker is safe for concurrent use.
//
// A call goes through [Breaker.Allow] and [Breaker.Done]; the middleware
// package's CircuitBreaker does that for go-kit endpoints. With the
// consecutive rule alone, a closed breaker with no failure streak admits
// calls on a fast path (no lock, no clock read) and a success there records
// nothing; everything else (a failure, any other state, the
// ratio rule) goes through gobreaker with the same results gobreaker gives.
// An open breaker rejects without a lock, with the same preallocated
// [*CircuitOpenError] for the whole open spell; a call at exactly
// ResetTimeout after the breaker opened is a half-open probe, and a call 1ns
// earlier is rejected, whatever order timers and callers run in. A timer
// moves the breaker to half-open at ResetTimeout even when no call comes; State,
// Snapshot and States never show a stale open.
//
// # Driving a breaker in tests
//
// To test the failure paths of code that uses a breaker, drive the breaker
// to the state you need: [Breaker.Trip] opens it now, [Breaker.Reset] closes
// it, and to reach half-open, Trip it and let ResetTimeout pass (inside a
// [testing/synctest] bubble this takes no real time). Use a registry of the
// test's own ([New]) to keep tests apart.
type Breaker struct {
	name      string
	settings  Settings
	fast      bool // the consecutive rule alone: the fast path may be used
	listeners []func(StateChange)

	// gate is epoch<<1, with the low bit set when the breaker is closed
	// with no failure streak and the fast path may admit calls.
	gate atomic.Uint64
	// mode is the breaker's Mode; not ModeNormal keeps the gate shut.
	mode atomic.Uint32
	// openErr is the rejection of the current open spell; nil unless open.
	openErr atomic.Pointer[CircuitOpenError]
	// clockFree is set while the open spell has more than nearHalfOpen
	// left: rejections then need no clock read. A timer clears it
	// nearHalfOpen before the spell ends; from then on rejections compare
	// the clock with HalfOpenAt, so the spell ends exactly on time.
	clockFree atomic.Bool

	sh  *shared      // nil unless the registry has a Store
	log *slog.Logger // for listener panics on the library's goroutines; nil: slog.Default

	mu         sync.Mutex
	m          machine // nil for a shared breaker
	epoch      uint64  // bumped at every state change and machine swap
	state      State
	streak     int       // consecutive failures in the closed state
	next       *Settings // settings Update left for the next close (a local breaker's SuccessThreshold, ResetTimeout)
	openedAt   time.Time
	halfOpenAt time.Time
	opens      int // opens in a row without a close, for MaxResetTimeout
	timer      *time.Timer
	edge       *time.Timer // clears clockFree near the end of an open spell
	halfErr    *CircuitOpenError
	spellErr   *CircuitOpenError // the rejection of the current open spell
	win        *window           // the ratio rule's window; nil without the ratio rule
	subs       []*subscription   // copy on write: delivery reads it outside the lock
	pending    []StateChange
	delivering bool
}

func newBreaker(name string, s Settings, listeners []func(StateChange)) *Breaker {
	b := &Breaker{name: name, settings: s, fast: !s.windowed(), listeners: listeners}
	if s.windowed() {
		b.win = newWindow(s)
	}
	b.newMachine()
	b.updateGate()
	return b
}

// newMachine swaps in a fresh gobreaker (closed, counts zero). Results of
// calls admitted by the old one are dropped by the epoch check.
func (b *Breaker) newMachine() {
	s := b.settings
	// gobreaker half-opens strictly after its Timeout (expiry.Before(now)),
	// and its Timeout is one for all spells while ours may grow and be
	// jittered. So its Timeout is one nanosecond less than the shortest
	// spell the settings allow: it is ready to half-open at the end of
	// every spell, exactly at the end of the shortest one, and b.halfOpenAt
	// decides when it is asked (see advance). Without the nanosecond a call
	// at exactly ResetTimeout is rejected (TestResetTimeoutExact).
	timeout := s.minOpen() - 1
	gs := gobreaker.Settings{
		Name:          b.name,
		MaxRequests:   uint32(s.SuccessThreshold),
		Timeout:       timeout,
		ReadyToTrip:   b.readyToTrip,
		OnStateChange: b.onStateChange,
		IsExcluded:    isExcluded,
		// No Interval: the ratio rule's window is b.win, whose cost per
		// call does not grow with the number of buckets.
	}
	if b.win != nil {
		b.win.reset(time.Now())
	}
	b.m = gobreaker.NewTwoStepCircuitBreaker[struct{}](gs)
	b.epoch++
}

// readyToTrip runs under gobreaker's lock, called from a goroutine that
// holds b.mu.
func (b *Breaker) readyToTrip(gobreaker.Counts) bool {
	if b.streak >= b.settings.FailureThreshold {
		return true
	}
	if b.win != nil && b.settings.FailureRatio > 0 {
		c := b.win.total
		n := int64(c.Successes) + int64(c.Failures)
		return n > 0 && n >= int64(b.settings.MinRequests) && float64(c.Failures)/float64(n) >= b.settings.FailureRatio
	}
	return false
}

// slowTrip reports whether the slow-call rule trips: the window holds at
// least MinRequests finished calls and the share of slow ones has reached
// SlowCallRatio. Called with b.mu held.
func (b *Breaker) slowTrip() bool {
	if b.win == nil || b.settings.SlowCallRatio == 0 {
		return false
	}
	c := b.win.total
	n := int64(c.Successes) + int64(c.Failures)
	return n > 0 && n >= int64(b.settings.MinRequests) && float64(c.Slow)/float64(n) >= b.settings.SlowCallRatio
}

// onStateChange runs under gobreaker's lock, called from a goroutine that
// holds b.mu. It only updates b's fields and queues the change; flush
// delivers it once the locks are released.
func (b *Breaker) onStateChange(_ string, _, to gobreaker.State) {
	now := time.Now()
	prev, next := b.state, stateOf(to)
	b.state = next
	b.epoch++
	b.streak = 0
	b.stopTimer()
	switch next {
	case StateOpen:
		if prev == StateHalfOpen {
			b.opens++
		} else {
			b.opens = 0
		}
		var u float64
		if b.settings.ResetJitter > 0 {
			u = rand.Float64()
		}
		spell := b.settings.openFor(b.opens, u)
		b.openedAt = now
		b.halfOpenAt = now.Add(spell)
		b.halfErr = nil
		b.spellErr = &CircuitOpenError{Service: b.name, State: StateOpen, OpenedAt: now, HalfOpenAt: b.halfOpenAt}
		b.openErr.Store(b.spellErr)
		ep := b.epoch
		b.armEdge(ep, spell)
		b.timer = time.AfterFunc(spell, func() { b.tick(ep) })
	case StateHalfOpen:
		b.openErr.Store(nil)
		b.spellErr = nil
		b.halfErr = &CircuitOpenError{Service: b.name, State: StateHalfOpen, OpenedAt: b.openedAt, HalfOpenAt: b.halfOpenAt}
	default:
		b.openErr.Store(nil)
		b.halfErr, b.spellErr = nil, nil
		b.openedAt, b.halfOpenAt = time.Time{}, time.Time{}
		b.opens = 0
		if b.win != nil {
			b.win.reset(now)
		}
	}
	if prev != next {
		b.pending = append(b.pending, StateChange{Name: b.name, From: prev, To: next, At: now})
	}
}

func (b *Breaker) stopTimer() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if b.edge != nil {
		b.edge.Stop()
		b.edge = nil
	}
	b.clockFree.Store(false)
}

// nearHalfOpen is how long before the end of an open spell rejections start
// reading the clock.
const nearHalfOpen = 5 * time.Millisecond

// armEdge makes the rejections of the open spell ep, which ends after left,
// clock-free until nearHalfOpen before its end. Called with b.mu held,
// after stopTimer.
func (b *Breaker) armEdge(ep uint64, left time.Duration) {
	if left <= nearHalfOpen {
		return
	}
	b.clockFree.Store(true)
	b.edge = time.AfterFunc(left-nearHalfOpen, func() {
		b.mu.Lock()
		if b.epoch == ep {
			b.clockFree.Store(false)
		}
		b.mu.Unlock()
	})
}

// tick runs when the reset timeout of the open spell ep ends: it moves the
// breaker to half-open, so rejections need no clock read and listeners hear
// of the change when it happens. It runs on the timer's goroutine, the
// library's own: a listener's panic is logged, never raised.
func (b *Breaker) tick(ep uint64) {
	defer callback.Guard(b.log, "registry timer")
	b.mu.Lock()
	if b.epoch == ep && b.sh != nil {
		b.catchUpShared()
		b.updateGate()
	} else if b.epoch == ep && b.state == StateOpen {
		b.advance() // gobreaker half-opens lazily; this makes it do so now
		b.updateGate()
	}
	callback.Log(b.log, b.unlockAndDeliver())
}

// updateGate publishes the epoch and whether the fast path may admit calls.
// Called with b.mu held, after every change.
func (b *Breaker) updateGate() {
	if b.next != nil && b.state == StateClosed {
		b.applySettings(*b.next)
	}
	g := b.epoch << 1
	if b.fast && b.state == StateClosed && b.streak == 0 && b.mode.Load() == uint32(ModeNormal) {
		g |= 1
	}
	b.gate.Store(g)
}

// closeGate stops the fast path before a change that may open the breaker,
// so that no call slips past an open breaker through a stale gate.
func (b *Breaker) closeGate() { b.gate.Store(b.epoch << 1) }

// spellLasts reports whether the breaker is open and its open spell has
// not ended: then gobreaker must not be asked anything that would let it
// half-open (its own timeout is the shortest spell's; see newMachine).
// Called with b.mu held.
func (b *Breaker) spellLasts() bool {
	return b.state == StateOpen && time.Now().Before(b.halfOpenAt)
}

// advance lets gobreaker half-open an open breaker whose spell has ended,
// which it does lazily, on the next question; while the spell lasts it asks
// nothing. Every question to the machine outside Allow and Done goes
// through it. Called with b.mu held, for a local breaker.
func (b *Breaker) advance() {
	if !b.spellLasts() {
		b.m.State()
	}
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// Settings returns the breaker's settings, defaults applied: after
// [Registry.Update], the new ones (even those waiting for the breaker to
// close).
func (b *Breaker) Settings() Settings {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next != nil {
		return *b.next
	}
	return b.settings
}

// Allow asks to make one call. It returns a ticket to hand to [Breaker.Done]
// with the call's outcome, or a [*CircuitOpenError] when the breaker rejects
// the call (then make no call and call no Done). It does not allocate on
// the fast path nor when it rejects; a call admitted through gobreaker (the
// ratio rule, a failure streak, half-open) allocates gobreaker's callback.
func (b *Breaker) Allow() (Ticket, error) {
	if g := b.gate.Load(); g&1 != 0 {
		return Ticket{gate: g}, nil
	}
	if m := b.mode.Load(); m != uint32(ModeNormal) {
		return b.allowMode(context.Background(), Mode(m))
	}
	if e := b.rejection(); e != nil {
		return Ticket{}, e
	}
	return b.allowSlow(context.Background())
}

// rejection returns the rejection of the current open spell while it
// lasts, and nil once its reset timeout has ended (or the breaker is not
// open): then the slow path half-opens the breaker, whether or not its
// timer has run yet. So a call at exactly ResetTimeout is a probe and a
// call 1ns earlier is rejected, in whatever order timers and callers run.
func (b *Breaker) rejection() *CircuitOpenError {
	e := b.openErr.Load()
	if e == nil || b.clockFree.Load() || time.Now().Before(e.HalfOpenAt) {
		return e
	}
	return nil
}

// AllowContext is [Breaker.Allow] with a context that bounds the store
// operation a shared breaker may make (see [Config.Store]): only a half-open
// shared breaker asks the store, for a probe slot. For a breaker without a
// store it is Allow.
func (b *Breaker) AllowContext(ctx context.Context) (Ticket, error) {
	if g := b.gate.Load(); g&1 != 0 {
		return Ticket{gate: g}, nil
	}
	if m := b.mode.Load(); m != uint32(ModeNormal) {
		return b.allowMode(ctx, Mode(m))
	}
	if e := b.rejection(); e != nil {
		return Ticket{}, e
	}
	return b.allowSlow(ctx)
}

// AllowFast is the part of [Breaker.Allow] small enough to be inlined into
// the caller. When the breaker is closed with no failure streak (and uses
// the consecutive rule alone) it admits the call: it returns the ticket and
// true. Otherwise it returns false, and the caller must call Allow (or
// AllowContext), which admits or rejects the call.
func (b *Breaker) AllowFast() (t Ticket, ok bool) {
	t.gate = b.gate.Load()
	return t, t.gate&1 != 0
}

func (b *Breaker) allowSlow(ctx context.Context) (Ticket, error) {
	if b.sh != nil {
		return b.allowShared(ctx)
	}
	b.mu.Lock()
	if g := b.gate.Load(); g&1 != 0 {
		b.mu.Unlock()
		return Ticket{gate: g}, nil
	}
	var done func(error)
	var err error
	if b.spellLasts() {
		err = gobreaker.ErrOpenState
	} else {
		done, err = b.m.Allow()
	}
	t := Ticket{gate: b.epoch << 1, done: done}
	var rej *CircuitOpenError
	if err == nil && b.win != nil && b.state == StateClosed {
		b.win.request(time.Now())
	}
	if err != nil {
		if errors.Is(err, gobreaker.ErrTooManyRequests) {
			rej = b.halfErr
		} else {
			rej = b.spellErr
		}
		if rej == nil { // not expected: the fields follow gobreaker's state
			rej = &CircuitOpenError{Service: b.name, State: b.state, OpenedAt: b.openedAt, HalfOpenAt: b.halfOpenAt}
		}
	}
	b.updateGate()
	if p := b.unlockAndDeliver(); p != nil {
		// A listener panicked on the caller's goroutine: give back what
		// the call holds (a half-open probe slot), then let the panic go on.
		if rej == nil {
			callback.Log(b.log, b.done(t, Excluded))
		}
		p.Repanic()
	}
	if rej != nil {
		return Ticket{}, rej
	}
	return t, nil
}

// Done records the outcome of a call admitted by [Breaker.Allow]. Call it
// exactly once per ticket. An outcome from before a state change or a reset
// changes nothing, as in gobreaker.
func (b *Breaker) Done(t Ticket, o Outcome) {
	if o != Failure && b.gate.Load() == t.gate|1 {
		// The breaker is closed with no failure streak and in the same
		// epoch: a success or an exclusion changes nothing.
		return
	}
	raise(b.done(t, o))
}

// DoneContext is [Breaker.Done] with a context that bounds the store
// operation a shared breaker may make to record the outcome (see
// [Store]). For a breaker without a store it is Done.
func (b *Breaker) DoneContext(ctx context.Context, t Ticket, o Outcome) {
	if o != Failure && b.gate.Load() == t.gate|1 {
		return
	}
	if b.sh != nil {
		raise(b.doneShared(ctx, t, o))
		return
	}
	raise(b.done(t, o))
}

// raise lets a listener's panic go on, on the caller's goroutine.
func raise(p *callback.Panic) {
	if p != nil {
		p.Repanic()
	}
}

// done records the outcome and returns the first panic of a listener told
// of a change it caused, for the caller to raise.
func (b *Breaker) done(t Ticket, o Outcome) *callback.Panic {
	if b.sh != nil {
		return b.doneShared(context.Background(), t, o)
	}
	if t.gate&1 == 0 && t.done == nil {
		return nil // not a ticket from Allow
	}
	b.mu.Lock()
	if t.gate>>1 != b.epoch {
		b.mu.Unlock()
		return nil
	}
	done := t.done
	if done == nil { // fast-path call: record it through gobreaker now
		if o == Excluded {
			b.mu.Unlock()
			return nil
		}
		var err error
		if done, err = b.m.Allow(); err != nil { // not expected: same epoch means closed
			return b.unlockAndDeliver()
		}
	}
	if b.win != nil && b.state == StateClosed {
		b.win.record(time.Now(), o)
	}
	if o == Slow && b.settings.SlowCallRatio == 0 {
		o = Success
	}
	switch o {
	case Success:
		if b.state == StateClosed {
			b.streak = 0
		}
		done(nil)
	case Slow:
		if b.state != StateClosed {
			done(errFailure) // a slow probe: not recovered yet
			break
		}
		b.streak = 0
		done(nil)
		if b.slowTrip() {
			// Open now, as Trip does: the slow call completes a streak
			// in a fresh machine, and gobreaker opens on it.
			b.closeGate()
			b.newMachine()
			b.streak = b.settings.FailureThreshold
			if d, err := b.m.Allow(); err == nil {
				d(errFailure)
			}
		}
	case Failure:
		b.closeGate()
		if b.state == StateClosed {
			b.streak++
		}
		done(errFailure)
	default:
		done(errExcluded)
	}
	b.updateGate()
	return b.unlockAndDeliver()
}

// State returns the breaker's state now.
func (b *Breaker) State() State {
	b.mu.Lock()
	if b.sh == nil {
		b.advance()
	} else {
		b.catchUpShared()
	}
	s := b.state
	b.updateGate()
	raise(b.unlockAndDeliver())
	return s
}

// Snapshot returns the breaker's state and counts now.
func (b *Breaker) Snapshot() Snapshot {
	b.mu.Lock()
	var c gobreaker.Counts
	if b.sh == nil {
		b.advance()
		c = b.m.Counts()
	} else {
		b.catchUpShared()
	}
	s := Snapshot{
		Name:                b.name,
		State:               b.state,
		ConsecutiveFailures: b.streak,
		Requests:            int(c.Requests),
		TotalSuccesses:      int(c.TotalSuccesses),
		TotalFailures:       int(c.TotalFailures),
		TotalExclusions:     int(c.TotalExclusions),
		OpenedAt:            b.openedAt,
		Settings:            b.settings,
		Mode:                Mode(b.mode.Load()),
	}
	if b.next != nil {
		s.Settings = *b.next
	}
	if b.sh != nil {
		b.snapshotShared(&s)
	}
	if b.win != nil && b.state == StateClosed {
		b.win.current(time.Now())
		w := b.win.total
		s.Requests, s.TotalSuccesses = int(w.Requests), int(w.Successes)
		s.TotalFailures, s.TotalExclusions = int(w.Failures), int(w.Exclusions)
	}
	if b.state == StateOpen {
		s.UntilHalfOpen = max(time.Until(b.halfOpenAt), 0)
	}
	b.updateGate()
	raise(b.unlockAndDeliver())
	return s
}

// Reset closes the breaker and clears its counts and failure streak, by
// swapping in a fresh gobreaker (which has no reset of its own). Results of
// calls admitted before the reset change nothing. A breaker that was not
// closed reports the change to closed.
func (b *Breaker) Reset() {
	if b.sh != nil {
		raise(b.opShared(OpReset))
		return
	}
	b.mu.Lock()
	b.closeGate()
	prev := b.state
	b.newMachine()
	b.stopTimer()
	b.state, b.streak, b.opens = StateClosed, 0, 0
	b.openErr.Store(nil)
	b.halfErr, b.spellErr = nil, nil
	b.openedAt, b.halfOpenAt = time.Time{}, time.Time{}
	if prev != StateClosed {
		b.pending = append(b.pending, StateChange{Name: b.name, From: prev, To: StateClosed, At: time.Now()})
	}
	b.updateGate()
	raise(b.unlockAndDeliver())
}

// Trip opens the breaker now, if it is not open already: it rejects calls
// until ResetTimeout has passed, then half-opens as usual. Results of calls
// admitted before the trip change nothing. Use it to force a breaker open,
// in operations or in tests.
func (b *Breaker) Trip() {
	if b.sh != nil {
		raise(b.opShared(OpTrip))
		return
	}
	b.mu.Lock()
	if b.advance(); b.state != StateOpen {
		b.closeGate()
		b.newMachine() // fresh and closed; b.state keeps the state we leave
		// The trip is the failure that completes the streak: gobreaker
		// opens on it, through its own rule, and onStateChange clears
		// the streak.
		b.streak = b.settings.FailureThreshold
		if done, err := b.m.Allow(); err == nil {
			done(errFailure)
		}
		b.updateGate()
	}
	raise(b.unlockAndDeliver())
}

// Subscribe adds fn to the functions called with each state change of this
// breaker, after the registry's own listeners, with the same guarantees (see
// [Config.Listeners]), and returns a function that cancels the subscription.
//
// Subscriptions with the same key are one subscriber: the first fn is kept
// and called once per change, for as long as at least one of those
// Subscribe calls is not cancelled. Two keys are the same when they are
// equal with ==; a function value (such as a middleware.ObserverFunc) is the
// same key as the same function value (the same closure), though Go cannot
// compare functions. A nil key, or a key of another type that cannot be
// compared, is never the same as another: each such Subscribe adds a
// subscriber of its own. So several users of one shared breaker that report
// to the same place subscribe once, and a user that cancels what it
// subscribed (or, as middleware.CircuitBreaker does, lets the cleanup of the
// middleware cancel it) leaves nothing behind. Cancel may be called more
// than once, from any goroutine.
func (b *Breaker) Subscribe(key any, fn func(StateChange)) (cancel func()) {
	if fn == nil {
		return func() {}
	}
	id := identity(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	var sub *subscription
	if id != nil {
		for _, s := range b.subs {
			if s.id == id {
				sub = s
				break
			}
		}
	}
	if sub == nil {
		sub = &subscription{id: id, fn: fn}
		b.subs = append(b.subs[:len(b.subs):len(b.subs)], sub)
	}
	sub.refs++
	var once sync.Once
	return func() { once.Do(func() { b.unsubscribe(sub) }) }
}

// unsubscribe drops one hold on sub, and sub itself with the last.
func (b *Breaker) unsubscribe(sub *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sub.refs--; sub.refs > 0 {
		return
	}
	subs := make([]*subscription, 0, len(b.subs))
	for _, s := range b.subs {
		if s != sub {
			subs = append(subs, s)
		}
	}
	b.subs = subs
}

// subscribers returns the number of subscribers, for tests.
func (b *Breaker) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// funcKey is the identity of a function value: its type and its closure.
type funcKey struct {
	t reflect.Type
	p unsafe.Pointer
}

// identity returns what tells one subscription key from another: key
// itself when it can be compared, the closure pointer of a function value,
// and nil (never the same as another) for nil and other keys.
func identity(key any) any {
	if key == nil {
		return nil
	}
	v := reflect.ValueOf(key)
	if v.Kind() == reflect.Func {
		// A func value is a pointer to its closure; two values are the
		// same function value when they point to the same closure.
		c := reflect.New(v.Type())
		c.Elem().Set(v)
		return funcKey{t: v.Type(), p: *(*unsafe.Pointer)(c.UnsafePointer())}
	}
	if !v.Comparable() {
		return nil
	}
	return key
}

// unlockAndFlush releases b.mu and delivers any queued state changes; a
// listener's panic is logged (see [callback.Log]), never raised. It serves
// the paths that run on the library's own goroutines (a shared breaker's
// pushes and resyncs); the paths on the caller's goroutine use
// unlockAndDeliver and raise the panic there.
func (b *Breaker) unlockAndFlush() {
	callback.Log(b.log, b.unlockAndDeliver())
}

// unlockAndDeliver is entered with b.mu held; it releases it and hands the
// queued changes to the listeners and subscribers outside the lock, in
// order, until none is left. A listener that changes the breaker queues
// more changes, which this loop delivers after the current one: one
// goroutine delivers at a time, so the order holds and nothing is delivered
// twice. A panicking listener hides nothing: every listener and subscriber
// hears every change, and the first panic is returned once delivering is
// over and the breaker is consistent, for the caller to raise (on the
// caller's goroutine) or log (on the library's own).
func (b *Breaker) unlockAndDeliver() *callback.Panic {
	if len(b.pending) == 0 || b.delivering {
		b.mu.Unlock()
		return nil
	}
	b.delivering = true
	over := false
	defer func() {
		if !over { // a listener called runtime.Goexit (t.FailNow)
			b.mu.Lock()
			b.delivering = false
			b.mu.Unlock()
		}
	}()
	var first callback.First
	for len(b.pending) > 0 {
		q, subs := b.pending, b.subs
		b.pending = nil
		b.mu.Unlock()
		for _, c := range q {
			for _, l := range b.listeners {
				first.Call("registry listener", func() { l(c) })
			}
			for _, s := range subs {
				first.Call("registry subscriber", func() { s.fn(c) })
			}
		}
		b.mu.Lock()
	}
	b.delivering = false
	over = true
	b.mu.Unlock()
	return first.P
}

// setSettings gives b the settings s (defaults applied), keeping its state,
// failure streak and open spell (see [Registry.Update]). Called with b.mu
// held.
func (b *Breaker) setSettings(s Settings) {
	b.next = nil
	old := b.settings
	if b.sh != nil || b.state == StateClosed || sameMachine(s, old) {
		b.applySettings(s)
		return
	}
	// gobreaker holds SuccessThreshold and ResetTimeout (and, through the
	// shortest spell, ResetJitter): they take effect when the breaker next
	// closes, with a fresh gobreaker; the rest now.
	now := s
	now.SuccessThreshold, now.ResetTimeout, now.ResetJitter = old.SuccessThreshold, old.ResetTimeout, old.ResetJitter
	b.applySettings(now)
	b.next = &s
}

// applySettings makes s the breaker's settings now. A local breaker whose
// SuccessThreshold or ResetTimeout changes (only ever while closed) gets a
// fresh gobreaker: its failure streak is kept, the results of calls in
// flight are dropped. Called with b.mu held.
func (b *Breaker) applySettings(s Settings) {
	old := b.settings
	b.next = nil
	b.settings = s
	b.fast = !s.windowed()
	switch {
	case !s.windowed():
		b.win = nil
	case b.win == nil || s.Window != old.Window || s.WindowBuckets != old.WindowBuckets:
		b.win = newWindow(s)
	}
	if b.sh == nil && !sameMachine(s, old) {
		streak := b.streak
		b.newMachine()
		b.streak = streak
	}
}

// sameMachine reports whether a and b make the same gobreaker: the settings
// it holds for its life are equal.
func sameMachine(a, b Settings) bool {
	return a.SuccessThreshold == b.SuccessThreshold && a.ResetTimeout == b.ResetTimeout && a.ResetJitter == b.ResetJitter
}
