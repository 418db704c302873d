package registry

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/time/rate"
)

// ErrLimiterConflict is matched by the error for a limiter name that already
// has a limiter with another rate or burst.
var ErrLimiterConflict = errors.New("registry: rate limiter settings conflict")

// limiters is a registry's table of named rate limiters. Its zero value is
// ready to use.
type limiters struct {
	mu sync.Mutex
	m  map[string]namedLimiter
}

type namedLimiter struct {
	lim   *rate.Limiter
	limit rate.Limit
	burst int
}

// Limiter returns the rate limiter called name, creating it with limit and
// burst on first use, so that rate-limit layers of one name share one budget
// (as breakers of one name share one breaker). The same name with another
// limit or burst is an error matching [ErrLimiterConflict], never a silent
// first-wins; a bad name ([ErrInvalidName]) or a full registry
// ([ErrTooManyBreakers]: limiters count against the same cap as breakers) is
// an error too. Safe for concurrent use.
func (r *Registry) Limiter(name string, limit rate.Limit, burst int) (*rate.Limiter, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	t := &r.limiters
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.m[name]; ok {
		if l.limit != limit || l.burst != burst {
			return nil, fmt.Errorf("%w: limiter %q exists with rate %g/s burst %d, asked for rate %g/s burst %d",
				ErrLimiterConflict, name, float64(l.limit), l.burst, float64(limit), burst)
		}
		return l.lim, nil
	}
	if n := len(t.m) + r.breakerCount(); n >= r.max {
		return nil, fmt.Errorf("%w: limiter %q would be name %d, the cap is %d", ErrTooManyBreakers, name, n+1, r.max)
	}
	if t.m == nil {
		t.m = make(map[string]namedLimiter)
	}
	l := namedLimiter{lim: rate.NewLimiter(limit, burst), limit: limit, burst: burst}
	t.m[name] = l
	return l.lim, nil
}
