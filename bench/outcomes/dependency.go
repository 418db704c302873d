package outcomes

import (
	"context"

	"errors"
	"github.com/resiliencekit/resilience/endpoint"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Errors the dependency answers with.
var (
	// ErrUnavailable is the dependency's error in a fail-fast fault, and
	// for the failed share of calls in a fail-share fault.
	ErrUnavailable = errors.New("outcomes: dependency unavailable")
	// ErrQueueFull is returned when the dependency's queue is full.
	ErrQueueFull = errors.New("outcomes: dependency queue full")
)

// Fault kinds, the values of [Fault].Kind.
const (
	FaultNone      = "none"       // no fault; the window only marks the measures
	FaultFail      = "fail"       // every call fails at once with ErrUnavailable
	FaultHang      = "hang"       // every call hangs until its caller's context ends
	FaultSlow      = "slow"       // service time multiplied by Factor
	FaultFailShare = "fail_share" // a Share of calls fail at once with ErrUnavailable
	FaultOverload  = "overload"   // no dependency fault: callers offer Factor x capacity
)

// DependencyConfig describes the simulated server. A zero field takes its
// default.
type DependencyConfig struct {
	// Workers is the number of calls served at once. Default 4.
	Workers int `json:"workers"`
	// Median is the median service time. Default 10ms.
	Median duration `json:"median"`
	// P99 is the 99th percentile of the service time. Default 50ms.
	P99 duration `json:"p99"`
	// Queue bounds the calls waiting for a worker; beyond it a call fails
	// with ErrQueueFull. Default 100,000 (in effect unbounded).
	Queue int `json:"queue"`
	// Instances is the number of instances behind the client, each with
	// Workers workers and a Queue of its own. Default 1.
	Instances int `json:"instances"`
}

func (c DependencyConfig) withDefaults() DependencyConfig {
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Median == 0 {
		c.Median = duration(10 * time.Millisecond)
	}
	if c.P99 == 0 {
		c.P99 = duration(50 * time.Millisecond)
	}
	if c.Queue == 0 {
		c.Queue = 100_000
	}
	if c.Instances == 0 {
		c.Instances = 1
	}
	return c
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// sigma is the log-normal's shape: P99 = Median * exp(sigma * z99).
func (c DependencyConfig) sigma() float64 {
	return math.Log(float64(c.P99)/float64(c.Median)) / z99
}

// MeanService is the mean service time, Median * exp(sigma²/2).
func (c DependencyConfig) MeanService() time.Duration {
	s := c.sigma()
	return time.Duration(float64(c.Median) * math.Exp(s*s/2))
}

// Capacity is the calls per second the workers of every instance can serve.
func (c DependencyConfig) Capacity() float64 {
	return float64(max(c.Instances, 1)*c.Workers) / c.MeanService().Seconds()
}

// Request is what the callers send: the caller call's number, and a count of
// the dependency calls made for it (its attempts).
type Request struct {
	ID       int
	attempts atomic.Int32
}

// Response is the dependency's real answer.
type Response struct{ ID int }

// depCall is one call the dependency saw.
type depCall struct {
	caller   int
	instance int
	start    time.Duration // since the run's start
	// held says the instance's handler held the call (a server middleware
	// did not turn it away), from heldFrom to end.
	held          bool
	heldFrom, end time.Duration
}

// job is a call waiting for, or held by, a worker.
type job struct {
	ctx     context.Context
	service time.Duration
	done    chan struct{}
}

// Dependency is the simulated server: one or more instances, each with its
// own workers and queue. Its Call and its instances' endpoints are safe for
// concurrent use.
type Dependency struct {
	cfg       DependencyConfig
	fault     Fault
	seed      uint64
	t0        time.Time
	sigma     float64
	instances []*instance
	wg        sync.WaitGroup

	// serving counts the calls in the instances' handlers, so that the
	// run's record is read only once the last of them (a hedge's loser,
	// canceled after its caller returned) has ended.
	serving sync.WaitGroup

	mu       sync.Mutex
	calls    []depCall
	inFlight int
	peak     int
}

// instance is one server: its workers take jobs from its queue; handler
// is its handler behind its server middleware, if any.
type instance struct {
	queue   chan *job
	handler endpoint.Endpoint
}

// NewDependency starts the dependency's workers; Close stops them. Times in
// fault are measured from t0.
func NewDependency(cfg DependencyConfig, fault Fault, seed uint64, t0 time.Time) *Dependency {
	return NewServer(cfg, fault, seed, t0, nil)
}

// NewServer is NewDependency with each instance's handler behind a server
// middleware of its own (server(handler), called once per instance), as a
// server puts a concurrency limit in front of its handler. A call the
// middleware turns away counts as a dependency call, but is never held.
func NewServer(cfg DependencyConfig, fault Fault, seed uint64, t0 time.Time, server endpoint.Middleware) *Dependency {
	cfg = cfg.withDefaults()
	d := &Dependency{cfg: cfg, fault: fault, seed: seed, t0: t0, sigma: cfg.sigma()}
	for range cfg.Instances {
		in := &instance{queue: make(chan *job, cfg.Queue), handler: d.handle}
		if server != nil {
			in.handler = server(in.handler)
		}
		for range cfg.Workers {
			d.wg.Go(in.work)
		}
		d.instances = append(d.instances, in)
	}
	return d
}

func (in *instance) work() {
	for j := range in.queue {
		if j.ctx.Err() != nil {
			continue // its caller has gone: dropped unserved
		}
		time.Sleep(j.service)
		close(j.done)
	}
}

// Close stops the workers once the queues are drained.
func (d *Dependency) Close() {
	for _, in := range d.instances {
		close(in.queue)
	}
	d.wg.Wait()
}

// Instances is the number of instances.
func (d *Dependency) Instances() int { return len(d.instances) }

// Call serves one call, as a client in front of every instance does: the
// attempt goes to instance (ID + attempt) mod Instances, so each retry of a
// call goes to the next instance, and which instance serves an attempt does
// not depend on the order goroutines run in. It honours ctx: a queued or
// hanging call returns ctx's cause when ctx ends.
func (d *Dependency) Call(ctx context.Context, r *Request) (*Response, error) {
	attempt := int(r.attempts.Add(1))
	return d.serve(ctx, r, (r.ID+attempt-1)%len(d.instances), attempt)
}

// CallInstance serves one call on instance i, for a client that balances
// over the instances itself.
func (d *Dependency) CallInstance(ctx context.Context, i int, r *Request) (*Response, error) {
	return d.serve(ctx, r, i, int(r.attempts.Add(1)))
}

func (d *Dependency) serve(ctx context.Context, r *Request, inst, attempt int) (*Response, error) {
	d.serving.Add(1)
	defer d.serving.Done()
	d.mu.Lock()
	idx := len(d.calls)
	d.calls = append(d.calls, depCall{caller: r.ID, instance: inst, start: time.Since(d.t0)})
	d.mu.Unlock()
	resp, err := d.instances[inst].handler(ctx, &served{r: r, idx: idx, inst: inst, attempt: attempt})
	if err != nil {
		return nil, err
	}
	return resp.(*Response), nil
}

// served is a call as an instance's handler (behind its server middleware)
// gets it.
type served struct {
	r       *Request
	idx     int // in Dependency.calls
	inst    int
	attempt int
}

// handle is an instance's handler: it holds the call (queued, in service or
// hanging) until it is served, fails or its caller goes.
func (d *Dependency) handle(ctx context.Context, req any) (any, error) {
	c := req.(*served)
	now := time.Since(d.t0)
	d.mu.Lock()
	d.calls[c.idx].held = true
	d.calls[c.idx].heldFrom = now
	d.inFlight++
	d.peak = max(d.peak, d.inFlight)
	d.mu.Unlock()
	defer func() {
		end := time.Since(d.t0)
		d.mu.Lock()
		d.calls[c.idx].end = end
		d.inFlight--
		d.mu.Unlock()
	}()

	service, failDraw := d.draw(c.r.ID, c.attempt)
	if d.fault.hits(now, c.inst) {
		switch d.fault.Kind {
		case FaultFail:
			return nil, ErrUnavailable
		case FaultHang:
			<-ctx.Done()
			return nil, context.Cause(ctx)
		case FaultFailShare:
			if failDraw < d.fault.Share {
				return nil, ErrUnavailable
			}
		case FaultSlow:
			service = time.Duration(float64(service) * d.fault.Factor)
		}
	}

	j := &job{ctx: ctx, service: service, done: make(chan struct{})}
	select {
	case d.instances[c.inst].queue <- j:
	default:
		return nil, ErrQueueFull
	}
	select {
	case <-j.done:
		return &Response{ID: c.r.ID}, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// draw is the service time and the fail-share draw of attempt (from 1) of
// caller call id. One source per (caller call, attempt): the draws do not
// depend on the order goroutines run in.
func (d *Dependency) draw(id, attempt int) (service time.Duration, failDraw float64) {
	rng := rand.New(rand.NewPCG(d.seed, uint64(id)<<8|uint64(attempt)))
	service = time.Duration(float64(d.cfg.Median) * math.Exp(d.sigma*rng.NormFloat64()))
	return service, rng.Float64()
}

// Peak is the most calls the dependency held at once (queued, in service or
// hanging).
func (d *Dependency) Peak() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.peak
}

func (d *Dependency) snapshot() []depCall {
	d.serving.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]depCall(nil), d.calls...)
}
