package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// Limits of the rate scripts (Lua numbers are doubles).
const (
	// maxInterval bounds the emission interval, in microseconds: a rate
	// below one call in about 31,700 years is one call in that time.
	maxInterval = 1e18
	// maxTTLMs bounds the expiry of a rate limit's key, in milliseconds
	// (about 31,700 years), far below where Redis's expire time overflows.
	maxTTLMs = 1e15
)

// Codes of a rate script's refusal {-1, code}: the key holds no sane TAT
// (tatCheckLua spells them as literals).
const (
	badTATFormat = 1 // not a non-negative decimal integer
	badTATAhead  = 2 // further ahead of Redis's clock than any call books
)

// tatCheckLua is the rate scripts' one check of what a key holds: a TAT
// (a non-negative decimal integer of microseconds, as the scripts write
// it) at most ahead microseconds past now. It sets tat (now when the key
// is absent) or returns the refusal {-1, code}, writing nothing. A key of
// another type makes GET fail with WRONGTYPE.
const tatCheckLua = `
local v = redis.call('GET', KEYS[1])
local tat = now
if v then
  if #v > 64 or not string.find(v, '^%d+$') then return {-1, 1} end
  local n = tonumber(v)
  if not n or n > now + ahead then return {-1, 2} end
  if n > tat then tat = n end
end
`

// gcraScript is the generic cell rate algorithm (as in go-redis/redis_rate):
// the key holds the theoretical arrival time (TAT, microseconds by Redis's
// clock) of the next call; a call is admitted when it is due no later than
// burst emission intervals ahead of now, plus the wait allowed (ARGV[3]).
// ARGV[4] is how far ahead of now a sane TAT may be. It returns {admitted,
// delay in microseconds}: the wait before an admitted call is due, or
// before a rejected call would be; or {-1, code} for a key that holds no
// sane TAT, left as it is.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local maxDelay = tonumber(ARGV[3])
local ahead = tonumber(ARGV[4])
` + tatCheckLua + `
local newTat = tat + interval
local delay = (tat - now) - (burst - 1) * interval -- exact for burst 1, whatever the interval
if delay > maxDelay then
  return {0, math.ceil(math.min(delay, ` + maxDelayLua + `))}
end
local px = math.min(math.ceil((newTat - now) / 1000) + 1, ` + maxTTLLua + `)
redis.call('SET', KEYS[1], string.format('%.0f', newTat), 'PX', string.format('%.0f', px))
if delay < 0 then delay = 0 end
return {1, math.ceil(delay)}
`)

// giveBackScript gives back the slot of a call that was admitted but gave
// up during its wait: the TAT moves back one interval (ARGV[1]), never
// below now, when the key still holds a sane TAT (ARGV[2] as gcraScript's
// ARGV[4]). It returns 1 when it moved the TAT, 0 otherwise.
var giveBackScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local ahead = tonumber(ARGV[2])
` + tatCheckLua + `
if tat <= now then return 0 end
local newTat = math.max(tat - interval, now)
local px = math.min(math.ceil((newTat - now) / 1000) + 1, ` + maxTTLLua + `)
redis.call('SET', KEYS[1], string.format('%.0f', newTat), 'PX', string.format('%.0f', px))
return 1
`)

// The limits, as the Lua source spells them.
var (
	maxTTLLua   = strconv.FormatFloat(maxTTLMs, 'f', 0, 64)
	maxDelayLua = strconv.FormatFloat(maxDelayUs, 'f', 0, 64)
)

// RateLimit returns a middleware like [middleware.RateLimit], with the same
// configuration and errors, whose budget is shared by every process that
// uses the same Redis, [Config.Prefix] and key: the fleet as a whole admits
// cfg.Rate calls per second with bursts of cfg.Burst (the generic cell rate
// algorithm, one Lua script, one round trip a call, by Redis's clock). An
// empty key falls back to cfg.Name. With cfg.Limiter set, its limit and
// burst (read at each call) are the fleet's. Every rate the configuration
// accepts works shared; a rate below one call in about 31,700 years is one
// call in that time.
//
// A call turned away returns a [*middleware.RateLimitError] matching
// [middleware.ErrRateLimited] and is reported as [middleware.EventRejected].
// With cfg.Wait, a call takes the next free slot in the fleet's schedule and
// waits for it, unless it would be due at or after the context's deadline
// (then it is rejected at once, matching [context.DeadlineExceeded] too) or
// more than cfg.MaxWait ahead ([middleware.RateLimitConfig.WaitBound]; then
// it is rejected at once, matching ErrRateLimited alone): no wait books a
// slot further ahead. A call whose context ends during its wait returns the
// context's error and gives its slot back (one more round trip, bounded by
// [Config.Timeout]): the schedule moves back one interval, never before
// now.
//
// What the key holds is untrusted: a value that is not a TAT the script
// wrote (another type, a foreign string, a number out of range, a time
// further ahead than any call books) is left as it is, and that one limit
// decides locally (as below) for [Config.ResyncInterval], then tries Redis
// again; [Config.OnStatus] hears of it with Name the key given here and Err
// a [*registry.KeyError] matching [registry.ErrBadRecord], and of its
// return (Healthy true, the same Name). So does a Redis error reply about
// the key. The other rate limits of the store stay shared.
//
// When Redis fails or takes longer than [Config.Timeout], the call is
// decided by a local limiter instead (cfg.Limiter, or one of Rate and Burst:
// each replica then admits the whole rate, as it would without Redis), and
// so is every call of every rate limit of the store for the next
// [Config.ResyncInterval], with no Redis round trip; then one call tries
// Redis again. [Config.OnStatus] hears of the outage and of the return.
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
		obs = middleware.LogObserver(nil)
	}
	l := &limiter{
		s: s, keyHealth: keyHealth{keyName: key}, key: s.cfg.Prefix + "rate:" + key, name: cfg.Name,
		rate: cfg.Rate, burst: cfg.Burst, lim: cfg.Limiter,
		wait: cfg.Wait, maxWait: cfg.WaitBound(), obs: obs,
	}
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		if next == nil {
			panic(fmt.Errorf("%w: rate_limit: nil endpoint", middleware.ErrInvalidConfig))
		}
		local := localMW(next)
		return func(ctx context.Context, req any) (any, error) {
			if !l.up(s.cfg.ResyncInterval) || !s.limUp() {
				s.limLocal.Add(1)
				return local(ctx, req)
			}
			tk, err := l.take(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if ke := l.keyErr(err); ke != nil {
					s.limOK() // Redis answered
					l.bad(s, ke)
				} else {
					s.limFailed(err)
				}
				s.limLocal.Add(1)
				return local(ctx, req)
			}
			s.limOK()
			l.sane(s)
			if !tk.ok {
				return nil, l.reject(ctx, tk)
			}
			if tk.delay > 0 {
				t := time.NewTimer(tk.delay)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					l.giveBack(ctx, tk)
					return nil, ctx.Err()
				}
			}
			return next(ctx, req)
		}
	}
}

// limiter is one RateLimit layer's resolved configuration, never modified
// after construction, and the health of its key.
type limiter struct {
	s       *Store
	key     string // the Redis key
	name    string
	rate    float64
	burst   int
	lim     *rate.Limiter
	wait    bool
	maxWait time.Duration
	obs     middleware.Observer

	keyHealth
}

// keyHealth is whether a rate limit's key is known to be bad, shared by
// RateLimit's and LeasedRateLimit's layers: while it is, the limit decides
// locally, and Redis is tried again every ResyncInterval.
type keyHealth struct {
	keyName     string       // the key given by the user, for statuses
	keyDown     atomic.Int64 // UnixNano until which this limit decides locally, its key being bad; 0 when sane
	keyReported atomic.Bool  // a bad key was reported
}

// maxDelayUs bounds the delays the rate script returns, in microseconds
// (about 285 years, within a time.Duration); a longer one is
// [infiniteDelay].
const maxDelayUs = 9e15

// taken is the answer of the rate script to one call.
type taken struct {
	ok         bool          // admitted
	delay      time.Duration // the wait before the slot (admitted) or until one would be free (rejected)
	byDeadline bool          // the context's deadline, not MaxWait, bounded the wait
	interval   float64       // the emission interval the call used, µs
	ahead      float64       // how far ahead of now a sane TAT may be, µs
}

// take asks Redis for a slot. The error is a [*registry.KeyError] when the
// key holds no sane TAT.
func (l *limiter) take(ctx context.Context) (taken, error) {
	r, burst := l.rate, l.burst
	if l.lim != nil {
		r, burst = float64(l.lim.Limit()), l.lim.Burst()
	}
	switch {
	case r >= float64(rate.Inf) || math.IsInf(r, 1):
		return taken{ok: true}, nil
	case r <= 0 || burst < 1:
		return taken{delay: infiniteDelay}, nil
	}
	tk := taken{interval: min(1e6/r, maxInterval)}
	tk.ahead = (float64(burst)+1)*tk.interval + float64(maxRateLimitMaxWait.Microseconds())
	maxDelay := 0.0
	if l.wait {
		maxDelay = float64(l.maxWait.Microseconds())
		if d, has := ctx.Deadline(); has {
			if left := float64(time.Until(d).Microseconds()) - 1; left <= maxDelay {
				maxDelay, tk.byDeadline = left, true
			}
		}
	}
	tctx, cancel := context.WithTimeout(ctx, l.s.cfg.Timeout)
	defer cancel()
	res, err := gcraScript.Run(tctx, l.s.c, []string{l.key}, strconvF(tk.interval), burst, strconvF(maxDelay), strconvF(tk.ahead)).Int64Slice()
	if err != nil {
		return tk, err
	}
	if len(res) != 2 {
		return tk, fmt.Errorf("redisstore: rate script returned %d values, want 2", len(res))
	}
	if res[0] == -1 {
		return tk, l.refusal(res[1])
	}
	tk.ok = res[0] == 1
	switch d := res[1]; {
	case d >= maxDelayUs:
		tk.delay = infiniteDelay
	case d > 0:
		tk.delay = time.Duration(d) * time.Microsecond
	}
	return tk, nil
}

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

// refusal is the error for a rate script's refusal code.
func (l *limiter) refusal(code int64) *registry.KeyError {
	e := &registry.KeyError{Name: l.keyName, Key: l.key, Err: registry.ErrBadRecord}
	switch code {
	case badTATFormat:
		e.Reason = "the value is not a TAT (a non-negative integer of microseconds)"
	case badTATAhead:
		e.Reason = "the TAT is further ahead of Redis's clock than any call books"
	default:
		e.Reason = fmt.Sprintf("the rate script refused the value (code %d)", code)
	}
	return e
}

// keyErr returns the [*registry.KeyError] of an error that concerns this
// limit's key alone: the script's refusal, or an error reply of Redis about
// the key (WRONGTYPE, or another that is not about the server as a whole);
// nil for a failure of Redis or of the network.
func (l *limiter) keyErr(err error) *registry.KeyError {
	if ke, ok := errors.AsType[*registry.KeyError](err); ok {
		return ke
	}
	if _, ok := errors.AsType[redis.Error](err); !ok || serverWide(err) {
		return nil
	}
	reason := err.Error()
	if wrongType(err) {
		reason = "the key holds another type than a string"
	}
	return &registry.KeyError{Name: l.keyName, Key: l.key, Reason: reason, Err: registry.ErrBadRecord}
}

// serverWideReplies are the prefixes of Redis's error replies about the
// server as a whole (loading, read-only, out of memory, authentication,
// cluster state), not about one key.
var serverWideReplies = []string{
	"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOAUTH",
	"WRONGPASS", "NOPERM", "OOM", "MISCONF", "NOREPLICAS", "NOSCRIPT", "MOVED", "ASK",
	"ERR max number of clients",
}

// serverWide reports whether err is an error reply about the server as a
// whole.
func serverWide(err error) bool {
	for _, p := range serverWideReplies {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// giveBack gives back the slot of a call admitted by tk that gave up during
// its wait, with one script call bounded by Config.Timeout (not by the
// caller's context, which is done).
func (l *limiter) giveBack(ctx context.Context, tk taken) {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.s.cfg.Timeout)
	defer cancel()
	if err := giveBackScript.Run(gctx, l.s.c, []string{l.key}, strconvF(tk.interval), strconvF(tk.ahead)).Err(); err != nil {
		l.s.limErrs.Add(1)
	}
}

// infiniteDelay is the Delay of a rejection by a limit that will never admit
// a call: the longest Duration, as the local limiter reports it.
const infiniteDelay = time.Duration(math.MaxInt64)

// maxRateLimitMaxWait is the largest RateLimitConfig.MaxWait accepted.
const maxRateLimitMaxWait = 24 * time.Hour

// reject reports and returns the rejection of a call.
func (l *limiter) reject(ctx context.Context, tk taken) error {
	err := &middleware.RateLimitError{Name: l.name, Delay: tk.delay}
	if l.wait && tk.byDeadline && tk.delay < infiniteDelay {
		err.Cause = context.DeadlineExceeded
	}
	l.obs.Observe(ctx, middleware.Event{Kind: middleware.EventRejected, Layer: "rate_limit", Name: l.name, Err: err})
	return err
}

// up reports whether this limit should ask Redis now: its key is not known
// to be bad, or it has been for resync and this caller is the one that
// tries it again.
func (h *keyHealth) up(resync time.Duration) bool { return retryDue(&h.keyDown, resync) }

// bad notes that the limit's key is bad (ke): local decisions for the next
// ResyncInterval, reported once.
func (h *keyHealth) bad(s *Store, ke *registry.KeyError) {
	h.keyDown.Store(time.Now().Add(s.cfg.ResyncInterval).UnixNano())
	if h.keyReported.CompareAndSwap(false, true) {
		s.limBad.Add(1)
		s.status(registry.StoreStatus{Name: h.keyName, Healthy: false, Err: ke, At: time.Now()})
	}
}

// sane notes that the limit's key held a sane value (or none).
func (h *keyHealth) sane(s *Store) {
	if h.keyDown.Load() != 0 {
		h.keyDown.Store(0)
	}
	if h.keyReported.Load() && h.keyReported.CompareAndSwap(true, false) {
		s.status(registry.StoreStatus{Name: h.keyName, Healthy: true, At: time.Now()})
	}
}

// retryDue reports whether to ask Redis now, down holding the UnixNano
// until which not to (0: ask): true when that time is 0, or has passed and
// this caller is the one that moves it ResyncInterval on and tries.
func retryDue(down *atomic.Int64, resync time.Duration) bool {
	d := down.Load()
	if d == 0 {
		return true
	}
	now := time.Now().UnixNano()
	if now < d {
		return false
	}
	return down.CompareAndSwap(d, now+int64(resync))
}

// limUp reports whether a rate limit should ask Redis now: Redis is not
// known to be down, or it has been down for ResyncInterval and this caller
// is the one that tries it again.
func (s *Store) limUp() bool { return retryDue(&s.limDown, s.cfg.ResyncInterval) }

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
	// Healthy reports whether the rate limits ask Redis now (a limit
	// whose key is bad decides locally all the same).
	Healthy bool `json:"healthy"`
	// Errors counts Redis operations of the rate limits that failed
	// (a bad key is counted in BadRecords instead).
	Errors uint64 `json:"errors"`
	// BadRecords counts the times a rate limit found its key unusable
	// (see [registry.KeyError]) and began deciding locally.
	BadRecords uint64 `json:"bad_records"`
	// LocalDecisions counts calls decided by the local limiter.
	LocalDecisions uint64 `json:"local_decisions"`
	// Leases counts the round trips of leased limits
	// ([Store.LeasedRateLimit]): leases taken or asked for, and unused
	// tokens given back.
	Leases uint64 `json:"leases"`
}

// LimiterStats returns the counters of the store's rate limits.
func (s *Store) LimiterStats() LimiterStats {
	return LimiterStats{Healthy: s.limDown.Load() == 0, Errors: s.limErrs.Load(), BadRecords: s.limBad.Load(),
		LocalDecisions: s.limLocal.Load(), Leases: s.leases.Load()}
}
