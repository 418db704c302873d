package health

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/internal/callback"
	"github.com/resiliencekit/resilience/internal/callctx"
	"github.com/resiliencekit/resilience/middleware"
)

// Defaults.
const (
	// DefaultTimeout is the timeout of a check when neither
	// [Check].Timeout nor [Config].DefaultTimeout is set.
	DefaultTimeout = 5 * time.Second
	// DefaultJitter is the jitter of background checking when
	// [Config].Jitter is 0: each wait is the interval ±10%.
	DefaultJitter = 0.1
)

// Checker runs named health checks.
//
// Register checks with [Checker.Register], then ask for their health with
// [Checker.CheckAll], [Checker.Check], [Checker.IsHealthy] or
// [Checker.Require], or serve it with [Handler] and [Endpoint].
//
// By default every question runs the checks it needs, concurrently, each
// bounded by its own timeout. Runs are shared: at most one run of each check
// is in flight however many callers ask, and a caller arriving while a run
// is in flight waits for that run's result instead of starting another. A
// check that ignores its context and hangs is reported as failed with an
// error matching [middleware.ErrTimeout] at its deadline, and is not started
// again until it returns, so a hung dependency holds one goroutine, never one
// per probe.
//
// After [Checker.Start], a background loop runs the checks on a schedule and
// every question reads the cached results instead, so probes never touch
// the dependencies; see Start.
//
// A Checker is safe for concurrent use. Make one with [NewChecker].
type Checker struct {
	timeout time.Duration
	jitter  float64
	maxAge  time.Duration
	observe func(Status)

	mu     sync.RWMutex
	checks map[string]*entry
	order  []string // registration order
	loop   *loop    // background checking; nil when not started
}

// Config configures a [Checker]. The zero value is the defaults; a value out
// of range is refused by [NewChecker], never replaced by a default.
type Config struct {
	// DefaultTimeout bounds each run of a check whose [Check].Timeout is 0.
	// Default (0): [DefaultTimeout], 5s. It must not be negative.
	DefaultTimeout time.Duration

	// Jitter spreads background checking (see [Checker.Start]): each wait
	// between two runs of a check is the interval multiplied by a random
	// factor in [1-Jitter, 1+Jitter], so replicas started together do not
	// probe a dependency in step. Default (0): [DefaultJitter], 0.1. When
	// set it must be in (0, 1).
	Jitter float64

	// DisableJitter makes every wait exactly the interval. Default false.
	// It cannot be combined with a non-zero Jitter.
	DisableJitter bool

	// MaxAge is how old a cached result may be (see [Checker.Start]) before
	// it reads as failed with [ErrStale]. Default (0): twice the interval
	// plus the check's timeout, so one missed round is tolerated and two are
	// not. It must not be negative.
	MaxAge time.Duration

	// Observer, when not nil, is called with the result of every run of
	// every check, once per run, as the run ends or times out: in the
	// background loop and on demand alike, but never for a question answered
	// from the cache or by waiting on a run already in flight. It is the hook
	// for metrics (status and latency per check; see observe/kitmetrics).
	// It is called on the run's goroutine, outside every lock, before the
	// callers waiting on the run get its result (so a caller that got a
	// result knows Observer has seen it); it must be quick and safe for
	// concurrent use. A panic in Observer is recovered and logged at Error
	// with its stack (with [log/slog.Default]), and the checker goes on.
	// Default nil: no observer.
	Observer func(Status)
}

// validate returns every problem in cfg, each naming its field and matching
// [middleware.ErrInvalidConfig], joined; nil when cfg is valid.
func (cfg Config) validate() error {
	var errs []error
	if cfg.DefaultTimeout < 0 {
		errs = append(errs, fmt.Errorf("health: %w: Config.DefaultTimeout = %v, must not be negative", middleware.ErrInvalidConfig, cfg.DefaultTimeout))
	}
	switch {
	case cfg.Jitter != 0 && cfg.DisableJitter:
		errs = append(errs, fmt.Errorf("health: %w: Config.Jitter = %v with Config.DisableJitter, set one or the other", middleware.ErrInvalidConfig, cfg.Jitter))
	case cfg.Jitter != 0 && !(cfg.Jitter > 0 && cfg.Jitter < 1): // NaN fails too
		errs = append(errs, fmt.Errorf("health: %w: Config.Jitter = %v, must be in (0, 1) (0 means %v; DisableJitter turns jitter off)", middleware.ErrInvalidConfig, cfg.Jitter, DefaultJitter))
	}
	if cfg.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("health: %w: Config.MaxAge = %v, must not be negative", middleware.ErrInvalidConfig, cfg.MaxAge))
	}
	return errors.Join(errs...)
}

// NewChecker returns a Checker with no checks, configured by cfg (the zero
// Config is the defaults). It panics with an error matching
// [middleware.ErrInvalidConfig], naming every field out of range, when cfg is not
// valid: a programming error, like a bad pattern given to
// regexp.MustCompile.
func NewChecker(cfg Config) *Checker {
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	c := &Checker{timeout: cfg.DefaultTimeout, jitter: cfg.Jitter, maxAge: cfg.MaxAge, observe: cfg.Observer, checks: map[string]*entry{}}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case cfg.DisableJitter:
		c.jitter = 0
	case c.jitter == 0:
		c.jitter = DefaultJitter
	}
	return c
}

// Check is a health check to register with [Checker.Register]: a name, a
// function, and how the check counts. Fields left zero take the defaults.
type Check struct {
	// Name names the check in every [Status], report and error. Required:
	// it must not be empty.
	Name string

	// Func is the check itself. Required: it must not be nil.
	Func CheckFunc

	// Timeout bounds each run of the check. Default (0): the checker's
	// [Config].DefaultTimeout. It must not be negative.
	Timeout time.Duration

	// Optional marks a check whose failure does not fail readiness: the
	// report is [Warn] rather than [Fail], and [Checker.Require] with no
	// names does not require it. Default false: the check is critical, and
	// its failure makes the report Fail.
	Optional bool
}

// Register adds the check ch. It returns an error, and registers nothing,
// when ch.Name is empty ([ErrEmptyName]), ch.Func is nil ([ErrNilCheck]),
// the name is already registered ([ErrDuplicateCheck]) or ch.Timeout is
// negative ([middleware.ErrInvalidConfig]); the error names the check.
//
// A check registered while background checking runs joins the schedule at
// once.
func (c *Checker) Register(ch Check) error {
	if ch.Name == "" {
		return ErrEmptyName
	}
	if ch.Func == nil {
		return fmt.Errorf("%w: %q", ErrNilCheck, ch.Name)
	}
	if ch.Timeout < 0 {
		return fmt.Errorf("health: %w: check %q: Check.Timeout = %v, must not be negative", middleware.ErrInvalidConfig, ch.Name, ch.Timeout)
	}
	e := &entry{name: ch.Name, fn: ch.Func, timeout: ch.Timeout, critical: !ch.Optional, observe: c.observe}
	if e.timeout == 0 {
		e.timeout = c.timeout
	}
	e.cause = &callctx.Deadline{Err: fmt.Errorf("health: check %q timed out after %v: %w", ch.Name, e.timeout, middleware.ErrTimeout)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.checks[ch.Name]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateCheck, ch.Name)
	}
	c.checks[ch.Name] = e
	c.order = append(c.order, ch.Name)
	if l := c.loop; l != nil && l.ctx.Err() == nil {
		c.spawn(l, e)
	}
	return nil
}

// MustRegister is like [Checker.Register] but panics on error. It suits
// setup code whose names and functions are constants.
func (c *Checker) MustRegister(ch Check) {
	if err := c.Register(ch); err != nil {
		panic(err)
	}
}

// CheckAll returns the status of every check, keyed by name. Checks run
// concurrently, so CheckAll takes about as long as the slowest check, bounded
// by its timeout; after [Checker.Start] it reads the cache and does not wait.
//
// When ctx ends first (its caller has gone), a check still running is no
// verdict on its dependency: it is reported with the check's latest result
// when it has one, and otherwise as not checked (an error matching
// [ErrNotChecked] and ctx's cause), never as failed by the caller's leaving;
// its run goes on, and its result is kept and observed like any other.
func (c *Checker) CheckAll(ctx context.Context) map[string]Status {
	sts := c.statuses(ctx, nil)
	m := make(map[string]Status, len(sts))
	for _, s := range sts {
		m[s.Name] = s
	}
	return m
}

// Check returns the status of the check named name, running it (or joining
// its run in flight) unless background checking has cached it. For a name
// never registered it returns a failed Status and an error matching
// [ErrUnknownCheck].
func (c *Checker) Check(ctx context.Context, name string) (Status, error) {
	s := c.statuses(ctx, []string{name})[0]
	if errors.Is(s.Error, ErrUnknownCheck) {
		return s, s.Error
	}
	return s, nil
}

// IsHealthy reports whether the check named name is healthy ([Pass] or
// [Warn]); false for a name never registered.
func (c *Checker) IsHealthy(ctx context.Context, name string) bool {
	s, _ := c.Check(ctx, name)
	return s.Healthy
}

// Require checks the named services, concurrently, and returns nil when all
// are healthy, or an [*UnavailableError] (matching [ErrUnavailable]) listing
// every one that is not, in the order given: the check a service makes
// before it starts. A name never registered counts as unhealthy. With no
// names it requires every critical check.
func (c *Checker) Require(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		c.mu.RLock()
		for _, n := range c.order {
			if c.checks[n].critical {
				names = append(names, n)
			}
		}
		c.mu.RUnlock()
		if len(names) == 0 {
			return nil
		}
	}
	var bad *UnavailableError
	for _, s := range c.statuses(ctx, names) {
		if !s.Healthy {
			if bad == nil {
				bad = &UnavailableError{}
			}
			bad.Names = append(bad.Names, s.Name)
			bad.Statuses = append(bad.Statuses, s)
		}
	}
	if bad == nil {
		return nil
	}
	return bad
}

// statuses returns the status of each named check (every check, in
// registration order, when names is nil), in order.
func (c *Checker) statuses(ctx context.Context, names []string) []Status {
	c.mu.RLock()
	if names == nil {
		names = slices.Clone(c.order)
	}
	es := make([]*entry, len(names))
	for i, n := range names {
		es[i] = c.checks[n]
	}
	l := c.loop
	c.mu.RUnlock()

	out := make([]Status, len(names))
	if l != nil && l.ctx.Err() == nil {
		now := time.Now()
		for i, e := range es {
			if e == nil {
				out[i] = unknown(names[i])
				continue
			}
			out[i] = c.cached(e, l, now)
		}
		return out
	}
	fs := make([]*flight, len(es))
	for i, e := range es {
		if e != nil {
			fs[i] = e.begin(ctx)
		}
	}
	for i, e := range es {
		if e == nil {
			out[i] = unknown(names[i])
			continue
		}
		out[i] = e.wait(ctx, fs[i])
	}
	return out
}

func unknown(name string) Status {
	return Status{Name: name, Result: Fail, Critical: true, Error: fmt.Errorf("%w: %q", ErrUnknownCheck, name)}
}

// cached returns e's cached status, failed when missing or older than the
// max age.
func (c *Checker) cached(e *entry, l *loop, now time.Time) Status {
	p := e.last.Load()
	if p == nil {
		return e.status(ErrNotChecked, 0, time.Time{})
	}
	s := *p
	maxAge := c.maxAge
	if maxAge == 0 {
		maxAge = 2*l.interval + e.timeout
	}
	if age := now.Sub(s.LastCheck); age > maxAge {
		s.Result, s.Healthy = Fail, false
		s.Error = fmt.Errorf("%w: last result is %v old, max age %v", ErrStale, age, maxAge)
	}
	return s
}

// loop is one run of background checking.
type loop struct {
	ctx      context.Context
	cancel   context.CancelFunc
	interval time.Duration
	wg       sync.WaitGroup
}

// Start begins background checking and returns at once: every check runs
// now, and then again an interval (with jitter, see [Config].Jitter) after its
// previous run ended or timed out, so runs of a check never overlap; and
// from now on CheckAll, Check, IsHealthy, Require, [Handler] and [Endpoint]
// read the cached results without waiting, so probes never hit a
// dependency. Until its first run finishes a check reads as failed with
// [ErrNotChecked], and a result older than the max age (see [Config].MaxAge)
// reads as failed with [ErrStale].
//
// Background checking ends when ctx is done or [Checker.Stop] is called;
// the checker then runs checks on demand again, and may be started again.
// Start returns an error matching [ErrStarted] when background checking is
// already running, [middleware.ErrInvalidConfig] when interval is not positive, and
// ctx's cause when ctx is already done.
func (c *Checker) Start(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("health: %w: Start interval = %v, must be positive", middleware.ErrInvalidConfig, interval)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.loop; l != nil && l.ctx.Err() == nil {
		return ErrStarted
	}
	lctx, cancel := context.WithCancel(ctx)
	l := &loop{ctx: lctx, cancel: cancel, interval: interval}
	c.loop = l
	for _, n := range c.order {
		c.spawn(l, c.checks[n])
	}
	return nil
}

// Stop ends background checking, if running, and returns once its
// scheduling goroutines have exited. A check run in flight is not
// interrupted: it finishes in its own goroutine, within its timeout if it
// honours its context. Stop is safe to call more than once.
func (c *Checker) Stop() {
	c.mu.Lock()
	l := c.loop
	c.loop = nil
	c.mu.Unlock()
	if l != nil {
		l.cancel()
		l.wg.Wait()
	}
}

// spawn starts the scheduling goroutine of e in l. c.mu must be held.
func (c *Checker) spawn(l *loop, e *entry) {
	l.wg.Go(func() {
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-l.ctx.Done():
				return
			case <-t.C:
			}
			f := e.begin(l.ctx)
			select {
			case <-l.ctx.Done():
				return
			case <-f.done:
			}
			t.Reset(c.next(l.interval))
		}
	})
}

// next returns interval with jitter.
func (c *Checker) next(interval time.Duration) time.Duration {
	if c.jitter == 0 {
		return interval
	}
	f := 1 + c.jitter*(2*rand.Float64()-1)
	return time.Duration(float64(interval) * f)
}

// entry is one registered check.
type entry struct {
	name     string
	fn       CheckFunc
	timeout  time.Duration
	cause    *callctx.Deadline // the cause of the run's own deadline; its Err is the timeout error
	critical bool
	observe  func(Status) // Config.Observer, or nil

	mu   sync.Mutex
	fl   *flight // the run in flight, until its function returns; nil when idle
	last atomic.Pointer[Status]
}

// flight is one run of a check.
type flight struct {
	start     time.Time
	done      chan struct{} // closed once st is set
	published bool          // guarded by entry.mu
	st        Status
}

// errExited is the error of a check that called runtime.Goexit.
var errExited = errors.New("health: check exited without returning")

// begin returns e's run in flight, starting one when there is none. The run
// is detached from ctx's cancellation (callers share it) but keeps its
// values, and is bounded by e.timeout, a deadline of the library's own: its
// cause is e.cause, so the check and the layers it calls can tell it from a
// caller's with context.Cause.
func (e *entry) begin(ctx context.Context) *flight {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fl != nil {
		return e.fl
	}
	f := &flight{start: time.Now(), done: make(chan struct{})}
	e.fl = f
	rctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), e.timeout, e.cause)
	stop := context.AfterFunc(rctx, func() {
		e.publish(f, e.status(e.cause.Err, time.Since(f.start), time.Now()))
	})
	go e.exec(rctx, cancel, stop, f)
	return f
}

// exec runs e's function for f, in f's own goroutine.
func (e *entry) exec(ctx context.Context, cancel context.CancelFunc, stop func() bool, f *flight) {
	err := errExited
	panicked := false
	defer func() {
		var s Status
		fresh := stop() // the deadline has not published a timeout: publish this result
		if fresh {
			lat := time.Since(f.start)
			if callctx.Own(ctx) { // only the run's own deadline ends ctx before cancel below
				err, panicked = e.cause.Err, false
			}
			s = e.status(err, lat, time.Now())
			if panicked {
				// A panic is a failure whatever its value, even a Degraded error.
				s.Result, s.Healthy = Fail, false
			}
		}
		cancel()
		// Retire the flight and publish its result in one critical section,
		// so that no caller can join a flight whose result is already out.
		e.mu.Lock()
		if e.fl == f {
			e.fl = nil
		}
		if fresh {
			fresh = e.publishLocked(f, s)
		}
		e.mu.Unlock()
		if fresh {
			e.release(f, s)
		}
	}()
	panicked, err = e.call(ctx)
}

// call calls e.fn, turning a panic into an error that names the check and
// wraps a *middleware.PanicError.
func (e *entry) call(ctx context.Context) (panicked bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			pe, ok := v.(*middleware.PanicError) // re-panicked by a layer inside the check: keep its stack
			if !ok {
				pe = &middleware.PanicError{Value: v, Stack: debug.Stack()}
			}
			panicked, err = true, fmt.Errorf("health: check %q: %w", e.name, pe)
		}
	}()
	return false, e.fn(ctx)
}

// publish records s as f's result, once, caches it, reports it to the
// observer, if any, outside the lock, and wakes f's waiters.
func (e *entry) publish(f *flight, s Status) {
	e.mu.Lock()
	ok := e.publishLocked(f, s)
	e.mu.Unlock()
	if ok {
		e.release(f, s)
	}
}

// publishLocked records s as f's result unless f has one, and reports
// whether it did; the caller must then call release. e.mu must be held.
func (e *entry) publishLocked(f *flight, s Status) bool {
	if f.published {
		return false
	}
	f.published = true
	f.st = s
	e.last.Store(&s)
	return true
}

// release reports f's result s to the observer, outside the lock, and then
// hands it to the callers waiting on f: a caller that got a run's result
// knows the observer has seen it.
func (e *entry) release(f *flight, s Status) {
	defer close(f.done)
	if e.observe != nil {
		// The run's goroutine (or its deadline's) is the library's own: a
		// panicking observer is logged, and the waiters still get s.
		callback.Log(nil, callback.Call("health observer", func() { e.observe(s) }))
	}
}

// wait returns f's result, or, when ctx ends first, what a caller who has
// gone is told (see [Checker.CheckAll]).
func (e *entry) wait(ctx context.Context, f *flight) Status {
	select {
	case <-f.done:
		return f.st
	default:
	}
	select {
	case <-f.done:
		return f.st
	case <-ctx.Done():
		return e.gone(ctx, f)
	}
}

// gone returns the status of a run still in flight for a caller whose ctx
// has ended. By the module's one rule (internal/callctx) the caller's leaving
// is no verdict on the dependency: the caller gets the check's latest result,
// or "not checked" with ctx's cause. Only a deadline of the library's own
// (a middleware Budget around the health endpoint) is a failure.
func (e *entry) gone(ctx context.Context, f *flight) Status {
	if !callctx.Gone(ctx) {
		return e.status(context.Cause(ctx), time.Since(f.start), time.Now())
	}
	if p := e.last.Load(); p != nil {
		return *p
	}
	return e.status(fmt.Errorf("%w: the caller left after %v: %w", ErrNotChecked, time.Since(f.start), context.Cause(ctx)), time.Since(f.start), time.Time{})
}

// status returns e's status for a run that ended with err.
func (e *entry) status(err error, latency time.Duration, at time.Time) Status {
	r := resultOf(err)
	return Status{
		Name:      e.name,
		Healthy:   r != Fail,
		Result:    r,
		Critical:  e.critical,
		Latency:   latency,
		Error:     err,
		LastCheck: at,
	}
}
