package registry

import (
	"context"
	"errors"
	"time"

	"github.com/resiliencekit/resilience/internal/callback"
)

// shared is the part of a Breaker backed by a Store: the store's
// generation of the state the breaker mirrors, and the half-open counts.
// Its fields are guarded by the breaker's mu.
type shared struct {
	link      *storeLink
	gen       uint64    // the store's generation of b.state
	probes    int       // half-open probe slots taken (fleet-wide as last known)
	succ      int       // half-open probes that succeeded (as last known)
	fullUntil time.Time // half-open, every slot taken: reject locally until then
	bad       error     // the store's record is unusable (a *KeyError): decide locally until a load finds it sane
	answers   uint64    // store answers to this breaker's own operations taken: see adoptPushed
}

// local reports whether the breaker decides locally now: the store is down,
// or its record of this breaker is unusable. Called with b.mu held.
func (sh *shared) local() bool { return sh.bad != nil || sh.link.down.Load() }

// markBad notes that the store's record of b is unusable (err, a
// *KeyError): b decides locally from now on, and the change is reported.
// Called with b.mu held.
func (b *Breaker) markBad(err error) {
	var ke *KeyError
	if errors.As(err, &ke) && ke.Key == "" {
		if k, ok := b.sh.link.st.(StoreKeyer); ok {
			ke.Key = k.StoreKey(b.name)
		}
	}
	if b.sh.bad == nil {
		b.sh.link.keyChanged(b.name, err)
	}
	b.sh.bad = err
}

// storeFailed handles the error of a store operation: a *KeyError makes b
// decide locally until its record is sane again. Called with b.mu held.
func (b *Breaker) storeFailed(err error) {
	var ke *KeyError
	if errors.As(err, &ke) {
		if ke.Name == "" {
			ke.Name = b.name
		}
		b.markBad(ke)
	}
}

func newSharedBreaker(name string, s Settings, listeners []func(StateChange), link *storeLink) *Breaker {
	b := &Breaker{name: name, settings: s, fast: true, listeners: listeners, sh: &shared{link: link}}
	b.epoch = 1 // a zero Ticket never matches
	b.updateGate()
	return b
}

// moveShared changes the state of a shared breaker to next, as the store
// says or as decided locally while the store is down. openedAt is when
// the breaker opened (open and half-open). Called with b.mu held.
func (b *Breaker) moveShared(next State, openedAt time.Time) {
	prev, sh := b.state, b.sh
	b.closeGate()
	b.state = next
	b.epoch++
	b.streak = 0
	sh.probes, sh.succ, sh.fullUntil = 0, 0, time.Time{}
	b.stopTimer()
	switch next {
	case StateOpen:
		b.openedAt = openedAt
		b.halfOpenAt = openedAt.Add(b.settings.ResetTimeout)
		b.halfErr = nil
		b.openErr.Store(&CircuitOpenError{Service: b.name, State: StateOpen, OpenedAt: b.openedAt, HalfOpenAt: b.halfOpenAt})
		ep := b.epoch
		left := max(time.Until(b.halfOpenAt), 0)
		b.armEdge(ep, left)
		b.timer = time.AfterFunc(left, func() { b.tick(ep) })
	case StateHalfOpen:
		if !openedAt.IsZero() {
			b.openedAt = openedAt
			b.halfOpenAt = openedAt.Add(b.settings.ResetTimeout)
		}
		b.openErr.Store(nil)
		b.halfErr = &CircuitOpenError{Service: b.name, State: StateHalfOpen, OpenedAt: b.openedAt, HalfOpenAt: b.halfOpenAt}
	default:
		b.openErr.Store(nil)
		b.halfErr = nil
		b.openedAt, b.halfOpenAt = time.Time{}, time.Time{}
	}
	if prev != next {
		b.pending = append(b.pending, StateChange{Name: b.name, From: prev, To: next, At: time.Now()})
	}
}

// catchUpShared half-opens an open shared breaker whose reset timeout has
// ended, whether or not its timer has run yet. Called with b.mu held.
func (b *Breaker) catchUpShared() {
	if b.state == StateOpen && !time.Now().Before(b.halfOpenAt) {
		b.moveShared(StateHalfOpen, time.Time{})
	}
}

// adoptPushed takes the state load reads from the store after a push,
// unless an answer to one of this breaker's own operations was taken
// while the read ran: that answer is at least as new as the state the
// read began from, and the read may have seen an older one (it would undo
// a failure just counted, TestUpdate's flake). A change skipped so is
// pushed again, or caught by the next resync.
func (b *Breaker) adoptPushed(load func() (SharedState, error)) {
	seq := b.answered()
	ss, err := load()
	if err != nil {
		return // the resync will catch up
	}
	b.adoptShared(ss, false, seq)
}

// answered returns how many answers to its own operations b has taken
// (see adoptPushed), for a read of the store that starts now.
func (b *Breaker) answered() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sh.answers
}

// adoptShared takes the store's state ss from a resync whose read began
// when b had taken seq answers: not if it has taken another since (as in
// adoptPushed).
func (b *Breaker) adoptShared(ss SharedState, force bool, seq uint64) {
	b.mu.Lock()
	if b.sh.answers != seq {
		b.mu.Unlock()
		return
	}
	b.adopt(ss, force)
	b.updateGate()
	b.unlockAndFlush()
}

// adopt takes the store's state ss, unless it is older than the one the
// breaker has. With force (the store is back after an outage) the breaker
// takes it whatever it decided locally. A state that fails [checkShared]
// is not taken: the breaker decides locally until a state that passes it
// comes, which it then takes as if forced. Called with b.mu held.
func (b *Breaker) adopt(ss SharedState, force bool) {
	sh := b.sh
	if err := checkShared(b.name, b.settings, ss); err != nil {
		b.markBad(err)
		return
	}
	if sh.bad != nil {
		sh.bad = nil
		sh.link.keyChanged(b.name, nil)
		force = true
	}
	if ss.Generation < sh.gen && !force {
		return // an answer overtaken by a newer one
	}
	same := ss.Generation == sh.gen &&
		(!force || ss.State == b.state || (ss.State == StateOpen && b.state == StateHalfOpen))
	if !same {
		sh.gen = ss.Generation
		b.moveShared(ss.State, ss.OpenedAt)
	}
	switch {
	case b.state == StateClosed && ss.State == StateClosed:
		b.streak = ss.Failures
	case b.state == StateHalfOpen && ss.State == StateHalfOpen:
		sh.probes, sh.succ = ss.Probes, ss.Successes
		if sh.probes < b.settings.SuccessThreshold {
			sh.fullUntil = time.Time{} // a slot is free: ask the store again
		}
	}
}

// allowShared is Allow's slow path for a shared breaker.
func (b *Breaker) allowShared(ctx context.Context) (Ticket, error) {
	b.mu.Lock()
	sh := b.sh
	b.catchUpShared()
	if b.state != StateHalfOpen || sh.local() {
		t, rej := b.allowLocal()
		b.updateGate()
		b.deliverOrRelease(ctx, t, rej)
		return t, rejErr(rej)
	}
	if time.Now().Before(sh.fullUntil) {
		rej := b.halfErr
		b.mu.Unlock()
		return Ticket{}, rej
	}
	gen, st := sh.gen, b.settings
	b.mu.Unlock()
	ss, err := sh.link.record(ctx, b.name, st, gen, OpProbe)
	b.mu.Lock()
	var t Ticket
	var rej *CircuitOpenError
	if err != nil {
		b.storeFailed(err)
		sh.link.local.Add(1)
		t, rej = b.allowLocal()
	} else {
		sh.answers++
		b.adopt(ss, false)
		switch {
		case ss.Admitted && ss.Generation == sh.gen:
			t = Ticket{gate: b.epoch << 1}
		case b.state == StateOpen:
			rej = b.openErr.Load()
		case b.state == StateHalfOpen:
			rej = b.halfErr
			sh.fullUntil = time.Now().Add(sh.link.cfg.Timeout)
		default:
			t, rej = b.allowLocal()
		}
	}
	b.updateGate()
	b.deliverOrRelease(ctx, t, rej)
	return t, rejErr(rej)
}

// deliverOrRelease releases b.mu and delivers the queued state changes on
// the caller's goroutine. When a listener panics, the call gives back what
// it holds (its half-open probe slot, when admitted) and the panic goes on
// to the caller, as for a local breaker.
func (b *Breaker) deliverOrRelease(ctx context.Context, t Ticket, rej *CircuitOpenError) {
	if p := b.unlockAndDeliver(); p != nil {
		if rej == nil {
			callback.Log(b.log, b.doneShared(ctx, t, Excluded))
		}
		p.Repanic()
	}
}

// rejErr returns rej as an error, nil when rej is nil.
func rejErr(rej *CircuitOpenError) error {
	if rej == nil {
		return nil
	}
	return rej
}

// allowLocal decides an admission from the breaker's own state. Called
// with b.mu held.
func (b *Breaker) allowLocal() (Ticket, *CircuitOpenError) {
	switch b.state {
	case StateClosed:
		return Ticket{gate: b.epoch << 1}, nil
	case StateOpen:
		if rej := b.openErr.Load(); rej != nil {
			return Ticket{}, rej
		}
	}
	if b.sh.probes < b.settings.SuccessThreshold {
		b.sh.probes++
		return Ticket{gate: b.epoch << 1}, nil
	}
	return Ticket{}, b.halfErr
}

// doneShared records the outcome of a call admitted by a shared breaker:
// in the store when it changes something there, locally while the store
// is down.
func (b *Breaker) doneShared(ctx context.Context, t Ticket, o Outcome) *callback.Panic {
	if o == Slow { // the slow-call rule is local only: a success to the store
		o = Success
	}
	b.mu.Lock()
	if t.gate>>1 != b.epoch || b.state == StateOpen ||
		(b.state == StateClosed && (o == Excluded || (o == Success && b.streak == 0))) {
		b.mu.Unlock() // stale, or nothing to record
		return nil
	}
	sh := b.sh
	if b.state == StateClosed && o == Failure {
		b.closeGate()
		b.streak++ // counted here at once; the store's answer replaces it
	}
	if sh.local() {
		sh.link.local.Add(1)
		b.decideLocal(o)
		b.updateGate()
		return b.unlockAndDeliver()
	}
	gen, st := sh.gen, b.settings
	b.mu.Unlock()
	ss, err := sh.link.record(ctx, b.name, st, gen, Op(o))
	b.mu.Lock()
	if err != nil {
		b.storeFailed(err)
		if t.gate>>1 == b.epoch {
			sh.link.local.Add(1)
			b.decideLocal(o)
		}
	} else {
		sh.answers++
		b.adopt(ss, false)
	}
	b.updateGate()
	return b.unlockAndDeliver()
}

// decideLocal applies an outcome to the breaker's own state, as a local
// breaker would (a closed failure has already been counted). Called with
// b.mu held.
func (b *Breaker) decideLocal(o Outcome) {
	sh := b.sh
	switch b.state {
	case StateClosed:
		switch o {
		case Success:
			b.streak = 0
		case Failure:
			if b.streak >= b.settings.FailureThreshold {
				b.moveShared(StateOpen, time.Now())
			}
		}
	case StateHalfOpen:
		switch o {
		case Success:
			if sh.succ++; sh.succ >= b.settings.SuccessThreshold {
				b.moveShared(StateClosed, time.Time{})
			}
		case Failure:
			b.moveShared(StateOpen, time.Now())
		default:
			sh.probes = max(sh.probes-1, 0)
		}
	}
}

// opShared applies OpTrip or OpReset through the store, or locally when the
// store is unreachable, and returns the first panic of a listener told of
// the change, for the caller to raise.
func (b *Breaker) opShared(op Op) *callback.Panic {
	b.mu.Lock()
	sh := b.sh
	gen, st := sh.gen, b.settings
	b.closeGate()
	var (
		ss  SharedState
		err error = errStoreDown
	)
	if sh.bad == nil {
		b.mu.Unlock()
		ss, err = sh.link.record(context.Background(), b.name, st, gen, op)
		b.mu.Lock()
		b.storeFailed(err)
	}
	switch {
	case err == nil:
		sh.answers++
		b.adopt(ss, false)
	case op == OpTrip:
		sh.link.local.Add(1)
		if b.state != StateOpen {
			b.moveShared(StateOpen, time.Now())
		}
	default:
		sh.link.local.Add(1)
		b.moveShared(StateClosed, time.Time{})
	}
	b.updateGate()
	return b.unlockAndDeliver()
}

// snapshotShared fills the counts of a shared breaker's snapshot. Called
// with b.mu held.
func (b *Breaker) snapshotShared(s *Snapshot) {
	if b.state == StateHalfOpen {
		s.Requests = b.sh.probes
		s.TotalSuccesses = b.sh.succ
	}
	s.TotalFailures = b.streak
}
