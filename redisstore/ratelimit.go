package redisstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// gcraScript is the generic cell rate algorithm (as in go-redis/redis_rate):
// the key holds the theoretical arrival time (TAT, microseconds by Redis's
// clock) of the next call; a call is admitted when it is due no later than
// burst emission intervals ahead of now, plus the wait allowed (ARGV[3]).
// It returns {admitted, delay in microseconds}: the wait before an admitted
// call is due, or before a rejected call would be.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local maxDelay = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0) or 0
if tat < now then tat = now end
local newTat = tat + interval
local delay = newTat - burst * interval - now
if delay > maxDelay then
  return {0, math.ceil(delay)}
end
redis.call('SET', KEYS[1], string.format('%.0f', newTat), 'PX', math.ceil((newTat - now) / 1000) + 1)
if delay < 0 then delay = 0 end
return {1, math.ceil(delay)}
`)

// RateLimit returns a middleware like [middleware.RateLimit], with the same
// configuration and errors, whose budget is shared by every process that
// uses the same Redis, [Config.Prefix] and key: the fleet as a whole admits
// cfg.Rate calls per second with bursts of cfg.Burst (the generic cell rate
// algorithm, one Lua script, one round trip a call, by Redis's clock). An
// empty key falls back to cfg.Name. With cfg.Limiter set, its limit and
// burst (read at each call) are the fleet's.
//
// A call turned away returns a [*middleware.RateLimitError] matching
// [middleware.ErrRateLimited] and is reported as [middleware.EventRejected].
// With cfg.Wait, a call takes the next free slot in the fleet's schedule and
// waits for it, unless it would be due at or after the context's deadline
// (then it is rejected at once, matching [context.DeadlineExceeded] too); a
// call that gives up during its wait does not give its slot back.
//
// When Redis fails or takes longer than [Config.Timeout], the call is
// decided by a local limiter instead (cfg.Limiter, or one of Rate and Burst:
// each replica then admits the whole rate, as it would without Redis), and
// so is every call for the next [Config.ResyncInterval], with no Redis round
// trip; then one call tries Redis again. [Config.OnStatus] hears of the
// outage and of the return.
//
// RateLimit panics, at construction, with an error matching
// [middleware.ErrInvalidConfig] when cfg is invalid, when both key and
// cfg.Name are empty, or when the key is not a valid name
// ([registry.CheckName]: printable, at most 256 bytes). Keys taken from
// request data are the caller's to bound.
func (s *Store) RateLimit(key string, cfg middleware.RateLimitConfig) endpoint.Middleware {
	if key == "" {
		key = cfg.Name
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if key == "" {
		panic(fmt.Errorf("%w: rate_limit.name: must be set (or pass a key to RateLimit)", middleware.ErrInvalidConfig))
	}
	if err := registry.CheckName(key); err != nil {
		panic(fmt.Errorf("%w: rate_limit.name: %w", middleware.ErrInvalidConfig, err))
	}
	localMW := middleware.RateLimit(cfg)
	obs := cfg.Observer
	if obs == nil {
		obs = middleware.LogObserver(cfg.Logger)
	}
	l := &limiter{s: s, key: s.cfg.Prefix + "rate:" + key, name: cfg.Name, rate: cfg.Rate, burst: cfg.Burst, lim: cfg.Limiter, wait: cfg.Wait, obs: obs}
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		if next == nil {
			panic(fmt.Errorf("%w: rate_limit: nil endpoint", middleware.ErrInvalidConfig))
		}
		local := localMW(next)
		return func(ctx context.Context, req any) (any, error) {
			if !s.limUp() {
				s.limLocal.Add(1)
				return local(ctx, req)
			}
			ok, delay, err := l.take(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				s.limFailed(err)
				s.limLocal.Add(1)
				return local(ctx, req)
			}
			s.limOK()
			if !ok {
				return nil, l.reject(ctx, delay)
			}
			if delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return nil, ctx.Err()
				}
			}
			return next(ctx, req)
		}
	}
}

// limiter is one RateLimit layer's resolved configuration; never modified
// after construction.
type limiter struct {
	s     *Store
	key   string
	name  string
	rate  float64
	burst int
	lim   *rate.Limiter
	wait  bool
	obs   middleware.Observer
}

// noDeadline is the wait allowed to a waiting call whose context has no
// deadline: about 31 years, in microseconds.
const noDeadline = 1e15

// take asks Redis for a slot. It returns whether the call is admitted and
// the delay: the wait before the slot (admitted) or until one would be free
// (rejected).
func (l *limiter) take(ctx context.Context) (ok bool, delay time.Duration, err error) {
	r, burst := l.rate, l.burst
	if l.lim != nil {
		r, burst = float64(l.lim.Limit()), l.lim.Burst()
	}
	switch {
	case r >= float64(rate.Inf) || math.IsInf(r, 1):
		return true, 0, nil
	case r <= 0 || burst < 1:
		return false, middleware.InfiniteDelay, nil
	}
	maxDelay := 0.0
	if l.wait {
		maxDelay = noDeadline
		if d, has := ctx.Deadline(); has {
			maxDelay = float64(time.Until(d).Microseconds()) - 1
		}
	}
	interval := 1e6 / r
	tctx, cancel := context.WithTimeout(ctx, l.s.cfg.Timeout)
	defer cancel()
	res, err := gcraScript.Run(tctx, l.s.c, []string{l.key}, strconvF(interval), burst, strconvF(maxDelay)).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("redisstore: rate script returned %d values, want 2", len(res))
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

func strconvF(f float64) string { return fmt.Sprintf("%.3f", f) }

// reject reports and returns the rejection of a call.
func (l *limiter) reject(ctx context.Context, delay time.Duration) error {
	err := &middleware.RateLimitError{Name: l.name, Delay: delay}
	if l.wait && delay < middleware.InfiniteDelay {
		err.Cause = context.DeadlineExceeded
	}
	l.obs.Observe(ctx, middleware.Event{Kind: middleware.EventRejected, Layer: "rate_limit", Name: l.name, Delay: delay, Err: err})
	return err
}

// limUp reports whether a rate limit should ask Redis now: Redis is not
// known to be down, or it has been down for ResyncInterval and this caller
// is the one that tries it again.
func (s *Store) limUp() bool {
	d := s.limDown.Load()
	if d == 0 {
		return true
	}
	now := time.Now().UnixNano()
	if now < d {
		return false
	}
	return s.limDown.CompareAndSwap(d, now+int64(s.cfg.ResyncInterval))
}

// limFailed notes that Redis failed a rate limit: local decisions for the
// next ResyncInterval.
func (s *Store) limFailed(err error) {
	s.limErrs.Add(1)
	s.limDown.Store(time.Now().Add(s.cfg.ResyncInterval).UnixNano())
	if s.limReported.CompareAndSwap(false, true) {
		s.status(registry.StoreStatus{Healthy: false, Err: err, At: time.Now()})
	}
}

// limOK notes that Redis answered a rate limit.
func (s *Store) limOK() {
	if s.limDown.Load() != 0 {
		s.limDown.Store(0)
	}
	if s.limReported.Load() && s.limReported.CompareAndSwap(true, false) {
		s.status(registry.StoreStatus{Healthy: true, At: time.Now()})
	}
}

// LimiterStats are the counters of a store's rate limits, for metrics.
type LimiterStats struct {
	// Healthy reports whether the rate limits ask Redis now.
	Healthy bool `json:"healthy"`
	// Errors counts Redis operations of the rate limits that failed.
	Errors uint64 `json:"errors"`
	// LocalDecisions counts calls decided by the local limiter.
	LocalDecisions uint64 `json:"local_decisions"`
}

// LimiterStats returns the counters of the store's rate limits.
func (s *Store) LimiterStats() LimiterStats {
	return LimiterStats{Healthy: s.limDown.Load() == 0, Errors: s.limErrs.Load(), LocalDecisions: s.limLocal.Load()}
}
