package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// Defaults and bounds of [LeaseConfig].
const (
	// DefaultLeasePeriod is the default LeaseConfig.Period.
	DefaultLeasePeriod = 100 * time.Millisecond
	// maxLeaseReplicas bounds the replicas a leased limit's key tracks: a
	// key with more is refused as a bad record.
	maxLeaseReplicas = 1024
)

// LeaseConfig configures [Store.LeasedRateLimit]. The zero value is the
// defaults.
type LeaseConfig struct {
	// Period is how much of its own demand a replica takes at once: a
	// lease holds about Period × the replica's recent rate of calls (at
	// least 1 token, at most the limit's Burst), and what is left of it
	// Period after it was taken goes back to Redis. So a quiet replica
	// holds little, and a replica that dies takes at most one lease with
	// it. Default [DefaultLeasePeriod]; between 1ms and 1m. For leases to
	// save round trips, Burst must be at least Rate × Period: a lease
	// never holds more than the fleet's burst.
	Period time.Duration
}

func (c LeaseConfig) validate() error {
	if c.Period != 0 && (c.Period < time.Millisecond || c.Period > time.Minute) {
		return &middleware.ConfigError{Path: "lease.period", Field: "LeaseConfig.Period", Value: c.Period,
			Reason: fmt.Sprintf("must be 0 (the default, %v) or between 1ms and 1m", DefaultLeasePeriod)}
	}
	return nil
}

// leaseScript takes up to ARGV[3] tokens from the fleet's GCRA budget in
// the hash KEYS[1] (field "tat": the theoretical arrival time, as the rate
// scripts keep it), and notes replica ARGV[5] as seen now (field "r:" ..
// id, microseconds), dropping replicas not seen for ARGV[6] µs. It returns
// {tokens, delay µs until one would be free (0 tokens), live replicas}, or
// {-1, code} for a key that holds no sane state, left as it is.
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local ahead = tonumber(ARGV[4])
local stale = tonumber(ARGV[6])
local ty = redis.call('TYPE', KEYS[1])['ok']
if ty ~= 'hash' and ty ~= 'none' then return {-1, 3} end
local n = redis.call('HLEN', KEYS[1])
if n > ` + strconv.Itoa(maxLeaseReplicas+1) + ` then return {-1, 4} end
local tat = now
local v = redis.call('HGET', KEYS[1], 'tat')
if v then
  if #v > 64 or not string.find(v, '^%d+$') then return {-1, 1} end
  local x = tonumber(v)
  if not x or x > now + ahead then return {-1, 2} end
  if x > tat then tat = x end
end
local live = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f, s = all[i], all[i + 1]
  if f ~= 'tat' then
    local seen = tonumber(s)
    if string.sub(f, 1, 2) ~= 'r:' or not seen or seen < now - stale or seen > now + stale then
      redis.call('HDEL', KEYS[1], f)
    elseif f ~= 'r:' .. ARGV[5] then
      live = live + 1
    end
  end
end
redis.call('HSET', KEYS[1], 'r:' .. ARGV[5], string.format('%.0f', now))
live = live + 1
local avail = math.floor((now - tat) / interval) + burst
local k = math.min(want, avail)
if k < 1 then
  local delay = (tat - now) - (burst - 1) * interval
  redis.call('PEXPIRE', KEYS[1], math.min(math.ceil((tat - now) / 1000) + math.ceil(stale / 1000) + 1, ` + maxTTLLua + `))
  return {0, math.ceil(math.min(delay, ` + maxDelayLua + `)), live}
end
local newTat = tat + k * interval
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', newTat))
redis.call('PEXPIRE', KEYS[1], math.min(math.ceil((newTat - now) / 1000) + math.ceil(stale / 1000) + 1, ` + maxTTLLua + `))
return {k, 0, live}
`)

// leaseReturnScript gives back ARGV[2] unused tokens of interval ARGV[1]:
// the TAT moves back, never below now, when the key holds a sane one
// (ARGV[3] as leaseScript's ARGV[4]). It returns 1 when it moved it.
var leaseReturnScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ty = redis.call('TYPE', KEYS[1])['ok']
if ty ~= 'hash' then return 0 end
local v = redis.call('HGET', KEYS[1], 'tat')
if not v or #v > 64 or not string.find(v, '^%d+$') then return 0 end
local tat = tonumber(v)
if not tat or tat <= now or tat > now + tonumber(ARGV[3]) then return 0 end
local back = math.max(tat - tonumber(ARGV[1]) * tonumber(ARGV[2]), now)
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', back))
return 1
`)

// LeasedRateLimit returns a middleware like [Store.RateLimit], a rate
// limit the whole fleet shares through Redis, that does not pay a round
// trip per call: each replica takes a lease of tokens from the fleet's
// budget in one round trip, sized to its own recent demand (lc.Period of
// it), and spends it locally; what is left of a lease when it expires goes
// back. At steady demand a replica asks Redis about once per lease, and an
// admitted call costs an atomic decrement. The fleet admits cfg.Rate calls
// per second with bursts of cfg.Burst, as with RateLimit, give or take the
// tokens leased and not yet spent or returned (at most one lease per
// replica). A replica that dies takes at most its lease with it.
//
// When Redis is down (or the key is bad), each replica decides by a local
// limiter holding its share of the limit: cfg.Rate and cfg.Burst divided by
// the replicas Redis last counted (each lease notes its replica), not the
// whole limit, so N replicas do not admit N times the rate.
//
// A call turned away returns a [*middleware.RateLimitError] and an
// [middleware.EventRejected], as for RateLimit. cfg.Wait and cfg.Limiter
// are not supported: a leased limit admits or rejects at once, at a fixed
// rate. The key's hash holds the fleet's TAT and the replicas seen; what
// it holds is untrusted, as for RateLimit. A leased limit and a RateLimit
// of the same key are separate budgets. It panics as RateLimit does, and
// when lc is not valid.
func (s *Store) LeasedRateLimit(key string, cfg middleware.RateLimitConfig, lc LeaseConfig) endpoint.Middleware {
	if key == "" {
		key = cfg.Name
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if err := lc.validate(); err != nil {
		panic(err)
	}
	switch {
	case key == "":
		panic(fmt.Errorf("%w: rate_limit.name: must be set (or pass a key to LeasedRateLimit)", middleware.ErrInvalidConfig))
	case cfg.Wait || cfg.Limiter != nil || cfg.Shared:
		panic(fmt.Errorf("%w: rate_limit: a leased limit admits or rejects at once at a fixed rate: wait, limiter and shared are not supported", middleware.ErrInvalidConfig))
	}
	if err := registry.CheckName(key); err != nil {
		panic(fmt.Errorf("%w: rate_limit.name: %w", middleware.ErrInvalidConfig, err))
	}
	if lc.Period == 0 {
		lc.Period = DefaultLeasePeriod
	}
	obs := cfg.Observer
	if obs == nil {
		obs = middleware.LogObserver(nil)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	l := &leaser{
		s: s, keyHealth: keyHealth{keyName: key}, key: s.cfg.Prefix + "lease:" + key, name: cfg.Name, obs: obs,
		rate: cfg.Rate, burst: cfg.Burst, period: lc.Period, id: hex.EncodeToString(id[:]),
		interval: min(1e6/cfg.Rate, maxInterval), last: time.Now(),
	}
	l.ahead = (float64(cfg.Burst)+1)*l.interval + float64(maxRateLimitMaxWait.Microseconds())
	l.share.Store(rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst)) // one replica until Redis counts them
	l.replicas = 1
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		if next == nil {
			panic(fmt.Errorf("%w: rate_limit: nil endpoint", middleware.ErrInvalidConfig))
		}
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
	s        *Store
	key      string
	name     string
	obs      middleware.Observer
	rate     float64
	burst    int
	period   time.Duration
	id       string
	interval float64 // µs
	ahead    float64 // µs

	tokens atomic.Int64 // left in the current lease; may dip below 0 while one call renews
	calls  atomic.Int64 // calls since the last lease, for its size
	share  atomic.Pointer[rate.Limiter]

	keyHealth

	mu       sync.Mutex // held to take a lease
	replicas int64      // as Redis last counted them
	last     time.Time  // when the last lease was taken
	empty    time.Time  // the fleet had no token before this: no round trip until then
	timer    *time.Timer
}

// slow admits a call that found the lease spent: it takes a new lease, or
// decides by the local share when Redis is down, or rejects.
func (l *leaser) slow(ctx context.Context) error {
	l.mu.Lock()
	if l.tokens.Add(-1) >= 0 { // another call renewed meanwhile
		l.mu.Unlock()
		return nil
	}
	now := time.Now()
	if !l.up(l.s.cfg.ResyncInterval) || !l.s.limUp() {
		l.mu.Unlock()
		return l.local(ctx, now)
	}
	if now.Before(l.empty) {
		d := l.empty.Sub(now)
		l.mu.Unlock()
		return l.reject(ctx, d)
	}
	want := l.size(now)
	k, delay, n, err := l.take(ctx, want)
	if err != nil {
		l.mu.Unlock()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ke := l.keyErr(err); ke != nil {
			l.s.limOK()
			l.bad(l.s, ke)
		} else {
			l.s.limFailed(err)
		}
		return l.local(ctx, now)
	}
	l.s.limOK()
	l.sane(l.s)
	if n != l.replicas { // the local share, for when Redis is down
		l.replicas = n
		l.share.Store(rate.NewLimiter(rate.Limit(l.rate/float64(n)), max(1, l.burst/int(n))))
	}
	if k == 0 {
		l.empty = now.Add(delay)
		l.mu.Unlock()
		return l.reject(ctx, delay)
	}
	l.tokens.Store(k - 1) // one for this call
	l.expireLater(k)
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
// of k tokens just taken (sized to one period of demand, it is usually
// spent by then, and nothing goes back). Holds mu.
func (l *leaser) expireLater(k int64) {
	if l.timer != nil {
		l.timer.Stop()
	}
	l.timer = time.AfterFunc(2*l.period, func() {
		l.mu.Lock()
		left := l.tokens.Swap(0)
		l.mu.Unlock()
		if left <= 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.s.cfg.Timeout)
		defer cancel()
		l.s.leases.Add(1)
		if err := leaseReturnScript.Run(ctx, l.s.c, []string{l.key}, strconvF(l.interval), left, strconvF(l.ahead)).Err(); err != nil {
			l.s.limErrs.Add(1)
		}
	})
}

// take runs the lease script. Holds mu.
func (l *leaser) take(ctx context.Context, want int64) (k int64, delay time.Duration, replicas int64, err error) {
	tctx, cancel := context.WithTimeout(ctx, l.s.cfg.Timeout)
	defer cancel()
	stale := 3 * max(l.period, l.s.cfg.ResyncInterval)
	l.s.leases.Add(1)
	res, err := leaseScript.Run(tctx, l.s.c, []string{l.key}, strconvF(l.interval), l.burst, want,
		strconvF(l.ahead), l.id, stale.Microseconds()).Int64Slice()
	if err != nil {
		return 0, 0, 0, err
	}
	if len(res) == 2 && res[0] == -1 {
		return 0, 0, 0, l.refusal(res[1])
	}
	if len(res) != 3 || res[0] < 0 || res[0] > want || res[2] < 1 {
		return 0, 0, 0, &registry.KeyError{Name: l.keyName, Key: l.key, Err: registry.ErrBadRecord,
			Reason: fmt.Sprintf("the lease script answered %v", res)}
	}
	switch d := res[1]; {
	case d >= maxDelayUs:
		delay = infiniteDelay
	case d > 0:
		delay = time.Duration(d) * time.Microsecond
	}
	return res[0], delay, res[2], nil
}

// local decides a call by this replica's share of the limit.
func (l *leaser) local(ctx context.Context, now time.Time) error {
	l.s.limLocal.Add(1)
	lim := l.share.Load()
	if lim.AllowN(now, 1) {
		return nil
	}
	return l.reject(ctx, time.Duration(math.Ceil((1-lim.TokensAt(now))/float64(lim.Limit())*float64(time.Second))))
}

func (l *leaser) reject(ctx context.Context, delay time.Duration) error {
	err := &middleware.RateLimitError{Name: l.name, Delay: max(delay, 0)}
	l.obs.Observe(ctx, middleware.Event{Kind: middleware.EventRejected, Layer: "rate_limit", Name: l.name, Err: err})
	return err
}

func (l *leaser) refusal(code int64) *registry.KeyError {
	e := &registry.KeyError{Name: l.keyName, Key: l.key, Err: registry.ErrBadRecord}
	switch code {
	case badTATFormat:
		e.Reason = "the tat field is not a TAT (a non-negative integer of microseconds)"
	case badTATAhead:
		e.Reason = "the tat field is further ahead of Redis's clock than any lease books"
	case 3:
		e.Reason = "the key holds another type than a hash"
	case 4:
		e.Reason = fmt.Sprintf("the key holds more than %d fields", maxLeaseReplicas+1)
	default:
		e.Reason = fmt.Sprintf("the lease script refused the value (code %d)", code)
	}
	return e
}

func (l *leaser) keyErr(err error) *registry.KeyError {
	return (&limiter{keyHealth: keyHealth{keyName: l.keyName}, key: l.key}).keyErr(err)
}
