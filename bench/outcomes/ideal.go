package outcomes

import (
	"math"
	"time"
)

// Ideal is the run no library can beat for a scenario and seed, call by
// call, from the same arrivals and the same service-time draws as the
// contenders' runs:
//
//   - a call the dependency can serve gets a real answer in its first
//     attempt's service time, without queueing, from one dependency call;
//   - during an outage of every instance (fail or hang) a call gets the
//     fallback at once and the dependency sees none of it (a breaker's
//     probes, a handful per reset, are left out);
//   - when only some instances are bad, every call goes to a good one;
//   - under overload, or a brownout that cuts the capacity by its factor,
//     the dependency serves its capacity's worth of the window's calls,
//     spread evenly over them, and the rest get the fallback at once;
//   - when a share of calls fails, a call makes attempts until one whose
//     draw does not fail (the fewest that can get the answer, since no
//     library knows beforehand which attempt fails).
//
// Its peak concurrency is the dependency's workers, the most it can serve
// at once without queueing.
func Ideal(s Scenario, seed uint64) *Run {
	cfg := s.Dependency.withDefaults()
	d := &Dependency{cfg: cfg, seed: seed, sigma: cfg.sigma()}
	f := s.Fault
	arr := arrivals(s, seed)
	deadline := time.Duration(s.Deadline)
	whole := f.active(time.Duration(f.Start)) && !f.partial(cfg.Instances)

	// q is the share of the window's calls the dependency can serve.
	q := 1.0
	if whole && (f.Kind == FaultOverload || f.Kind == FaultSlow) {
		in := 0
		for _, at := range arr {
			if f.active(at) {
				in++
			}
		}
		capacity := cfg.Capacity()
		if f.Kind == FaultSlow {
			capacity /= f.Factor
		}
		if in > 0 {
			q = min(1, capacity*f.Window().Seconds()/float64(in))
		}
	}

	run := &Run{Scenario: s, Contender: "ideal", ideal: true}
	k := 0
	for i, at := range arr {
		service, _ := d.draw(i, 1)
		c := Call{Start: at, Latency: service, Outcome: Real, Attempts: 1}
		fallback := Call{Start: at, Outcome: Fallback}
		if whole && f.active(at) {
			switch f.Kind {
			case FaultFail, FaultHang:
				c = fallback
			case FaultFailShare:
				c = fallback
				for a := 1; a <= 64; a++ {
					if svc, draw := d.draw(i, a); draw >= f.Share {
						c = Call{Start: at, Latency: svc, Outcome: Real, Attempts: a}
						break
					}
				}
			case FaultOverload, FaultSlow:
				admit := math.Floor(float64(k+1)*q) > math.Floor(float64(k)*q)
				k++
				if f.Kind == FaultSlow {
					c.Latency = time.Duration(float64(service) * f.Factor)
				}
				if !admit || c.Latency > deadline {
					c = fallback
				}
			}
		}
		run.Calls = append(run.Calls, c)
	}
	return run
}
