package middleware

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/callback"
)

// LeasePool is a fleet's shared rate limit, handed out in leases of tokens
// ([LeasedRateLimit]): redisstore.Store.LeasePool keeps it in Redis,
// [NewMemoryLeasePool] in this process. Safe for concurrent use; each
// method bounds its own time.
type LeasePool interface {
	// Lease takes up to want tokens for the replica called replica and
	// returns them with the wait until a token would be free (when it
	// took none) and how many replicas the pool counts (at least 1).
	Lease(ctx context.Context, replica string, want int64) (Lease, error)
	// Return gives back n unused tokens of a lease.
	Return(ctx context.Context, n int64) error
	// Limit returns the fleet's rate (tokens per second) and burst.
	Limit() (rate float64, burst int)
}

// Lease is what [LeasePool.Lease] hands out.
type Lease struct {
	// Tokens is how many tokens the lease holds, 0 to the want asked.
	Tokens int64
	// Wait is how long until a token would be free, when Tokens is 0.
	Wait time.Duration
	// Replicas is how many replicas the pool counts, this one included.
	Replicas int
}

// Defaults and bounds of [LeasedRateLimitConfig].
const (
	// DefaultLeasePeriod is the default LeasedRateLimitConfig.Period.
	DefaultLeasePeriod = 100 * time.Millisecond
	// DefaultLeaseResync is the default LeasedRateLimitConfig.ResyncInterval.
	DefaultLeaseResync = time.Second
)

// LeasedRateLimitConfig configures [LeasedRateLimit]. Pool is required.
type LeasedRateLimitConfig struct {
	// Pool is the fleet's limit. Required.
	Pool LeasePool
	// Period is how much of its own demand a replica leases at once: a
	// lease holds about Period × the replica's recent rate of calls (at
	// least 1 token, at most the pool's burst), and what is left of it two
	// periods after it was taken goes back. Default [DefaultLeasePeriod];
	// between 1ms and 1m. For leases to save round trips, the pool's burst
	// must be at least its rate × Period.
	Period time.Duration
	// ResyncInterval is how long the layer decides by its local share
	// after the pool fails, before it asks the pool again. Default
	// [DefaultLeaseResync]; between 1ms and 1h.
	ResyncInterval time.Duration
	// Name names the layer in its events and errors. Default "".
	Name string
	// Observer receives an [EventRejected] for each call turned away.
	// Default nil: a [LogObserver] on [slog.Default].
	Observer Observer
}

// Validate returns nil if c is valid, and else every problem at once, each
// a [*ConfigError] matching [ErrInvalidConfig].
func (c LeasedRateLimitConfig) Validate() error {
	p := problems{layer: "leased_rate_limit", goType: "LeasedRateLimitConfig"}
	if c.Pool == nil {
		p.add("pool", "Pool", nil, "must be set: the fleet's limit (redisstore.Store.LeasePool, NewMemoryLeasePool)")
	}
	if c.Period != 0 && (c.Period < time.Millisecond || c.Period > time.Minute) {
		p.add("period", "Period", c.Period, fmt.Sprintf("must be 0 (the default, %v) or between 1ms and 1m", DefaultLeasePeriod))
	}
	if c.ResyncInterval != 0 && (c.ResyncInterval < time.Millisecond || c.ResyncInterval > time.Hour) {
		p.add("resync_interval", "ResyncInterval", c.ResyncInterval, fmt.Sprintf("must be 0 (the default, %v) or between 1ms and 1h", DefaultLeaseResync))
	}
	validateObserver(&p, c.Observer)
	return p.err()
}

// LeasedRateLimit returns a middleware that admits calls by a fleet's
// shared rate limit without asking the pool on every call: the replica
// takes a lease of tokens sized to its own recent demand (cfg.Period of
// it), spends it locally, one atomic decrement per admitted call, and
// gives back what is left when the lease expires. The fleet admits the
// pool's rate, give or take the tokens leased and not yet spent (at most a
// lease per replica); a replica that dies takes at most its lease with it.
// A call over the limit gets a [*RateLimitError] (matching
// [ErrRateLimited]) and an [EventRejected]. When the pool fails, the layer
// decides by its share of the limit (the pool's rate and burst over the
// replicas it last counted) for cfg.ResyncInterval, not by the whole
// limit. It panics with cfg.Validate's error when cfg is not valid, and
// the middleware panics, matching [ErrInvalidConfig], when given a nil
// endpoint. Safe for concurrent use.
func LeasedRateLimit(cfg LeasedRateLimitConfig) endpoint.Middleware {
	mustValid(cfg.Validate())
	if cfg.Period == 0 {
		cfg.Period = DefaultLeasePeriod
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = DefaultLeaseResync
	}
	r, burst := cfg.Pool.Limit()
	var id [8]byte
	_, _ = rand.Read(id[:])
	l := &leaser{pool: cfg.Pool, name: cfg.Name, obs: observer(cfg.Observer), rate: r, burst: burst,
		period: cfg.Period, resync: cfg.ResyncInterval, id: hex.EncodeToString(id[:]), last: time.Now(), replicas: 1}
	l.share.Store(rate.NewLimiter(rate.Limit(r), burst)) // one replica until the pool counts them
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		mustEndpoint("leased_rate_limit", next)
		return func(ctx context.Context, req any) (any, error) {
			l.calls.Add(1)
			if l.tokens.Add(-1) >= 0 {
				return next(ctx, req)
			}
			if err := l.slow(ctx); err != nil {
				return nil, err
			}
			return next(ctx, req)
		}
	}
}

// leaser is one LeasedRateLimit layer: its lease and its local share.
type leaser struct {
	pool   LeasePool
	name   string
	obs    Observer
	rate   float64
	burst  int
	period time.Duration
	resync time.Duration
	id     string

	tokens atomic.Int64 // left in the current lease; may dip below 0 while one call renews
	calls  atomic.Int64 // calls since the last lease, for its size
	share  atomic.Pointer[rate.Limiter]

	mu       sync.Mutex // held to take a lease
	replicas int        // as the pool last counted them
	last     time.Time  // when the last lease was taken
	empty    time.Time  // the fleet had no token before this: no lease asked until then
	down     time.Time  // the pool failed: local decisions until then
	timer    *time.Timer
	gen      uint64 // counts leases, so that an old lease's timer leaves a new one alone
}

// slow admits a call that found the lease spent: it takes a new lease, or
// decides by the local share while the pool is down, or rejects.
func (l *leaser) slow(ctx context.Context) error {
	l.mu.Lock()
	if l.tokens.Add(-1) >= 0 { // another call renewed meanwhile
		l.mu.Unlock()
		return nil
	}
	now := time.Now()
	if now.Before(l.down) {
		l.mu.Unlock()
		return l.local(ctx, now)
	}
	if now.Before(l.empty) {
		d := l.empty.Sub(now)
		l.mu.Unlock()
		return l.reject(ctx, d)
	}
	want := l.size(now)
	var (
		lease Lease
		err   error
	)
	// The pool is the user's (or the library's Redis client): a panic goes
	// on up to the caller, with the lock released.
	if p := callback.Call("lease pool", func() { lease, err = l.pool.Lease(ctx, l.id, want) }); p != nil {
		l.mu.Unlock()
		p.Repanic()
	}
	if err == nil && (lease.Tokens < 0 || lease.Tokens > want || lease.Replicas < 1 || lease.Wait < 0) {
		err = fmt.Errorf("middleware: leased_rate_limit: the pool answered %+v to a want of %d", lease, want)
	}
	if err != nil {
		if ctx.Err() != nil {
			l.mu.Unlock()
			return ctx.Err()
		}
		l.down = now.Add(l.resync)
		l.mu.Unlock()
		return l.local(ctx, now)
	}
	if lease.Replicas != l.replicas { // the local share, for when the pool is down
		l.replicas = lease.Replicas
		l.share.Store(rate.NewLimiter(rate.Limit(l.rate/float64(lease.Replicas)), max(1, l.burst/lease.Replicas)))
	}
	if lease.Tokens == 0 {
		// Ask again when a token is free, or later: up to half a period
		// or the time the fleet's bucket takes to fill, whichever is less,
		// so that a fleet over its limit leases tokens in batches rather
		// than one round trip per token, and loses none to a full bucket.
		fill := time.Duration(float64(l.burst-1) / l.rate * float64(time.Second))
		l.empty = now.Add(max(lease.Wait, min(l.period/2, fill)))
		l.mu.Unlock()
		return l.reject(ctx, lease.Wait)
	}
	l.tokens.Store(lease.Tokens - 1) // one for this call
	l.expireLater()
	l.mu.Unlock()
	return nil
}

// size returns the tokens to ask for: the calls since the last lease,
// scaled to one period, at least 1 and at most the burst. Holds mu.
func (l *leaser) size(now time.Time) int64 {
	elapsed := now.Sub(l.last)
	l.last = now
	calls := l.calls.Swap(0)
	if elapsed <= 0 {
		return 1
	}
	want := math.Ceil(float64(calls) * float64(l.period) / float64(elapsed))
	return int64(min(max(want, 1), float64(l.burst)))
}

// expireLater gives back, two periods from now, what is left of the lease
// just taken (sized to one period of demand, it is usually spent by then,
// and nothing goes back). Holds mu.
func (l *leaser) expireLater() {
	if l.timer != nil {
		l.timer.Stop()
	}
	l.gen++
	gen := l.gen
	l.timer = time.AfterFunc(2*l.period, func() {
		defer callback.Guard(nil, "lease pool")
		l.mu.Lock()
		if l.gen != gen { // a newer lease came while this timer was firing: it is not this one's to give back
			l.mu.Unlock()
			return
		}
		left := l.tokens.Swap(0)
		l.mu.Unlock()
		if left > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), l.resync)
			defer cancel()
			_ = l.pool.Return(ctx, left)
		}
	})
}

// local decides a call by this replica's share of the limit.
func (l *leaser) local(ctx context.Context, now time.Time) error {
	lim := l.share.Load()
	if lim.AllowN(now, 1) {
		return nil
	}
	return l.reject(ctx, time.Duration(math.Ceil((1-lim.TokensAt(now))/float64(lim.Limit())*float64(time.Second))))
}

func (l *leaser) reject(ctx context.Context, delay time.Duration) error {
	err := &RateLimitError{Name: l.name, Delay: max(delay, 0)}
	l.obs.Observe(ctx, Event{Kind: EventRejected, Layer: "rate_limit", Name: l.name, Err: err})
	return err
}

// NewMemoryLeasePool returns a [LeasePool] in this process's memory: a
// token bucket of rate tokens a second and burst at once (the generic cell
// rate algorithm, as the Redis pool), counting the replicas that leased in
// the last 3 seconds. Use it in tests of code that leases, and to share a
// limit between the layers of one process. It panics, matching
// [ErrInvalidConfig], when rate is not above 0 and finite or burst is
// below 1.
func NewMemoryLeasePool(rate float64, burst int) LeasePool {
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate <= 0 || burst < 1 {
		panic(fmt.Errorf("%w: memory lease pool: rate %v and burst %d: want a rate above 0 and finite, a burst of at least 1", ErrInvalidConfig, rate, burst))
	}
	return &memoryLeasePool{rate: rate, burst: burst, interval: float64(time.Second) / rate, seen: map[string]time.Time{}}
}

type memoryLeasePool struct {
	rate     float64
	burst    int
	interval float64 // ns per token

	mu   sync.Mutex
	tat  time.Time
	seen map[string]time.Time
}

// memoryLeaseStale is how long a replica counts after its last lease.
const memoryLeaseStale = 3 * time.Second

func (p *memoryLeasePool) Lease(_ context.Context, replica string, want int64) (Lease, error) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[replica] = now
	for r, at := range p.seen {
		if now.Sub(at) > memoryLeaseStale {
			delete(p.seen, r)
		}
	}
	tat := p.tat
	if tat.Before(now) {
		tat = now
	}
	avail := int64(math.Floor(float64(now.Sub(tat))/p.interval)) + int64(p.burst)
	k := min(want, avail)
	if k < 1 {
		wait := tat.Sub(now) - time.Duration(float64(p.burst-1)*p.interval)
		return Lease{Wait: max(wait, 0), Replicas: len(p.seen)}, nil
	}
	p.tat = tat.Add(time.Duration(float64(k) * p.interval))
	return Lease{Tokens: k, Replicas: len(p.seen)}, nil
}

func (p *memoryLeasePool) Return(_ context.Context, n int64) error {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	back := p.tat.Add(-time.Duration(float64(n) * p.interval))
	if back.Before(now) {
		back = now
	}
	if p.tat.After(now) {
		p.tat = back
	}
	return nil
}

func (p *memoryLeasePool) Limit() (float64, int) { return p.rate, p.burst }
