package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/internal/callback"
)

// Defaults applied to the zero store fields of [Config].
const (
	DefaultStoreTimeout   = 100 * time.Millisecond
	DefaultResyncInterval = time.Second
)

// Store is where the breakers of a registry with a [Config.Store] keep
// their state, so that the breakers of one name in several processes (the
// replicas of a service) act as one breaker. The redisstore package has one
// on Redis. A Store must be safe for concurrent use.
//
// A breaker never holds a store lock while a call runs: it reads the shared
// state (kept in memory, refreshed by pushes and resyncs), decides locally,
// makes the call, then records the outcome with one atomic [Store.Record].
//
// What is shared, and what it costs:
//   - Failures are counted fleet-wide: each failure is recorded in the store
//     (one round trip, after the call, on the failing call's goroutine), and
//     the breaker opens everywhere when the store's streak reaches
//     FailureThreshold.
//   - A success on a closed breaker with no known streak costs no round trip
//     and is not recorded. A replica records a success only while it knows
//     of a running streak (after a failure of its own, or when a resync or a
//     push showed one); that success clears the fleet's streak. So the
//     fleet's streak counts the failures since the last success seen by a
//     replica that knew of the streak: a success elsewhere clears it within
//     ResyncInterval at worst.
//   - When the breaker opens, the store pushes the change to every replica,
//     which rejects from then on; a resync every [Config.ResyncInterval] is
//     the backstop (bound: ResyncInterval + StoreTimeout).
//   - Half-open admits SuccessThreshold probes fleet-wide (a counter in the
//     store, one round trip per probe). While every slot is taken, a replica
//     rejects locally and asks again at most once per StoreTimeout.
//   - When the store is slow or down, the operation gives up after
//     [Config.StoreTimeout], the registry reports the outage
//     ([Config.OnStoreStatus], [Registry.StoreStats]) and every breaker
//     decides locally, from the last state it knew, with no store operation
//     (and so no added latency) until a resync succeeds; then every breaker
//     takes the store's state. Outcomes decided locally are not replayed
//     into the store.
//
// [MemoryStore] is a Store in this process's memory; package
// registry/registrytest checks a Store against the breaker's rules.
type Store interface {
	// Load returns the shared state of each named breaker, in the order of
	// names. A name the store has never seen is a closed breaker with
	// Generation 0. A name whose record is unusable (corrupt, of another
	// type, written with other settings) has its SharedState.Err set (a
	// [*KeyError]) and does not fail the others: the error of Load itself
	// means the store as a whole did not answer.
	Load(ctx context.Context, names []string) ([]SharedState, error)
	// Record applies op to the shared state of the breaker called name,
	// atomically, with the rules of [Settings] s, and returns the state
	// after it. An outcome (OpSuccess, OpFailure, OpExcluded) changes
	// nothing unless gen is the current generation. OpProbe asks to be
	// admitted: a closed breaker admits, an open one whose reset timeout has
	// passed (by the store's clock) moves to half-open, and a half-open one
	// admits while fewer than SuccessThreshold probes hold a slot; the
	// answer is in SharedState.Admitted. OpTrip opens, OpReset closes.
	// Every change of state bumps the generation and is announced to
	// [Store.Watch]ers. A record that is unusable is left as it is and
	// reported with a [*KeyError] (the store as a whole is still up).
	Record(ctx context.Context, name string, s Settings, gen uint64, op Op) (SharedState, error)
	// Watch calls ready once it is subscribed to changes, then changed
	// with the name of each breaker whose state changed, until ctx ends or
	// the subscription fails; it returns the error that ended it.
	Watch(ctx context.Context, ready func(), changed func(name string)) error
}

// StoreKeyer is implemented by a [Store] that can say where it keeps the
// state of the breaker called name (redisstore: its Redis key), so that a
// [*KeyError] the registry finds names the key.
type StoreKeyer interface {
	StoreKey(name string) string
}

// Op is an operation of [Store.Record]: an [Outcome] of a call, or a request.
type Op uint8

// The operations.
const (
	OpSuccess     = Op(Success)  // a call succeeded
	OpFailure     = Op(Failure)  // a call failed
	OpExcluded    = Op(Excluded) // a call counts neither way (frees a probe slot)
	OpProbe    Op = 3            // ask to be admitted (see [Store.Record])
	OpTrip     Op = 4            // open the breaker now ([Breaker.Trip])
	OpReset    Op = 5            // close the breaker and clear its counts ([Breaker.Reset])
)

// SharedState is one breaker's state as a [Store] holds it: gobreaker v2's
// SharedState reduced to what the consecutive rule needs (state, a
// generation that drops late results, the counts and the time it opened),
// in a form a store can update field by field in one atomic step.
type SharedState struct {
	// State is the shared state. An open state whose reset timeout has
	// passed stays open in the store until a probe asks (OpProbe).
	State State
	// Generation is bumped at every change of state; 0 for a breaker the
	// store has never seen.
	Generation uint64
	// Failures is the fleet's failure streak in the closed state.
	Failures int
	// Probes is the number of half-open probe slots taken; Successes the
	// number of half-open probes that succeeded.
	Probes, Successes int
	// OpenedAt is when the breaker opened, in this process's clock (a store
	// converts from its own); zero unless open or half-open.
	OpenedAt time.Time
	// Admitted is the answer to OpProbe.
	Admitted bool
	// Fingerprint is [Settings.Fingerprint] of the settings the record was
	// written with, when the store keeps it; "" when it does not. A breaker
	// refuses a record written with other settings ([ErrConflict]).
	Fingerprint string
	// Err, set by [Store.Load], is why this name's record is unusable (a
	// [*KeyError]); the other fields are then meaningless.
	Err error
}

// ErrBadRecord is matched by the [*KeyError] of a store's record that is not
// a valid state: a value of another type or format, a field out of range,
// a truncated record.
var ErrBadRecord = errors.New("registry: bad record in store")

// KeyError reports that a store holds, at one key, a record a breaker (or a
// rate limit) cannot use: what a store holds is untrusted input. That one
// breaker decides locally, reported through [Config.OnStoreStatus], until
// the key is sane again; the others stay shared. Err is [ErrBadRecord], or
// [ErrConflict] for a record written with other settings.
type KeyError struct {
	// Name is the breaker's name (or the rate limit's key).
	Name string
	// Key is the store's key, when the store has one ("" otherwise).
	Key string
	// Reason says what is wrong with the record.
	Reason string
	// Err is [ErrBadRecord] or [ErrConflict].
	Err error
}

// Error describes the record: `registry: bad record in store at key
// "resilience:breaker:api": state 7 out of range`.
func (e *KeyError) Error() string {
	key := e.Key
	if key == "" {
		key = e.Name
	}
	return fmt.Sprintf("%v at key %q: %s", e.Err, key, e.Reason)
}

// Unwrap returns Err.
func (e *KeyError) Unwrap() error { return e.Err }

// Fingerprint returns a short string naming the settings a store applies
// to a shared breaker (FailureThreshold, SuccessThreshold, ResetTimeout),
// after defaults: a store keeps it with the state, so that replicas that
// name one breaker with different settings are refused ([ErrConflict])
// rather than mixed.
func (s Settings) Fingerprint() string {
	s = s.WithDefaults()
	return fmt.Sprintf("c1:%d:%d:%d", s.FailureThreshold, s.SuccessThreshold, int64(s.ResetTimeout))
}

// checkShared is the one check of a state a store returned for the breaker
// called name with settings s: nil, or the [*KeyError] that makes it
// unusable.
func checkShared(name string, s Settings, ss SharedState) error {
	var reason string
	switch {
	case ss.Err != nil:
		var ke *KeyError
		if errors.As(ss.Err, &ke) {
			return ke
		}
		return &KeyError{Name: name, Reason: ss.Err.Error(), Err: ErrBadRecord}
	case ss.Fingerprint != "" && ss.Fingerprint != s.Fingerprint():
		return &KeyError{Name: name, Reason: fmt.Sprintf("written with settings %s, this breaker has %s", ss.Fingerprint, s.Fingerprint()), Err: ErrConflict}
	case ss.State > StateHalfOpen:
		reason = fmt.Sprintf("state %d out of range", ss.State)
	case ss.Failures < 0:
		reason = fmt.Sprintf("failure streak %d is negative", ss.Failures)
	case ss.Probes < 0 || ss.Probes > s.SuccessThreshold:
		reason = fmt.Sprintf("probe count %d out of range [0, %d]", ss.Probes, s.SuccessThreshold)
	case ss.Successes < 0 || ss.Successes > ss.Probes:
		reason = fmt.Sprintf("probe successes %d out of range [0, %d]", ss.Successes, ss.Probes)
	case ss.State != StateClosed && ss.OpenedAt.IsZero():
		reason = "open with no opening time"
	default:
		return nil
	}
	return &KeyError{Name: name, Reason: reason, Err: ErrBadRecord}
}

// storeConfig is how a registry uses its [Store]: the store fields of
// [Config], defaults applied.
type storeConfig struct {
	Timeout        time.Duration
	ResyncInterval time.Duration
	OnStatus       func(StoreStatus)
	Logger         *slog.Logger
}

// StoreStatus is a change of a store's reachability, as told to
// [Config.OnStoreStatus]: of the store as a whole (Name is ""), or of one
// key (Name names the breaker or rate limit).
type StoreStatus struct {
	// Name, when set, names the one breaker (or rate limit key) whose
	// record became unusable (Healthy false, Err a [*KeyError]): it decides
	// locally while the others stay shared; or whose record is sane again
	// (Healthy true): it is shared again. "" for the store as a whole.
	Name string
	// Healthy is false when the store became unreachable and the breakers
	// fell back to local decisions, true when it came back and the breakers
	// took its state again.
	Healthy bool
	// Err is the error that made the store unreachable; nil when Healthy.
	Err error
	// At is when the registry noticed.
	At time.Time
}

// StoreStats are a registry's counters of its store, for metrics.
type StoreStats struct {
	// Healthy reports whether the breakers use the store now (false: they
	// decide locally).
	Healthy bool `json:"healthy"`
	// Errors counts store operations that failed (timeouts included).
	Errors uint64 `json:"errors"`
	// LocalDecisions counts admissions and outcomes decided locally because
	// the store was unreachable.
	LocalDecisions uint64 `json:"local_decisions"`
	// Records counts store operations made on the call path (Record).
	Records uint64 `json:"records"`
	// BadRecords counts the times a breaker found its record in the store
	// unusable (see [KeyError]) and began deciding locally.
	BadRecords uint64 `json:"bad_records"`
	// Pushes counts changes pushed by the store; Resyncs the full resyncs.
	Pushes  uint64 `json:"pushes"`
	Resyncs uint64 `json:"resyncs"`
}

// errStoreDown is what a store operation returns, at once, while the store
// is known to be unreachable.
var errStoreDown = errors.New("registry: store unreachable")

// storeLink is a registry's use of its store: health, counters and the
// goroutine that follows pushes and resyncs.
type storeLink struct {
	st  Store
	cfg storeConfig
	reg *Registry

	down                                  atomic.Bool
	lastErr                               atomic.Pointer[error]
	errs, local, records, pushes, resyncs atomic.Uint64
	badRecords                            atomic.Uint64
	keyMu                                 sync.Mutex
	keyStatus                             []StoreStatus // per-key statuses not yet reported
	ctx                                   context.Context
	cancel                                context.CancelFunc
	kickResync, kickStatus                chan struct{}
	wg                                    sync.WaitGroup
	closeOnce                             sync.Once
	reported                              bool // last health reported (true: down); loop goroutine only
}

func (l *storeLink) start() {
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.kickResync = make(chan struct{}, 1)
	l.kickStatus = make(chan struct{}, 1)
	l.wg.Add(2)
	go l.loop()
	go l.watch()
}

func (l *storeLink) close() {
	l.closeOnce.Do(func() {
		l.cancel()
		l.wg.Wait()
	})
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// do runs one store operation bounded by ctx and the timeout. While the
// store is down it fails at once with errStoreDown.
func (l *storeLink) do(ctx context.Context, f func(context.Context) error) error {
	if l.down.Load() {
		return errStoreDown
	}
	tctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	err := f(tctx)
	cancel()
	var ke *KeyError
	if err != nil && ctx.Err() == nil && !errors.As(err, &ke) { // the caller giving up, or one bad key, is not the store's fault
		l.failed(err)
	}
	return err
}

// keyChanged queues the report of a change of one key's health (the
// breaker called name became bad with err, or sane again with nil), for
// the registry's goroutine to tell OnStatus in order.
func (l *storeLink) keyChanged(name string, err error) {
	if err != nil {
		l.badRecords.Add(1)
	}
	l.keyMu.Lock()
	l.keyStatus = append(l.keyStatus, StoreStatus{Name: name, Healthy: err == nil, Err: err, At: time.Now()})
	l.keyMu.Unlock()
	if l.kickStatus != nil {
		kick(l.kickStatus)
	}
}

// failed notes that a store operation failed: the store is down until a
// resync succeeds.
func (l *storeLink) failed(err error) {
	l.errs.Add(1)
	l.lastErr.Store(&err)
	if l.down.CompareAndSwap(false, true) {
		kick(l.kickStatus)
	}
}

func (l *storeLink) record(ctx context.Context, name string, s Settings, gen uint64, op Op) (ss SharedState, err error) {
	err = l.do(ctx, func(ctx context.Context) error {
		l.records.Add(1)
		ss, err = l.st.Record(ctx, name, s, gen, op)
		return err
	})
	return ss, err
}

func (l *storeLink) load(ctx context.Context, names []string) (out []SharedState, err error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	out, err = l.st.Load(ctx, names)
	if err == nil && len(out) != len(names) {
		err = errors.New("registry: store returned a wrong number of states")
	}
	return out, err
}

// loop resyncs every ResyncInterval and on demand, and reports changes of
// the store's health, in order.
func (l *storeLink) loop() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
			l.resync()
		case <-l.kickResync:
			l.resync()
		case <-l.kickStatus:
		}
		l.report()
	}
}

// report tells OnStatus about a change of health since the last report,
// then about the keys whose health changed.
func (l *storeLink) report() {
	defer l.reportKeys()
	down := l.down.Load()
	if down == l.reported {
		return
	}
	l.reported = down
	if l.cfg.OnStatus == nil {
		return
	}
	st := StoreStatus{Healthy: !down, At: time.Now()}
	if down {
		if p := l.lastErr.Load(); p != nil {
			st.Err = *p
		}
	}
	l.status(st)
}

// reportKeys tells OnStatus of the queued changes of keys.
func (l *storeLink) reportKeys() {
	l.keyMu.Lock()
	q := l.keyStatus
	l.keyStatus = nil
	l.keyMu.Unlock()
	for _, st := range q {
		l.status(st)
	}
}

// status tells OnStatus of st; a panic in it is logged, and the registry
// goes on (it runs on the registry's own goroutine).
func (l *storeLink) status(st StoreStatus) {
	if l.cfg.OnStatus == nil {
		return
	}
	callback.Log(l.cfg.Logger, callback.Call("registry Config.OnStoreStatus", func() { l.cfg.OnStatus(st) }))
}

// resync loads the state of every breaker and hands it to the breakers.
// When the store was down, they take the store's state whatever they
// decided meanwhile, and the store is up again.
func (l *storeLink) resync() {
	wasDown := l.down.Load()
	names := l.reg.Names()
	seqs := make([]uint64, len(names)) // each breaker's answers when the read began: see Breaker.adoptPushed
	for i, name := range names {
		if b, ok := l.reg.Get(name); ok {
			seqs[i] = b.answered()
		}
	}
	const chunk = 512
	states := make([]SharedState, 0, len(names))
	for i := 0; i == 0 || i < len(names); i += chunk { // an empty load still checks the store
		ss, err := l.load(l.ctx, names[i:min(i+chunk, len(names))])
		if err != nil {
			if l.ctx.Err() == nil {
				l.failed(err)
			}
			return
		}
		states = append(states, ss...)
	}
	l.resyncs.Add(1)
	for i, name := range names {
		if b, ok := l.reg.Get(name); ok {
			b.adoptShared(states[i], wasDown, seqs[i])
		}
	}
	if wasDown {
		l.down.Store(false)
	}
}

// watch follows the store's pushes, subscribing again after a failure.
func (l *storeLink) watch() {
	defer l.wg.Done()
	for l.ctx.Err() == nil {
		err := l.st.Watch(l.ctx, func() { kick(l.kickResync) }, l.pushed)
		if l.ctx.Err() != nil {
			return
		}
		if err != nil {
			l.failed(err)
		}
		t := time.NewTimer(l.cfg.ResyncInterval)
		select {
		case <-l.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// pushed loads the state of a breaker the store says has changed.
func (l *storeLink) pushed(name string) {
	l.pushes.Add(1)
	b, ok := l.reg.Get(name)
	if !ok {
		return
	}
	b.adoptPushed(func() (SharedState, error) {
		ss, err := l.load(l.ctx, []string{name})
		if err != nil {
			return SharedState{}, err
		}
		return ss[0], nil
	})
}

// stats returns the counters.
func (l *storeLink) stats() StoreStats {
	return StoreStats{
		Healthy:        !l.down.Load(),
		Errors:         l.errs.Load(),
		LocalDecisions: l.local.Load(),
		Records:        l.records.Load(),
		BadRecords:     l.badRecords.Load(),
		Pushes:         l.pushes.Load(),
		Resyncs:        l.resyncs.Load(),
	}
}
