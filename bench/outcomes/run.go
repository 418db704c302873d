package outcomes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
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

// Run is one scenario run with one contender.
type Run struct {
	Scenario  Scenario
	Contender string
	Calls     []Call
	// DepCalls are the start times of the dependency's calls, in order.
	DepCalls []time.Duration
	// Peak is the most calls the dependency held at once.
	Peak int
}

// RunScenario runs s with c and seed. It runs in whatever time the caller
// has: inside a synctest bubble a minute of traffic takes a second or so of
// real time, and two runs with one seed give the same Run.
func RunScenario(s Scenario, c Contender, seed uint64) (*Run, error) {
	arrivals := arrivals(s, seed)
	t0 := time.Now()
	d := NewDependency(s.Dependency, s.Fault, seed, t0)
	defer d.Close()
	ep, err := c.New(client(d))
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
	dc := d.snapshot()
	starts := make([]time.Duration, len(dc))
	for i, c := range dc {
		starts[i] = c.start
	}
	slices.Sort(starts)
	return &Run{Scenario: s, Contender: c.Name, Calls: calls, DepCalls: starts, Peak: d.Peak()}, nil
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
	P50, P99, Max time.Duration // latency seen by the caller
	DepCalls      int           // dependency calls made for these caller calls
	Amplification float64       // DepCalls / Calls
	Peak          int           // most dependency calls at once (whole run only)
}

// Measure sums up the caller calls that started in [from, to), with the
// dependency calls made for them (their retries included, wherever they
// fall).
func (r *Run) Measure(from, to time.Duration) Measures {
	var m Measures
	var lats []time.Duration
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
		case Fallback:
			fb++
		default:
			bad++
		}
	}
	if m.Calls == 0 {
		return m
	}
	n := float64(m.Calls)
	m.Goodput, m.FallbackShare, m.ErrorShare = float64(real)/n, float64(fb)/n, float64(bad)/n
	m.Amplification = float64(m.DepCalls) / n
	slices.Sort(lats)
	m.P50, m.P99, m.Max = quantile(lats, 0.50), quantile(lats, 0.99), lats[len(lats)-1]
	return m
}

// Whole measures the whole run.
func (r *Run) Whole() Measures {
	m := r.Measure(0, time.Duration(r.Scenario.Duration))
	m.Peak = r.Peak
	return m
}

// Detected is the start of the first caller call in the fault window that
// made no dependency call (a breaker's rejection), and false if none did.
func (r *Run) Detected() (time.Duration, bool) {
	f := r.Scenario.Fault
	for _, c := range r.Calls { // in arrival order
		if c.Start >= time.Duration(f.Start) && c.Start < time.Duration(f.End) && c.Attempts == 0 {
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

// Ideal is the limit no library can beat over the whole run: under overload
// the dependency serves at most its capacity; during an outage no call gets
// a real answer and the dependency needs to see only probes (counted as
// none here).
func (r *Run) Ideal() Measures {
	s := r.Scenario
	f := s.Fault
	var in, out int
	for _, c := range r.Calls {
		if f.active(c.Start) {
			in++
		} else {
			out++
		}
	}
	n := float64(in + out)
	m := Measures{Calls: in + out, Goodput: 1, Amplification: 1}
	if n == 0 {
		return m
	}
	switch f.Kind {
	case FaultFail, FaultHang:
		m.Goodput = float64(out) / n
		m.FallbackShare = float64(in) / n
		m.Amplification = float64(out) / n
	case FaultOverload:
		served := min(float64(in), s.Dependency.Capacity()*f.Window().Seconds())
		m.Goodput = (float64(out) + served) / n
		m.FallbackShare = 1 - m.Goodput
	}
	return m
}
