package registry

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryStore is a [Store] in this process's memory: give one MemoryStore
// to several registries ([Config.Store]) and their breakers of one name act
// as one breaker, as the breakers of replicas sharing a Redis do
// (redisstore). It applies every operation with the same rules as
// redisstore's Lua script (generations that drop late results, probe slots,
// settings fingerprints refused with [ErrConflict], OpTrip and OpReset,
// changes announced to every [MemoryStore.Watch]er), by this process's
// clock, so inside a [testing/synctest] bubble it keeps fake time exactly.
// Use it in tests of code that uses shared breakers, and to share breakers
// between registries of one process.
//
// The zero MemoryStore is not usable: make one with [NewMemoryStore]. A
// MemoryStore is safe for concurrent use. It keeps every name it has been
// asked about until [MemoryStore.Delete]; names are bounded by the
// registries that use it ([Config.MaxBreakers]).
type MemoryStore struct {
	mu       sync.Mutex
	recs     map[string]*memRecord
	watchers map[*memWatcher]struct{}
}

// memRecord is one breaker's record, as redisstore keeps it in a hash.
type memRecord struct {
	state      State
	gen        uint64
	failures   int
	openedAt   time.Time // open and half-open
	halfOpenAt time.Time // half-open: when it half-opened or last gave back probe slots
	probes     int
	successes  int
	fp         string
}

// memWatcher is one running Watch: the names changed and not yet handed to
// its changed function, and a signal that there are some.
type memWatcher struct {
	mu    sync.Mutex
	queue []string
	kick  chan struct{}
}

// NewMemoryStore returns an empty store: every breaker closed, at
// generation 0.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{recs: make(map[string]*memRecord), watchers: make(map[*memWatcher]struct{})}
}

// MemoryStore is a Store.
var _ Store = (*MemoryStore)(nil)

// Load implements [Store]: the state of each named breaker; a name the
// store has never seen is closed at generation 0. It never fails.
func (m *MemoryStore) Load(_ context.Context, names []string) ([]SharedState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]SharedState, len(names))
	for i, n := range names {
		if r := m.recs[n]; r != nil {
			out[i] = r.shared()
		}
	}
	return out, nil
}

// Record implements [Store]: op applied atomically to the breaker called
// name with the rules of s, by this process's clock. A record written with
// other settings (another [Settings.Fingerprint]) is left as it is and
// refused with a [*KeyError] matching [ErrConflict].
func (m *MemoryStore) Record(_ context.Context, name string, s Settings, gen uint64, op Op) (SharedState, error) {
	s = s.WithDefaults()
	fp := s.Fingerprint()
	now := time.Now()
	m.mu.Lock()
	r := m.recs[name]
	fresh := r == nil
	if fresh {
		r = &memRecord{}
	} else if r.fp != "" && r.fp != fp {
		m.mu.Unlock()
		return SharedState{}, &KeyError{Name: name, Reason: fmt.Sprintf("the record was written with settings %s, this breaker has %s", r.fp, fp), Err: ErrConflict}
	}
	changed, dirty, admitted := false, false, false
	move := func(to State) {
		r.state, r.gen, r.failures, r.probes, r.successes = to, r.gen+1, 0, 0, 0
		changed = true
		switch to {
		case StateOpen:
			r.openedAt = now
		case StateClosed:
			r.openedAt = time.Time{}
		}
		r.halfOpenAt = time.Time{}
		if to == StateHalfOpen {
			r.halfOpenAt = now
		}
	}
	if r.state == StateOpen && !now.Before(r.openedAt.Add(s.ResetTimeout)) {
		move(StateHalfOpen)
	}
	if r.state == StateHalfOpen && r.probes > r.successes && !now.Before(r.halfOpenAt.Add(s.ResetTimeout)) {
		// Probes that have held their slots for a whole ResetTimeout
		// (a replica that died mid-call) give them back.
		r.probes, r.halfOpenAt, dirty = r.successes, now, true
	}
	switch op {
	case OpProbe:
		switch {
		case r.state == StateClosed:
			admitted = true
		case r.state == StateHalfOpen && r.probes < s.SuccessThreshold:
			r.probes++
			admitted, dirty = true, true
		}
	case OpTrip:
		if r.state != StateOpen {
			move(StateOpen)
		}
	case OpReset:
		move(StateClosed)
	default:
		if gen != r.gen {
			break
		}
		switch r.state {
		case StateClosed:
			switch {
			case op == OpFailure:
				r.failures++
				dirty = true
				if r.failures >= s.FailureThreshold {
					move(StateOpen)
				}
			case op == OpSuccess && r.failures > 0:
				r.failures, dirty = 0, true
			}
		case StateHalfOpen:
			switch op {
			case OpFailure:
				move(StateOpen)
			case OpSuccess:
				r.successes++
				r.probes = max(r.probes, r.successes) // a probe whose slot was given back still counts
				dirty = true
				if r.successes >= s.SuccessThreshold {
					move(StateClosed)
				}
			case OpExcluded:
				if r.probes > r.successes {
					r.probes--
					dirty = true
				}
			}
		}
	}
	if changed || dirty || (!fresh && r.fp != fp) {
		r.fp = fp
		if fresh {
			m.recs[name] = r
		}
	}
	ss := r.shared()
	ss.Admitted = admitted
	var ws []*memWatcher
	if changed {
		ws = make([]*memWatcher, 0, len(m.watchers))
		for w := range m.watchers {
			ws = append(ws, w)
		}
	}
	m.mu.Unlock()
	for _, w := range ws {
		w.push(name)
	}
	return ss, nil
}

// Watch implements [Store]: it calls ready, then changed with the name of
// each breaker whose state changed, in order, until ctx ends; it returns
// ctx's error.
func (m *MemoryStore) Watch(ctx context.Context, ready func(), changed func(name string)) error {
	w := &memWatcher{kick: make(chan struct{}, 1)}
	m.mu.Lock()
	m.watchers[w] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.watchers, w)
		m.mu.Unlock()
	}()
	ready()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.kick:
		}
		w.mu.Lock()
		q := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, name := range q {
			changed(name)
		}
	}
}

// Delete forgets the breaker called name: the next operation finds it
// closed at generation 0, as a Redis key that expired. Registries that
// follow the store learn of it at their next resync.
func (m *MemoryStore) Delete(name string) {
	m.mu.Lock()
	delete(m.recs, name)
	m.mu.Unlock()
}

func (w *memWatcher) push(name string) {
	w.mu.Lock()
	w.queue = append(w.queue, name)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (r *memRecord) shared() SharedState {
	return SharedState{
		State:       r.state,
		Generation:  r.gen,
		Failures:    r.failures,
		Probes:      r.probes,
		Successes:   r.successes,
		OpenedAt:    r.openedAt,
		Fingerprint: r.fp,
	}
}
