package balancer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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
	// Pick is how an instance is chosen for a call. Default [RoundRobin].
	Pick Pick
	// DecayTime is how fast [PeakEWMA] forgets an instance's latency: its
	// moving average decays with this time constant. Default (0)
	// [DefaultDecayTime]; otherwise between 1ms and an hour. Used only
	// with PeakEWMA.
	DecayTime time.Duration
	// Rand returns the random numbers of [LeastRequest] and [PeakEWMA].
	// Default nil: math/rand/v2's Uint64. Set it for runs that must repeat.
	Rand func() uint64
}

// Pick is how a [Balancer] chooses an instance for a call.
type Pick uint8

const (
	// RoundRobin takes the instances in rotation in turn.
	RoundRobin Pick = iota
	// LeastRequest takes the less busy (fewer calls in flight through the
	// Balancer) of two instances drawn at random: Envoy's LEAST_REQUEST,
	// the power of two choices. An instance that slows down holds more
	// calls in flight and is picked less, before any breaker could tell.
	LeastRequest
	// PeakEWMA takes, of two instances drawn at random, the one with the
	// lower cost: its calls in flight plus one, times a moving average of
	// its latency that jumps up to a slower call at once and decays over
	// DecayTime (Finagle's and Linkerd's P2C with peak EWMA). A slow
	// instance is avoided from its first slow answer, and tried again once
	// its average has decayed below the others' cost.
	PeakEWMA
)

// String returns "round-robin", "least-request" or "peak-ewma".
func (p Pick) String() string {
	switch p {
	case RoundRobin:
		return "round-robin"
	case LeastRequest:
		return "least-request"
	case PeakEWMA:
		return "peak-ewma"
	}
	return fmt.Sprintf("Pick(%d)", uint8(p))
}

// DefaultDecayTime is the default [BalancerConfig].DecayTime: Finagle's.
const DefaultDecayTime = 10 * time.Second

// Validate returns nil if c is valid, and else an error matching
// [middleware.ErrInvalidConfig] naming the field.
func (c BalancerConfig) Validate() error {
	var errs []error
	if math.IsNaN(c.MaxEjectedShare) || c.MaxEjectedShare < 0 || c.MaxEjectedShare > 1 {
		errs = append(errs, &middleware.ConfigError{Path: "balancer.max_ejected_share", Field: "BalancerConfig.MaxEjectedShare",
			Value: c.MaxEjectedShare, Reason: "must be 0 (the default, 0.1) or in (0, 1]"})
	}
	if c.Pick > PeakEWMA {
		errs = append(errs, &middleware.ConfigError{Path: "balancer.pick", Field: "BalancerConfig.Pick",
			Value: c.Pick, Reason: "must be RoundRobin, LeastRequest or PeakEWMA"})
	}
	if c.DecayTime != 0 && (c.DecayTime < time.Millisecond || c.DecayTime > time.Hour) {
		errs = append(errs, &middleware.ConfigError{Path: "balancer.decay_time", Field: "BalancerConfig.DecayTime",
			Value: c.DecayTime, Reason: "must be 0 (the default, 10s) or between 1ms and 1h"})
	}
	return errors.Join(errs...)
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
	how   Pick
	decay float64 // DecayTime in ns
	rand  func() uint64
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
	if cfg.DecayTime == 0 {
		cfg.DecayTime = DefaultDecayTime
	}
	b := &Balancer{e: e, share: cfg.MaxEjectedShare, how: cfg.Pick, decay: float64(cfg.DecayTime), rand: cfg.Rand}
	if b.rand == nil {
		b.rand = rand.Uint64
	}
	return b, nil
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
	if b.how != RoundRobin && n > 1 {
		return b.pickTwo(v.members, c), nil
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

// pickTwo returns the cheaper of two members drawn at random among those c
// has not tried (among all, when fewer than two are left): the less busy
// for LeastRequest, the lower cost for PeakEWMA.
func (b *Balancer) pickTwo(ms []member, c *call) *member {
	var buf [16]int
	free := buf[:0]
	if c != nil && len(c.tried) > 0 {
		for i := range ms {
			if !c.has(ms[i].in) {
				free = append(free, i)
			}
		}
	}
	var x, y *member
	switch {
	case len(free) == 1:
		return &ms[free[0]]
	case len(free) >= 2:
		r := b.rand()
		i := r % uint64(len(free))
		j := (i + 1 + (r>>32)%uint64(len(free)-1)) % uint64(len(free))
		x, y = &ms[free[i]], &ms[free[j]]
	default:
		r := b.rand()
		n := uint64(len(ms))
		i := r % n
		j := (i + 1 + (r>>32)%(n-1)) % n
		x, y = &ms[i], &ms[j]
	}
	if b.how == PeakEWMA {
		now := time.Now()
		cx, okx := x.in.cost(now, b.decay)
		cy, oky := y.in.cost(now, b.decay)
		if okx && oky {
			if cy < cx {
				return y
			}
			return x
		}
		// An instance not sampled yet has no latency to compare: the
		// calls in flight decide, as for LeastRequest.
	}
	if y.in.active.Load() < x.in.active.Load() {
		return y
	}
	return x
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
			v.members = append(v.members, member{in: in, ep: in.counted(in.raw, b.timed())})
		default:
			v.members = append(v.members, member{in: in, ep: in.counted(in.Endpoint, b.timed())})
		}
	}
	return v
}

// timed returns the decay time of the latency record of the members'
// calls, or 0 when the pick needs none.
func (b *Balancer) timed() float64 {
	if b.how == PeakEWMA {
		return b.decay
	}
	return 0
}

// call is one call's record of the instances its attempts have tried.
// Hedged attempts run at once, so it has a lock: held across an attempt's
// pick and its add, so that two attempts of one call do not pick one
// instance when another is left.
type call struct {
	mu    sync.Mutex
	buf   [4]*Instance
	tried []*Instance
}

// pickFor picks for an attempt of the call c (nil: a call without a
// record) and records the instance picked.
func (b *Balancer) pickFor(c *call) (*member, error) {
	if c == nil {
		return b.pick(nil)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := b.pick(c)
	if err == nil {
		c.add(m.in)
	}
	return m, err
}

// has and add are called with c.mu held.
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
	return retryWith(b, cfg, nil)
}

// retryWith is Retry with inner, if not nil, around each attempt.
func retryWith(b *Balancer, cfg middleware.RetryConfig, inner endpoint.Middleware) endpoint.Endpoint {
	if b == nil {
		panic(fmt.Errorf("%w: balancer: Retry of a nil Balancer", middleware.ErrInvalidConfig))
	}
	attempt := func(ctx context.Context, req any) (any, error) {
		c, _ := ctx.Value(callKey{}).(*call)
		for repick := 0; ; repick++ {
			m, err := b.pickFor(c)
			if err != nil {
				return nil, err
			}
			resp, err := m.ep(ctx, req)
			if repick < maxRepicks && rejectedBy(err, m.in) {
				continue
			}
			return resp, err
		}
	}
	var ep endpoint.Endpoint = attempt
	if inner != nil {
		ep = inner(ep)
	}
	r := middleware.Retry(cfg)(ep)
	return func(ctx context.Context, req any) (any, error) {
		return r(context.WithValue(ctx, callKey{}, &call{}), req)
	}
}

// RetryHedged is [Retry] with [middleware.Hedge] inside each attempt: an
// attempt not answered within hedge's delay is sent again, to an instance
// this call has not tried, and the first answer wins (hedge's Idempotent
// decides which calls may be hedged, and its Budget bounds the hedges).
// With [LeastRequest] or [PeakEWMA], a slow instance is both picked less
// and hedged around. It panics, matching [middleware.ErrInvalidConfig],
// when b is nil or a config is not valid.
func RetryHedged(b *Balancer, retry middleware.RetryConfig, hedge middleware.HedgeConfig) endpoint.Endpoint {
	return retryWith(b, retry, middleware.Hedge(hedge))
}

// rejectedBy reports whether err is in's own breaker's rejection.
func rejectedBy(err error, in *Instance) bool {
	e, ok := errors.AsType[*registry.CircuitOpenError](err)
	return ok && e.Service == in.Breaker.Name()
}
