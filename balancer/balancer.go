package balancer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd/lb"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// DefaultMaxEjectedShare is the default [BalancerConfig.MaxEjectedShare]:
// Envoy's max_ejection_percent and gRPC's outlier detection (A50) default.
const DefaultMaxEjectedShare = 0.1

// BalancerConfig configures a [Balancer]. The zero value is the defaults.
type BalancerConfig struct {
	// MaxEjectedShare is the largest share of the instances a Balancer
	// skips because their breakers are open: at least one instance may be
	// ejected and never all of them, and past the share the instances whose
	// breakers opened last stay in rotation, called without their breaker
	// (Envoy's max_ejection_percent). So a bad deploy that fails every
	// instance cannot take the whole fleet out of rotation: guard the
	// service as a whole with a breaker outside the balancer (see the
	// package doc). In (0, 1]. Default [DefaultMaxEjectedShare].
	MaxEjectedShare float64
}

// Validate returns nil if c is valid, and else an error matching
// [middleware.ErrInvalidConfig] naming the field.
func (c BalancerConfig) Validate() error {
	if math.IsNaN(c.MaxEjectedShare) || c.MaxEjectedShare < 0 || c.MaxEjectedShare > 1 {
		return &middleware.ConfigError{Path: "balancer.max_ejected_share", Field: "BalancerConfig.MaxEjectedShare",
			Value: c.MaxEjectedShare, Reason: "must be 0 (the default, 0.1) or in (0, 1]"}
	}
	return nil
}

// Balancer is a go-kit [lb.Balancer] over an [Endpointer]'s instances: round
// robin over the instances whose breakers are not open, with the ejected
// share bounded by [BalancerConfig.MaxEjectedShare]. A half-open instance
// stays in rotation: its breaker admits the probes and rejects the rest.
// The rotation is rebuilt only when an instance comes or goes or a breaker
// changes state, so a call costs an atomic load and an add. Safe for
// concurrent use.
type Balancer struct {
	e     *Endpointer
	share float64
	rr    atomic.Uint64
	mu    sync.Mutex // held while the rotation is rebuilt
	view  atomic.Pointer[view]
}

// view is the rotation for one generation of the Endpointer.
type view struct {
	gen     uint64
	members []member
	ejected []string // instance names, for the log
}

// member is an instance in rotation and the endpoint a call to it uses:
// through its breaker, or, for an open breaker kept in rotation by
// MaxEjectedShare, without it.
type member struct {
	in *Instance
	ep endpoint.Endpoint
}

// New returns a Balancer over e's instances. It returns an error matching
// [middleware.ErrInvalidConfig] when e is nil or cfg is not valid.
func New(e *Endpointer, cfg BalancerConfig) (*Balancer, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: balancer: nil Endpointer", middleware.ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxEjectedShare == 0 {
		cfg.MaxEjectedShare = DefaultMaxEjectedShare
	}
	return &Balancer{e: e, share: cfg.MaxEjectedShare}, nil
}

// Endpoint returns the next instance's endpoint in rotation: the
// [lb.Balancer] method. With no instance it returns [lb.ErrNoEndpoints];
// after the Endpointer's Close, [ErrClosed].
func (b *Balancer) Endpoint() (endpoint.Endpoint, error) {
	m, err := b.pick(nil)
	if err != nil {
		return nil, err
	}
	return m.ep, nil
}

// pick returns the next member in rotation, skipping those c has tried
// when another is left.
func (b *Balancer) pick(c *call) (*member, error) {
	v, err := b.current()
	if err != nil {
		return nil, err
	}
	n := uint64(len(v.members))
	if n == 0 {
		return nil, lb.ErrNoEndpoints
	}
	start := (b.rr.Add(1) - 1) % n
	if c != nil {
		for i := range n {
			if m := &v.members[(start+i)%n]; !c.has(m.in) {
				return m, nil
			}
		}
	}
	return &v.members[start], nil
}

// current returns the rotation of the Endpointer's current generation,
// rebuilding it if it is stale.
func (b *Balancer) current() (*view, error) {
	g := b.e.gen.Load()
	if v := b.view.Load(); v != nil && v.gen == g {
		return v, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	g = b.e.gen.Load() // read before the instances and states: a later change bumps it again
	prev := b.view.Load()
	if prev != nil && prev.gen == g {
		return prev, nil
	}
	list, err := b.e.Instances()
	if err != nil {
		return nil, err
	}
	v := b.build(list, g)
	b.view.Store(v)
	if prev == nil || !slices.Equal(prev.ejected, v.ejected) {
		b.e.log.LogAttrs(context.Background(), slog.LevelInfo, "balancer: rotation changed",
			slog.String("name", b.e.cfg.Name), slog.Int("instances", len(list)),
			slog.Int("in_rotation", len(v.members)), slog.Any("ejected", v.ejected))
	}
	return v, nil
}

// build makes the rotation of list: every instance but those ejected, the
// open breakers that opened first, at most the share allows.
func (b *Balancer) build(list []*Instance, gen uint64) *view {
	type open struct {
		i  int
		at int64
	}
	var opens []open
	states := make([]registry.State, len(list))
	for i, in := range list {
		s := in.Breaker.Snapshot()
		states[i] = s.State
		if s.State == registry.StateOpen {
			opens = append(opens, open{i, s.OpenedAt.UnixNano()})
		}
	}
	n := len(list)
	maxEject := min(max(1, int(math.Floor(b.share*float64(n)+1e-9))), n-1)
	slices.SortFunc(opens, func(x, y open) int { return cmp.Or(cmp.Compare(x.at, y.at), cmp.Compare(x.i, y.i)) })
	eject := make(map[int]bool, maxEject)
	v := &view{gen: gen}
	for _, o := range opens[:min(len(opens), max(maxEject, 0))] {
		eject[o.i] = true
	}
	for i, in := range list {
		switch {
		case eject[i]:
			v.ejected = append(v.ejected, in.Name)
		case states[i] == registry.StateOpen:
			v.members = append(v.members, member{in: in, ep: in.raw})
		default:
			v.members = append(v.members, member{in: in, ep: in.Endpoint})
		}
	}
	return v
}

// call is one call's record of the instances its attempts have tried.
type call struct {
	buf   [4]*Instance
	tried []*Instance
}

func (c *call) has(in *Instance) bool { return slices.Contains(c.tried, in) }

func (c *call) add(in *Instance) {
	if c.tried == nil {
		c.tried = c.buf[:0]
	}
	if !c.has(in) {
		c.tried = append(c.tried, in)
	}
}

type callKey struct{}

// maxRepicks bounds how many times one attempt moves on from an instance
// whose breaker rejected it (it opened between the pick and the call, or
// its half-open probes were taken).
const maxRepicks = 8

// Retry returns an endpoint that calls b's instances with
// [middleware.Retry]'s semantics (cfg's attempts, backoff, jitter, deadline,
// budget, events; rejections such as [middleware.ErrLimited] and an open
// breaker's are never retried), each attempt on an instance this call has
// not tried while one is left, where go-kit's lb.Retry retries at once, in a
// goroutine per attempt. An instance whose own breaker rejects the attempt
// is no attempt: the call moves on to the next instance at once. It panics,
// matching [middleware.ErrInvalidConfig], when b is nil or cfg is not
// valid. Each call allocates its record of the instances tried.
func Retry(b *Balancer, cfg middleware.RetryConfig) endpoint.Endpoint {
	if b == nil {
		panic(fmt.Errorf("%w: balancer: Retry of a nil Balancer", middleware.ErrInvalidConfig))
	}
	attempt := func(ctx context.Context, req any) (any, error) {
		c, _ := ctx.Value(callKey{}).(*call)
		for repick := 0; ; repick++ {
			m, err := b.pick(c)
			if err != nil {
				return nil, err
			}
			if c != nil {
				c.add(m.in)
			}
			resp, err := m.ep(ctx, req)
			if repick < maxRepicks && rejectedBy(err, m.in) {
				continue
			}
			return resp, err
		}
	}
	r := middleware.Retry(cfg)(attempt)
	return func(ctx context.Context, req any) (any, error) {
		return r(context.WithValue(ctx, callKey{}, &call{}), req)
	}
}

// rejectedBy reports whether err is in's own breaker's rejection.
func rejectedBy(err error, in *Instance) bool {
	e, ok := errors.AsType[*registry.CircuitOpenError](err)
	return ok && e.Service == in.Breaker.Name()
}
