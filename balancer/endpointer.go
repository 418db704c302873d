package balancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"

	"github.com/resiliencekit/resilience/internal/callback"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// Config configures an [Endpointer]. The zero value works: each instance
// gets the guide's breaker (open on the 5th consecutive failure, 60s open,
// 2 probes) in a registry of the Endpointer's own.
type Config struct {
	// Name, when set, prefixes each instance's breaker name: an instance
	// "10.0.0.1:8080" of Name "users" has the breaker "users/10.0.0.1:8080".
	// Default "": the breaker is named by the instance alone.
	Name string
	// Breaker configures every instance's breaker (its Name is ignored:
	// the instance names it). Default: the guide's breaker. Observer and
	// the rules that classify errors (FailOn, FailIf, CountBusinessErrors)
	// apply as they do for [middleware.CircuitBreaker].
	Breaker middleware.BreakerConfig
	// Registry holds the instances' breakers, so that an operations
	// handler or a dashboard can show them. Default nil: a registry of the
	// Endpointer's own. An instance's breaker is removed from the registry
	// when the instance leaves.
	Registry *registry.Registry
	// Logger receives what the Endpointer logs: a service discovery error,
	// an instance the factory could not make an endpoint for, and a panic
	// in the factory or in an instance's Closer (recovered: they run on the
	// Endpointer's goroutine). Default nil: [slog.Default].
	Logger *slog.Logger
}

// Instance is one instance of a discovered service, with its breaker.
type Instance struct {
	// Name is the instance string the [sd.Instancer] gave, such as
	// "10.0.0.1:8080".
	Name string
	// Breaker is the instance's circuit breaker.
	Breaker *registry.Breaker
	// Endpoint calls the instance through its breaker: while the breaker
	// is open it returns a [*registry.CircuitOpenError] without calling.
	Endpoint endpoint.Endpoint

	raw    endpoint.Endpoint // the factory's endpoint, without the breaker
	closer io.Closer
	cancel func()       // the breaker subscription
	active atomic.Int64 // calls in flight through a Balancer

	// The peak EWMA of the latency, for PeakEWMA: ewma ns, at stamp.
	mu    sync.Mutex
	ewma  float64
	stamp time.Time
}

// counted returns ep counting the calls in flight on in and, when decay
// is above 0, recording their latency in the peak EWMA.
func (in *Instance) counted(ep endpoint.Endpoint, decay float64) endpoint.Endpoint {
	if decay == 0 {
		return func(ctx context.Context, req any) (any, error) {
			in.active.Add(1)
			defer in.active.Add(-1)
			return ep(ctx, req)
		}
	}
	return func(ctx context.Context, req any) (any, error) {
		in.active.Add(1)
		start := time.Now()
		defer func() {
			in.active.Add(-1)
			in.observe(time.Now(), float64(time.Since(start)), decay)
		}()
		return ep(ctx, req)
	}
}

// observe adds a call's latency rtt (ns), ended at now, to the peak EWMA:
// a slower call than the average sets it at once; a faster one moves it by
// the weight the time since the last sample gives.
func (in *Instance) observe(now time.Time, rtt, decay float64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if rtt > in.ewma {
		in.ewma = rtt
	} else {
		w := math.Exp(-float64(now.Sub(in.stamp)) / decay)
		in.ewma = in.ewma*w + rtt*(1-w)
	}
	in.stamp = now
}

// cost is PeakEWMA's: (calls in flight + 1) × the latency average, decayed
// over the time since its last sample; false for an instance with no
// sample yet.
func (in *Instance) cost(now time.Time, decay float64) (float64, bool) {
	in.mu.Lock()
	ewma, stamp := in.ewma, in.stamp
	in.mu.Unlock()
	if stamp.IsZero() {
		return 0, false
	}
	return float64(in.active.Load()+1) * ewma * math.Exp(-float64(now.Sub(stamp))/decay), true
}

// Endpointer is an [sd.Endpointer] that gives each instance of a discovered
// service a circuit breaker of its own, named by the instance: one bad
// instance of three opens its own breaker, not the service's. It keeps the
// instances an [sd.Instancer] reports, making an endpoint with the
// [sd.Factory] for each new one and closing those that leave, like go-kit's
// sd.NewEndpointer; on a discovery error it keeps the last instances it
// had. Make one with [NewEndpointer]; use it with a [Balancer], or hand it
// to go-kit's lb.NewRoundRobin as any sd.Endpointer. Safe for concurrent
// use.
type Endpointer struct {
	cfg     Config
	reg     *registry.Registry
	src     sd.Instancer
	factory sd.Factory
	log     *slog.Logger
	ch      chan sd.Event
	done    chan struct{}

	gen atomic.Uint64 // bumped at every change of the instances or of a breaker's state

	mu        sync.Mutex // held while the instances change
	live      map[string]*Instance
	instances atomic.Pointer[[]*Instance] // sorted by Name
	closed    bool
	gone      atomic.Bool // closed, for the readers that do not take mu
}

// ErrClosed is returned by [Endpointer.Endpoints] and
// [Endpointer.Instances] after [Endpointer.Close].
var ErrClosed = errors.New("balancer: endpointer closed")

// NewEndpointer returns an Endpointer over the instances src reports, each
// with its own breaker. It returns once the first set of instances (which
// an Instancer sends at once) has been applied, or after a second without
// one (then with no instance until src sends them). It returns an error
// matching [middleware.ErrInvalidConfig] when src or factory is nil or cfg
// is not valid. Call [Endpointer.Close] when done: it deregisters from src
// and closes every instance's endpoint.
func NewEndpointer(src sd.Instancer, factory sd.Factory, cfg Config) (*Endpointer, error) {
	var errs []error
	if src == nil {
		errs = append(errs, fmt.Errorf("%w: balancer: nil Instancer", middleware.ErrInvalidConfig))
	}
	if factory == nil {
		errs = append(errs, fmt.Errorf("%w: balancer: nil Factory", middleware.ErrInvalidConfig))
	}
	if cfg.Name != "" {
		if err := registry.CheckName(cfg.Name); err != nil {
			errs = append(errs, fmt.Errorf("%w: balancer: Config.Name: %w", middleware.ErrInvalidConfig, err))
		}
	}
	bc := cfg.Breaker
	bc.Name = ""
	if err := bc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("balancer: Config.Breaker: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e := &Endpointer{
		cfg: cfg, reg: cfg.Registry, src: src, factory: factory, log: cfg.Logger,
		ch: make(chan sd.Event), done: make(chan struct{}), live: map[string]*Instance{},
	}
	if e.reg == nil {
		e.reg = registry.New(registry.Config{Logger: cfg.Logger})
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.instances.Store(new([]*Instance))
	first := make(chan struct{})
	go e.receive(first)
	src.Register(e.ch)
	// An Instancer sends the instances it knows at once (go-kit's
	// contract); one that does not is waited for at most firstEventWait,
	// then the Endpointer starts with none and takes them when they come.
	t := time.NewTimer(firstEventWait)
	select {
	case <-first:
	case <-t.C:
		e.log.LogAttrs(context.Background(), slog.LevelWarn, "balancer: the instancer sent no instances at registration; starting with none",
			slog.String("name", cfg.Name), slog.Duration("waited", firstEventWait))
	}
	t.Stop()
	return e, nil
}

// firstEventWait bounds how long NewEndpointer waits for the Instancer's
// first event.
const firstEventWait = time.Second

// receive applies every event src sends, until Close.
func (e *Endpointer) receive(first chan struct{}) {
	defer close(e.done)
	for ev := range e.ch {
		e.update(ev)
		if first != nil {
			close(first)
			first = nil
		}
	}
	if first != nil {
		close(first)
	}
}

// update applies one event: new instances get an endpoint and a breaker,
// those that left are closed.
func (e *Endpointer) update(ev sd.Event) {
	if ev.Err != nil {
		e.log.LogAttrs(context.Background(), slog.LevelWarn, "balancer: service discovery error, keeping the last instances",
			slog.String("name", e.cfg.Name), slog.String("error", ev.Err.Error()))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	want := make(map[string]bool, len(ev.Instances))
	for _, name := range ev.Instances {
		want[name] = true
		if _, ok := e.live[name]; !ok {
			if in := e.open(name); in != nil {
				e.live[name] = in
			}
		}
	}
	for name, in := range e.live {
		if !want[name] {
			delete(e.live, name)
			e.shut(in)
		}
	}
	e.publish()
}

// publish stores the sorted instances and bumps the generation. Holds mu.
func (e *Endpointer) publish() {
	list := make([]*Instance, 0, len(e.live))
	for _, in := range e.live {
		list = append(list, in)
	}
	slices.SortFunc(list, func(a, b *Instance) int { return strings.Compare(a.Name, b.Name) })
	e.instances.Store(&list)
	e.gen.Add(1)
}

// breakerName returns the breaker name of instance.
func (e *Endpointer) breakerName(instance string) string {
	if e.cfg.Name == "" {
		return instance
	}
	return e.cfg.Name + "/" + instance
}

// open makes the endpoint and breaker of a new instance, or logs why it
// cannot and returns nil.
func (e *Endpointer) open(name string) *Instance {
	fail := func(err error) *Instance {
		e.log.LogAttrs(context.Background(), slog.LevelWarn, "balancer: instance left out",
			slog.String("name", e.cfg.Name), slog.String("instance", name), slog.String("error", err.Error()))
		return nil
	}
	bname := e.breakerName(name)
	if err := registry.CheckName(bname); err != nil {
		return fail(err)
	}
	var (
		raw    endpoint.Endpoint
		closer io.Closer
		err    error
	)
	if p := callback.Call("balancer factory", func() { raw, closer, err = e.factory(name) }); p != nil {
		callback.Log(e.log, p)
		return nil
	}
	if err == nil && raw == nil {
		err = errors.New("the factory returned a nil endpoint")
	}
	if err != nil {
		closeQuietly(e.log, closer)
		return fail(err)
	}
	bc := e.cfg.Breaker
	bc.Name, bc.Registry = bname, e.reg
	b, err := e.reg.Breaker(bname, bc.Settings())
	if err != nil {
		closeQuietly(e.log, closer)
		return fail(err)
	}
	in := &Instance{Name: name, Breaker: b, Endpoint: middleware.CircuitBreaker(bname, bc)(raw), raw: raw, closer: closer}
	in.cancel = b.Subscribe(e, func(registry.StateChange) { e.gen.Add(1) })
	return in
}

// shut closes an instance that left. Holds mu.
func (e *Endpointer) shut(in *Instance) {
	in.cancel()
	e.reg.Remove(in.Breaker.Name())
	closeQuietly(e.log, in.closer)
}

// closeQuietly closes c, logging an error or a panic: a Closer is user code.
func closeQuietly(l *slog.Logger, c io.Closer) {
	if c == nil {
		return
	}
	var err error
	if p := callback.Call("balancer instance Close", func() { err = c.Close() }); p != nil {
		callback.Log(l, p)
		return
	}
	if err != nil {
		l.LogAttrs(context.Background(), slog.LevelWarn, "balancer: closing an instance", slog.String("error", err.Error()))
	}
}

// Endpoints returns every instance's endpoint, through its breaker, ordered
// by instance name: the [sd.Endpointer] method, for go-kit's balancers.
func (e *Endpointer) Endpoints() ([]endpoint.Endpoint, error) {
	list, err := e.Instances()
	if err != nil {
		return nil, err
	}
	eps := make([]endpoint.Endpoint, len(list))
	for i, in := range list {
		eps[i] = in.Endpoint
	}
	return eps, nil
}

// Instances returns the current instances, ordered by name. The slice is
// shared: do not change it.
func (e *Endpointer) Instances() ([]*Instance, error) {
	if e.gone.Load() {
		return nil, ErrClosed
	}
	return *e.instances.Load(), nil
}

// Close deregisters from the Instancer, closes every instance's endpoint
// and removes their breakers from the registry. Calls made after it get
// [ErrClosed]. Safe to call more than once.
func (e *Endpointer) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.gone.Store(true)
	e.mu.Unlock()
	e.src.Deregister(e.ch)
	close(e.ch)
	<-e.done
	e.mu.Lock()
	for name, in := range e.live {
		delete(e.live, name)
		e.shut(in)
	}
	var none []*Instance
	e.instances.Store(&none)
	e.gen.Add(1)
	e.mu.Unlock()
}
