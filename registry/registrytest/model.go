package registrytest

import (
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// model is a circuit breaker written plainly: the one reference the suite
// checks every breaker against. It follows the documented rules:
// FailureThreshold consecutive failures open a closed breaker (and, with
// FailureRatio, so does the failure ratio over the rolling window); it is
// half-open at exactly ResetTimeout after opening; half-open admits up to
// SuccessThreshold probes at once (an excluded probe frees its slot), the
// SuccessThreshold-th success closes it and a failure opens it; excluded
// outcomes count neither way; outcomes of calls admitted before a state
// change or a reset change nothing; Reset closes and clears; Trip opens.
//
// With shared set, it also follows the one rule a Store adds: probe slots
// held for a whole ResetTimeout since the store half-opened (or last gave
// slots back) are given back at the next store operation.
type model struct {
	s      registry.Settings // defaults applied
	shared bool

	state    registry.State
	epoch    int       // bumped at every state change and reset
	streak   int       // consecutive failures, closed only
	failures int       // failures recorded since the last state change or reset
	openedAt time.Time // when the breaker last opened

	// half-open counts, since the breaker half-opened
	requests, successes, exclusions int
	slots                           int       // probe slots taken
	storeHalfAt                     time.Time // shared: when the store half-opened or last gave slots back

	// the ratio rule's window: outcomes recorded while closed
	winStart time.Time
	win      []winOutcome
}

type winOutcome struct {
	age     int64 // the bucket it counts in
	failure bool
}

func newModel(s registry.Settings, shared bool) *model {
	return &model{s: s, shared: shared, winStart: time.Now()}
}

// now brings the model up to the present: an open breaker whose reset
// timeout has passed is half-open.
func (m *model) now() {
	if m.state == registry.StateOpen && !time.Now().Before(m.openedAt.Add(m.s.ResetTimeout)) {
		m.setState(registry.StateHalfOpen)
	}
}

func (m *model) setState(s registry.State) {
	m.state = s
	m.epoch++
	m.streak, m.failures = 0, 0
	m.requests, m.successes, m.exclusions, m.slots = 0, 0, 0, 0
	m.storeHalfAt = time.Time{}
	switch s {
	case registry.StateOpen:
		m.openedAt = time.Now()
	case registry.StateClosed:
		m.winStart, m.win = time.Now(), nil
	}
}

// storeOp is a store operation of a shared breaker in half-open: the
// store half-opens at the first, and gives back stale probe slots.
func (m *model) storeOp() {
	if !m.shared || m.state != registry.StateHalfOpen {
		return
	}
	now := time.Now()
	switch {
	case m.storeHalfAt.IsZero():
		m.storeHalfAt = now
	case m.slots > m.successes && !now.Before(m.storeHalfAt.Add(m.s.ResetTimeout)):
		m.slots, m.storeHalfAt = m.successes, now
	}
}

// allow returns the epoch of an admitted call and true, or the state that
// rejects it and false.
func (m *model) allow() (int, registry.State, bool) {
	m.now()
	switch m.state {
	case registry.StateOpen:
		return 0, registry.StateOpen, false
	case registry.StateHalfOpen:
		m.storeOp()
		if m.slots >= m.s.SuccessThreshold {
			return 0, registry.StateHalfOpen, false
		}
		m.requests++
		m.slots++
	}
	return m.epoch, m.state, true
}

// done records the outcome of a call admitted in epoch.
func (m *model) done(epoch int, o registry.Outcome) {
	m.now()
	if epoch != m.epoch {
		return
	}
	m.storeOp()
	if m.state == registry.StateClosed && m.s.FailureRatio > 0 {
		m.record(o)
	}
	switch o {
	case registry.Success:
		m.streak = 0
		if m.state == registry.StateHalfOpen {
			m.successes++
			m.slots = max(m.slots, m.successes)
			if m.successes >= m.s.SuccessThreshold {
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
		if m.streak >= m.s.FailureThreshold || m.ratioTrips() {
			m.setState(registry.StateOpen)
		}
	case registry.Excluded:
		if m.state == registry.StateHalfOpen {
			m.exclusions++
			if m.slots > m.successes {
				m.slots--
			}
		}
	}
}

// age returns the number of the window's bucket current now.
func (m *model) age() int64 {
	period := m.s.Window / time.Duration(m.s.WindowBuckets)
	return int64(time.Since(m.winStart) / period)
}

func (m *model) record(o registry.Outcome) {
	if o == registry.Excluded {
		return
	}
	m.win = append(m.win, winOutcome{age: m.age(), failure: o == registry.Failure})
}

// ratioTrips reports whether the ratio rule opens the breaker now: the
// outcomes of the buckets still in the window.
func (m *model) ratioTrips() bool {
	if m.s.FailureRatio == 0 {
		return false
	}
	now := m.age()
	var n, f int
	for _, w := range m.win {
		if now-w.age < int64(m.s.WindowBuckets) {
			n++
			if w.failure {
				f++
			}
		}
	}
	return n > 0 && n >= m.s.MinRequests && float64(f)/float64(n) >= m.s.FailureRatio
}

func (m *model) reset() { m.setState(registry.StateClosed) }

func (m *model) trip() {
	m.now()
	if m.state != registry.StateOpen {
		m.setState(registry.StateOpen)
	}
}
