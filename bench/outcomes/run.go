package outcomes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// Outcome is what a caller call got.
type Outcome int

// The outcomes of a caller call.
const (
	Real     Outcome = iota // the dependency's answer, within the deadline
	Fallback                // the fallback value
	Failed                  // an error, or a real answer after the deadline
)

// Call is one caller call, as the caller saw it.
type Call struct {
	Start   time.Duration // since the run's start
	Latency time.Duration
	Outcome Outcome
	// Attempts is the number of dependency calls made for it.
	Attempts int
}

// StateChange is a circuit breaker's state change, as a contender's
// observer reported it (this toolkit's stack only).
type StateChange struct {
	At       time.Duration // since the run's start
	From, To registry.State
}

// Run is one scenario run with one contender.
type Run struct {
	Scenario  Scenario
	Contender string
	Calls     []Call
	// Dep are the dependency's calls, in the order they started.
	Dep []depCall
	// Changes are the breaker's state changes, in order, where the
	// contender reports them.
	Changes []StateChange
	ideal   bool
}

// Client is what a contender wraps: the dependency as a client sees it.
type Client struct {
	// Endpoint calls the dependency through a client that spreads the
	// attempts of each call over the instances ([Dependency.Call]).
	Endpoint endpoint.Endpoint
	// Instances has one endpoint per instance, for a contender that
	// balances over the instances itself (go-kit's sd/lb).
	Instances []endpoint.Endpoint
	// Observer is given this toolkit's events (the state changes of the
	// breaker named "dependency" are recorded in [Run].Changes).
	Observer middleware.Observer
	// Defer registers a function to call when the run ends, such as the
	// Close of a balancer's endpointer.
	Defer func(func())
	// Capacity is the dependency's capacity, calls a second, for a
	// contender that limits its rate to it.
	Capacity float64
}

// RunScenario runs s with c and seed. It runs in whatever time the caller
// has: inside a synctest bubble a minute of traffic takes a second or so of
// real time, and two runs with one seed give the same Run.
func RunScenario(s Scenario, c Contender, seed uint64) (*Run, error) {
	arrivals := arrivals(s, seed)
	t0 := time.Now()
	var server endpoint.Middleware
	if c.Server != nil {
		server = c.Server()
	}
	d := NewServer(s.Dependency, s.Fault, seed, t0, server)
	defer d.Close()
	run := &Run{Scenario: s, Contender: c.Name}
	var mu sync.Mutex
	var deferred []func()
	defer func() {
		for _, f := range slices.Backward(deferred) {
			f()
		}
	}()
	cl := Client{
		Defer:    func(f func()) { deferred = append(deferred, f) },
		Capacity: s.Dependency.Capacity(),
		Endpoint: func(ctx context.Context, req any) (any, error) {
			r, err := request(req)
			if err != nil {
				return nil, err
			}
			return d.Call(ctx, r)
		},
		Observer: middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			if e.Kind == middleware.EventStateChange && e.Name == "dependency" {
				mu.Lock()
				run.Changes = append(run.Changes, StateChange{At: time.Since(t0), From: e.From, To: e.To})
				mu.Unlock()
			}
		}),
	}
	for i := range d.Instances() {
		cl.Instances = append(cl.Instances, func(ctx context.Context, req any) (any, error) {
			r, err := request(req)
			if err != nil {
				return nil, err
			}
			return d.CallInstance(ctx, i, r)
		})
	}
	ep, err := c.New(cl)
	if err != nil {
		return nil, fmt.Errorf("contender %s: %w", c.Name, err)
	}
	calls := make([]Call, len(arrivals))
	deadline := time.Duration(s.Deadline)
	var wg sync.WaitGroup
	for i, at := range arrivals {
		time.Sleep(time.Until(t0.Add(at)))
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			req := &Request{ID: i}
			start := time.Now()
			resp, err := ep(ctx, req)
			lat := time.Since(start)
			out := Failed
			switch {
			case err != nil:
			case resp == FallbackValue:
				out = Fallback
			case lat <= deadline:
				if _, ok := resp.(*Response); ok {
					out = Real
				}
			}
			calls[i] = Call{Start: start.Sub(t0), Latency: lat, Outcome: out, Attempts: int(req.attempts.Load())}
		})
	}
	wg.Wait()
	run.Calls = calls
	run.Dep = d.snapshot()
	return run, nil
}

func request(req any) (*Request, error) {
	r, ok := req.(*Request)
	if !ok {
		return nil, fmt.Errorf("outcomes: request %T, want *Request", req)
	}
	return r, nil
}

// arrivals are the Poisson arrival times of the caller calls, drawn from
// their own source so that they are the same for every contender.
func arrivals(s Scenario, seed uint64) []time.Duration {
	rng := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, 1))
	var out []time.Duration
	at := time.Duration(0)
	for {
		at += time.Duration(rng.ExpFloat64() / s.rateAt(at) * float64(time.Second))
		if at >= time.Duration(s.Duration) {
			return out
		}
		out = append(out, at)
	}
}

// Measures sum up a run, or a window of it.
type Measures struct {
	Calls         int
	Goodput       float64 // share of calls answered with a real result within the deadline
	FallbackShare float64
	ErrorShare    float64
	// P50, P99, P999 and Max are the latency seen by the caller, whatever
	// the outcome.
	P50, P99, P999, Max time.Duration
	// RealP99 is the p99 latency of the calls answered with a real
	// result (the calls a limit admitted and the dependency served).
	RealP99       time.Duration
	DepCalls      int     // dependency calls made for these caller calls
	Amplification float64 // DepCalls / Calls
	// Peak is the most dependency calls at once (queued, in service or
	// hanging) over the window.
	Peak int
}

// Measure sums up the caller calls that started in [from, to), with the
// dependency calls made for them (their retries included, wherever they
// fall); Peak is over the dependency's calls in [from, to).
func (r *Run) Measure(from, to time.Duration) Measures {
	var m Measures
	var lats, realLats []time.Duration
	var real, fb, bad int
	for _, c := range r.Calls {
		if c.Start < from || c.Start >= to {
			continue
		}
		m.Calls++
		m.DepCalls += c.Attempts
		lats = append(lats, c.Latency)
		switch c.Outcome {
		case Real:
			real++
			realLats = append(realLats, c.Latency)
		case Fallback:
			fb++
		default:
			bad++
		}
	}
	m.Peak = r.peak(from, to)
	if m.Calls == 0 {
		return m
	}
	n := float64(m.Calls)
	m.Goodput, m.FallbackShare, m.ErrorShare = float64(real)/n, float64(fb)/n, float64(bad)/n
	m.Amplification = float64(m.DepCalls) / n
	slices.Sort(lats)
	m.P50, m.P99, m.P999, m.Max = quantile(lats, 0.50), quantile(lats, 0.99), quantile(lats, 0.999), lats[len(lats)-1]
	if len(realLats) > 0 {
		slices.Sort(realLats)
		m.RealP99 = quantile(realLats, 0.99)
	}
	return m
}

// peak is the most dependency calls held at once in [from, to).
func (r *Run) peak(from, to time.Duration) int {
	if r.ideal {
		// The ideal queues nothing: the dependency's workers are the
		// most it needs.
		return r.Scenario.Dependency.Workers * r.Scenario.Dependency.Instances
	}
	type edge struct {
		at time.Duration
		d  int
	}
	edges := make([]edge, 0, 2*len(r.Dep))
	for _, c := range r.Dep {
		if !c.held || c.end < from || c.heldFrom >= to {
			continue
		}
		edges = append(edges, edge{max(c.heldFrom, from), +1}, edge{c.end, -1})
	}
	// At one instant, ends before starts: a call that ends as another
	// starts does not overlap it.
	slices.SortFunc(edges, func(a, b edge) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.d - b.d
	})
	n, most := 0, 0
	for _, e := range edges {
		n += e.d
		most = max(most, n)
	}
	return most
}

// Whole measures the whole run.
func (r *Run) Whole() Measures { return r.Measure(0, time.Duration(r.Scenario.Duration)) }

// Window measures the calls that started in the fault window.
func (r *Run) Window() Measures {
	f := r.Scenario.Fault
	return r.Measure(time.Duration(f.Start), time.Duration(f.End))
}

// Detected is the start of the first caller call in the fault window that
// made no dependency call (a breaker's rejection), and false if none did.
func (r *Run) Detected() (time.Duration, bool) {
	f := r.Scenario.Fault
	for _, c := range r.Calls { // in arrival order
		if r.ideal && f.Kind != FaultFail && f.Kind != FaultHang {
			return 0, false // no breaker needs to reject a call
		}
		if c.Start >= time.Duration(f.Start) && c.Start < time.Duration(f.End) && (c.Attempts == 0 || r.ideal) {
			return c.Start, true
		}
	}
	return 0, false
}

// Recovered is how long after the fault's end the first real answer to a
// call started after it came, and false if none came.
func (r *Run) Recovered() (time.Duration, bool) {
	end := time.Duration(r.Scenario.Fault.End)
	best, ok := time.Duration(0), false
	for _, c := range r.Calls {
		if c.Start >= end && c.Outcome == Real {
			if at := c.Start + c.Latency - end; !ok || at < best {
				best, ok = at, true
			}
		}
	}
	return best, ok
}

// quantile is the nearest-rank q-quantile of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Point is one bucket of a run's timeline: the calls that started in
// [At, At+bucket).
type Point struct {
	At      time.Duration
	Goodput float64
	P99     time.Duration
}

// Timeline is the run's goodput and p99 per bucket of call starts.
func (r *Run) Timeline(bucket time.Duration) []Point {
	var out []Point
	for at := time.Duration(0); at < time.Duration(r.Scenario.Duration); at += bucket {
		m := r.Measure(at, at+bucket)
		out = append(out, Point{At: at, Goodput: m.Goodput, P99: m.P99})
	}
	return out
}
