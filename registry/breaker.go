package registry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
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
// from gobreaker: with the consecutive rule alone, a success while the
// breaker is closed and has no failure streak takes a fast path that records
// nothing (recording it would cost a write to shared memory on every call),
// so in the closed state Requests and TotalSuccesses count only the calls made
// while a failure streak was running. TotalFailures, ConsecutiveFailures and
// every count in the half-open state are exact.
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

type subscription struct {
	key any
	fn  func(StateChange)
}

// Breaker is one named circuit breaker, built on sony/gobreaker v2. Get one
// from a [Registry]. A Breaker is safe for concurrent use.
//
// A call goes through [Breaker.Allow] and [Breaker.Done]; the middleware
// package's CircuitBreaker does that for go-kit endpoints. With the
// consecutive rule alone, a closed breaker with no failure streak admits
// calls on a fast path (one atomic load, no lock, no clock read) and a success
// there records nothing; everything else (a failure, any other state, the
// ratio rule) goes through gobreaker with the same results gobreaker gives.
// An open breaker rejects with one atomic load and the same preallocated
// [*CircuitOpenError] for the whole open spell, except in its last 5ms, when
// rejections ask gobreaker's clock; so a call at exactly ResetTimeout after
// the breaker opened is a half-open probe, and a call 1ns earlier is
// rejected, whatever order timers and callers run in. A timer moves the
// breaker to half-open at ResetTimeout even when no call comes; State,
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
	// openErr is the rejection of the current open spell; nil unless open.
	openErr atomic.Pointer[CircuitOpenError]

	sh *shared // nil unless the registry has a Store

	mu         sync.Mutex
	m          machine // nil for a shared breaker
	epoch      uint64  // bumped at every state change and machine swap
	state      State
	streak     int  // consecutive failures in the closed state
	forcing    bool // Trip in progress: readyToTrip says yes
	openedAt   time.Time
	halfOpenAt time.Time
	timer      *time.Timer
	halfErr    *CircuitOpenError
	spellErr   *CircuitOpenError // the rejection of the current open spell
	subs       []subscription
	pending    []StateChange
	delivering bool
}

func newBreaker(name string, s Settings, listeners []func(StateChange)) *Breaker {
	b := &Breaker{name: name, settings: s, fast: s.FailureRatio == 0, listeners: listeners}
	b.newMachine()
	b.updateGate()
	return b
}

// newMachine swaps in a fresh gobreaker (closed, counts zero). Results of
// calls admitted by the old one are dropped by the epoch check.
func (b *Breaker) newMachine() {
	s := b.settings
	// gobreaker half-opens strictly after its Timeout: one nanosecond less
	// makes the breaker half-open at exactly ResetTimeout.
	timeout := max(s.ResetTimeout-1, 1)
	gs := gobreaker.Settings{
		Name:          b.name,
		MaxRequests:   uint32(s.SuccessThreshold),
		Timeout:       timeout,
		ReadyToTrip:   b.readyToTrip,
		OnStateChange: b.onStateChange,
		IsExcluded:    isExcluded,
	}
	if s.FailureRatio > 0 {
		gs.Interval = s.Window
		gs.BucketPeriod = s.Window / time.Duration(s.WindowBuckets)
	}
	b.m = gobreaker.NewTwoStepCircuitBreaker[struct{}](gs)
	b.epoch++
}

// readyToTrip runs under gobreaker's lock, called from a goroutine that
// holds b.mu.
func (b *Breaker) readyToTrip(c gobreaker.Counts) bool {
	if b.forcing || b.streak >= b.settings.FailureThreshold {
		return true
	}
	if r := b.settings.FailureRatio; r > 0 {
		n := c.TotalSuccesses + c.TotalFailures
		return n > 0 && int(n) >= b.settings.MinRequests && float64(c.TotalFailures)/float64(n) >= r
	}
	return false
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
		b.openedAt = now
		b.halfOpenAt = now.Add(b.settings.ResetTimeout)
		b.halfErr = nil
		b.spellErr = &CircuitOpenError{Service: b.name, State: StateOpen, OpenedAt: now, HalfOpenAt: b.halfOpenAt}
		ep := b.epoch
		if near := b.settings.ResetTimeout - nearHalfOpen; near > 0 {
			// Rejections need no clock read until shortly before the
			// reset timeout ends; then approach hands them to gobreaker's
			// exact clock, so a call at exactly ResetTimeout is a probe.
			b.openErr.Store(b.spellErr)
			b.timer = time.AfterFunc(near, func() { b.approach(ep) })
		} else {
			b.openErr.Store(nil)
			b.timer = time.AfterFunc(b.settings.ResetTimeout, func() { b.tick(ep) })
		}
	case StateHalfOpen:
		b.openErr.Store(nil)
		b.spellErr = nil
		b.halfErr = &CircuitOpenError{Service: b.name, State: StateHalfOpen, OpenedAt: b.openedAt, HalfOpenAt: b.halfOpenAt}
	default:
		b.openErr.Store(nil)
		b.halfErr, b.spellErr = nil, nil
		b.openedAt, b.halfOpenAt = time.Time{}, time.Time{}
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
}

// nearHalfOpen is how long before the end of an open spell rejections stop
// taking the clock-free fast path and ask gobreaker, whose clock is exact.
const nearHalfOpen = 5 * time.Millisecond

// approach runs shortly before the reset timeout of the open spell ep ends:
// from now on rejections go through gobreaker, which half-opens at exactly
// ResetTimeout whatever the order in which timers and callers run; tick
// follows at ResetTimeout to move the breaker (and tell the listeners) if no
// call has done so.
func (b *Breaker) approach(ep uint64) {
	b.mu.Lock()
	if b.epoch == ep && b.state == StateOpen {
		b.openErr.Store(nil)
		b.timer = time.AfterFunc(time.Until(b.halfOpenAt), func() { b.tick(ep) })
	}
	b.mu.Unlock()
}

// tick runs when the reset timeout of the open spell ep ends: it moves the
// breaker to half-open, so rejections need no clock read and listeners hear
// of the change when it happens.
func (b *Breaker) tick(ep uint64) {
	b.mu.Lock()
	if b.epoch == ep && b.state == StateOpen && b.sh != nil {
		b.moveShared(StateHalfOpen, time.Time{})
		b.updateGate()
	} else if b.epoch == ep && b.state == StateOpen {
		b.m.State() // gobreaker half-opens lazily; this makes it do so now
		if b.state == StateOpen {
			// Not yet by gobreaker's clock: look again shortly.
			b.timer = time.AfterFunc(time.Microsecond, func() { b.tick(ep) })
		}
		b.updateGate()
	}
	b.unlockAndFlush()
}

// updateGate publishes the epoch and whether the fast path may admit calls.
// Called with b.mu held, after every change.
func (b *Breaker) updateGate() {
	g := b.epoch << 1
	if b.fast && b.state == StateClosed && b.streak == 0 {
		g |= 1
	}
	b.gate.Store(g)
}

// closeGate stops the fast path before a change that may open the breaker,
// so that no call slips past an open breaker through a stale gate.
func (b *Breaker) closeGate() { b.gate.Store(b.epoch << 1) }

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// Settings returns the breaker's settings, defaults applied.
func (b *Breaker) Settings() Settings { return b.settings }

// Allow asks to make one call. It returns a ticket to hand to [Breaker.Done]
// with the call's outcome, or a [*CircuitOpenError] when the breaker rejects
// the call (then make no call and call no Done). It does not allocate on
// the fast path nor when it rejects; a call admitted through gobreaker (the
// ratio rule, a failure streak, half-open) allocates gobreaker's callback.
func (b *Breaker) Allow() (Ticket, error) {
	if g := b.gate.Load(); g&1 != 0 {
		return Ticket{gate: g}, nil
	}
	if e := b.openErr.Load(); e != nil {
		return Ticket{}, e
	}
	return b.allowSlow(context.Background())
}

// AllowContext is [Breaker.Allow] with a context that bounds the store
// operation a shared breaker may make (see [WithStore]): only a half-open
// shared breaker asks the store, for a probe slot. For a breaker without a
// store it is Allow.
func (b *Breaker) AllowContext(ctx context.Context) (Ticket, error) {
	if g := b.gate.Load(); g&1 != 0 {
		return Ticket{gate: g}, nil
	}
	if e := b.openErr.Load(); e != nil {
		return Ticket{}, e
	}
	return b.allowSlow(ctx)
}

// AllowFast is the part of [Breaker.Allow] small enough to be inlined into
// the caller. When the breaker is closed with no failure streak (and uses
// the consecutive rule alone) it admits the call: it returns the ticket, nil
// and true. When the breaker is open it returns the rejection and false: make
// no call. Otherwise it returns nil and false, and the caller must call
// Allow. It costs one or two atomic loads.
func (b *Breaker) AllowFast() (t Ticket, open *CircuitOpenError, ok bool) {
	if t.gate = b.gate.Load(); t.gate&1 != 0 {
		return t, nil, true
	}
	return t, b.openErr.Load(), false
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
	done, err := b.m.Allow()
	t := Ticket{gate: b.epoch << 1, done: done}
	var rej *CircuitOpenError
	if err != nil {
		if errors.Is(err, gobreaker.ErrTooManyRequests) {
			rej = b.halfErr
		} else {
			rej = b.spellErr
		}
		if rej == nil { // not expected: the fields follow gobreaker's state
			rej = &CircuitOpenError{Service: b.name, State: stateOf(b.m.State()), OpenedAt: b.openedAt, HalfOpenAt: b.halfOpenAt}
		}
	}
	b.updateGate()
	b.unlockAndFlush()
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
	b.done(t, o)
}

// DoneContext is [Breaker.Done] with a context that bounds the store
// operation a shared breaker may make to record the outcome (see
// [WithStore]). For a breaker without a store it is Done.
func (b *Breaker) DoneContext(ctx context.Context, t Ticket, o Outcome) {
	if o != Failure && b.gate.Load() == t.gate|1 {
		return
	}
	if b.sh != nil {
		b.doneShared(ctx, t, o)
		return
	}
	b.done(t, o)
}

func (b *Breaker) done(t Ticket, o Outcome) {
	if b.sh != nil {
		b.doneShared(context.Background(), t, o)
		return
	}
	if t.gate&1 == 0 && t.done == nil {
		return // not a ticket from Allow
	}
	b.mu.Lock()
	if t.gate>>1 != b.epoch {
		b.mu.Unlock()
		return
	}
	done := t.done
	if done == nil { // fast-path call: record it through gobreaker now
		if o == Excluded {
			b.mu.Unlock()
			return
		}
		var err error
		if done, err = b.m.Allow(); err != nil { // not expected: same epoch means closed
			b.unlockAndFlush()
			return
		}
	}
	switch o {
	case Success:
		if b.state == StateClosed {
			b.streak = 0
		}
		done(nil)
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
	b.unlockAndFlush()
}

// State returns the breaker's state now.
func (b *Breaker) State() State {
	b.mu.Lock()
	if b.sh == nil {
		b.m.State()
	}
	s := b.state
	b.updateGate()
	b.unlockAndFlush()
	return s
}

// Snapshot returns the breaker's state and counts now.
func (b *Breaker) Snapshot() Snapshot {
	b.mu.Lock()
	var c gobreaker.Counts
	if b.sh == nil {
		b.m.State()
		c = b.m.Counts()
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
	}
	if b.sh != nil {
		b.snapshotShared(&s)
	}
	if b.state == StateOpen {
		s.UntilHalfOpen = max(time.Until(b.halfOpenAt), 0)
	}
	b.updateGate()
	b.unlockAndFlush()
	return s
}

// Reset closes the breaker and clears its counts and failure streak, by
// swapping in a fresh gobreaker (which has no reset of its own). Results of
// calls admitted before the reset change nothing. A breaker that was not
// closed reports the change to closed.
func (b *Breaker) Reset() {
	if b.sh != nil {
		b.opShared(OpReset)
		return
	}
	b.mu.Lock()
	b.closeGate()
	prev := b.state
	b.newMachine()
	b.stopTimer()
	b.state, b.streak = StateClosed, 0
	b.openErr.Store(nil)
	b.halfErr, b.spellErr = nil, nil
	b.openedAt, b.halfOpenAt = time.Time{}, time.Time{}
	if prev != StateClosed {
		b.pending = append(b.pending, StateChange{Name: b.name, From: prev, To: StateClosed, At: time.Now()})
	}
	b.updateGate()
	b.unlockAndFlush()
}

// Trip opens the breaker now, if it is not open already: it rejects calls
// until ResetTimeout has passed, then half-opens as usual. Results of calls
// admitted before the trip change nothing. Use it to force a breaker open,
// in operations or in tests.
func (b *Breaker) Trip() {
	if b.sh != nil {
		b.opShared(OpTrip)
		return
	}
	b.mu.Lock()
	if b.m.State(); b.state != StateOpen {
		b.closeGate()
		b.newMachine() // fresh and closed; b.state keeps the state we leave
		b.forcing = true
		if done, err := b.m.Allow(); err == nil {
			done(errFailure)
		}
		b.forcing = false
		b.updateGate()
	}
	b.unlockAndFlush()
}

// Subscribe adds fn to the functions called with each state change of this
// breaker, after the registry's own listeners, with the same guarantees (see
// [WithListener]). If key is not nil and a function was already subscribed
// with an equal key, Subscribe does nothing: several users of one shared
// breaker that report to the same place subscribe once. A key of a type that
// cannot be compared is never equal to another.
func (b *Breaker) Subscribe(key any, fn func(StateChange)) {
	if fn == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if key != nil {
		for _, s := range b.subs {
			if sameKey(s.key, key) {
				return
			}
		}
	}
	// Copy on write: flush reads b.subs outside the lock.
	subs := make([]subscription, len(b.subs), len(b.subs)+1)
	copy(subs, b.subs)
	b.subs = append(subs, subscription{key: key, fn: fn})
}

func sameKey(a, b any) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	return a != nil && a == b
}

// unlockAndFlush releases b.mu and delivers any queued state changes.
func (b *Breaker) unlockAndFlush() {
	if len(b.pending) == 0 || b.delivering {
		b.mu.Unlock()
		return
	}
	b.delivering = true
	b.deliver()
}

// deliver is entered with b.mu held and b.delivering set; it hands queued
// changes to the listeners outside the lock, in order, until none is left.
// A listener that changes the breaker queues more changes, which this loop
// delivers after the current one: one goroutine delivers at a time, so the
// order holds and nothing is delivered twice.
func (b *Breaker) deliver() {
	var rest []StateChange
	defer func() {
		if rest != nil { // a listener panicked: keep what is left, let the panic go on
			b.mu.Lock()
			b.pending = append(rest, b.pending...)
			b.delivering = false
			b.mu.Unlock()
		}
	}()
	for len(b.pending) > 0 {
		q, subs := b.pending, b.subs
		b.pending = nil
		b.mu.Unlock()
		for i, c := range q {
			rest = q[i+1:]
			for _, l := range b.listeners {
				l(c)
			}
			for _, s := range subs {
				s.fn(c)
			}
		}
		rest = nil
		b.mu.Lock()
	}
	b.delivering = false
	b.mu.Unlock()
}
