package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// maxLeaseReplicas bounds the replicas a leased limit's key tracks: a key
// with more is refused as a bad record.
const maxLeaseReplicas = 1024

// LeaseConfig configures [Store.LeasedRateLimit]. The zero value is the
// defaults.
type LeaseConfig struct {
	// Period is how much of its own demand a replica takes at once: a
	// lease holds about Period × the replica's recent rate of calls (at
	// least 1 token, at most the limit's Burst), and what is left of it
	// Period after it was taken goes back to Redis. So a quiet replica
	// holds little, and a replica that dies takes at most one lease with
	// it. Default [middleware.DefaultLeasePeriod]; between 1ms and 1m. For leases to
	// save round trips, Burst must be at least Rate × Period: a lease
	// never holds more than the fleet's burst.
	Period time.Duration
}

func (c LeaseConfig) validate() error {
	if c.Period != 0 && (c.Period < time.Millisecond || c.Period > time.Minute) {
		return &middleware.ConfigError{Path: "lease.period", Field: "LeaseConfig.Period", Value: c.Period,
			Reason: fmt.Sprintf("must be 0 (the default, %v) or between 1ms and 1m", middleware.DefaultLeasePeriod)}
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
// trip per call: [middleware.LeasedRateLimit] over this store's
// [Store.LeasePool] of key. Each replica takes a lease of tokens from the
// fleet's budget in one round trip, sized to its own recent demand
// (lc.Period of it), and spends it locally; what is left of a lease when it
// expires goes back. At steady demand a replica asks Redis about once per
// lease, and an admitted call costs an atomic decrement. The fleet admits
// cfg.Rate calls per second with bursts of cfg.Burst, give or take the
// tokens leased and not yet spent or returned (at most one lease per
// replica). A replica that dies takes at most its lease with it.
//
// When Redis is down (or the key is bad), each replica decides by a local
// limiter holding its share of the limit: cfg.Rate and cfg.Burst divided by
// the replicas Redis last counted (each lease notes its replica), not the
// whole limit, so N replicas do not admit N times the rate.
//
// A call turned away returns a [*middleware.RateLimitError] and an
// [middleware.EventRejected], as for RateLimit. cfg.Wait, cfg.Limiter and
// cfg.Shared are not supported: a leased limit admits or rejects at once,
// at a fixed rate. A leased limit and a RateLimit of the same key are
// separate budgets. It panics as RateLimit does, and when lc is not valid.
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
	return middleware.LeasedRateLimit(middleware.LeasedRateLimitConfig{
		Pool: s.LeasePool(key, cfg.Rate, cfg.Burst), Period: lc.Period, ResyncInterval: s.cfg.ResyncInterval,
		Name: cfg.Name, Observer: cfg.Observer,
	})
}

// LeasePool returns the [middleware.LeasePool] of key in this store's
// Redis: a fleet-wide budget of rate tokens a second and burst at once,
// for [middleware.LeasedRateLimit]. Every lease is one round trip (a Lua
// script, by Redis's clock) bounded by [Config.Timeout]; it notes the
// replica, so that the pool counts the live ones. The key's hash holds the
// fleet's TAT and the replicas seen; what it holds is untrusted: a value
// the script did not write is left as it is, reported through
// [Config.OnStatus] as a [*registry.KeyError] matching
// [registry.ErrBadRecord], and that pool fails (its layers decide by their
// share) for [Config.ResyncInterval]; the store's other limits stay shared.
// While Redis is down, every pool of the store fails at once, without a
// round trip, until a resync. It panics, matching
// [middleware.ErrInvalidConfig], when key is not a valid name, rate is not
// above 0 and finite, or burst is below 1.
func (s *Store) LeasePool(key string, r float64, burst int) middleware.LeasePool {
	if err := registry.CheckName(key); err != nil {
		panic(fmt.Errorf("%w: lease pool: %w", middleware.ErrInvalidConfig, err))
	}
	if math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 || burst < 1 {
		panic(fmt.Errorf("%w: lease pool: rate %v and burst %d: want a rate above 0 and finite, a burst of at least 1", middleware.ErrInvalidConfig, r, burst))
	}
	p := &leasePool{s: s, keyHealth: keyHealth{keyName: key}, key: s.cfg.Prefix + "lease:" + key, rate: r, burst: burst,
		interval: min(1e6/r, maxInterval)}
	p.ahead = (float64(burst)+1)*p.interval + float64(maxRateLimitMaxWait.Microseconds())
	return p
}

// errPoolDown is a lease pool's error while Redis or its key is known bad.
var errPoolDown = errors.New("redisstore: lease pool deciding locally until the next resync")

// leasePool is a fleet's leased limit in Redis.
type leasePool struct {
	s        *Store
	key      string
	rate     float64
	burst    int
	interval float64 // µs
	ahead    float64 // µs
	keyHealth
}

// Limit implements [middleware.LeasePool].
func (p *leasePool) Limit() (float64, int) { return p.rate, p.burst }

// Lease implements [middleware.LeasePool].
func (p *leasePool) Lease(ctx context.Context, replica string, want int64) (middleware.Lease, error) {
	if !p.up(p.s.cfg.ResyncInterval) || !p.s.limUp() {
		p.s.limLocal.Add(1)
		return middleware.Lease{}, errPoolDown
	}
	tctx, cancel := context.WithTimeout(ctx, p.s.cfg.Timeout)
	defer cancel()
	stale := 3 * max(p.s.cfg.ResyncInterval, time.Second)
	p.s.leases.Add(1)
	res, err := leaseScript.Run(tctx, p.s.c, []string{p.key}, strconvF(p.interval), p.burst, want,
		strconvF(p.ahead), replica, stale.Microseconds()).Int64Slice()
	if err == nil {
		switch {
		case len(res) == 2 && res[0] == -1:
			err = p.refusal(res[1])
		case len(res) != 3 || res[0] < 0 || res[0] > want || res[2] < 1:
			err = &registry.KeyError{Name: p.keyName, Key: p.key, Err: registry.ErrBadRecord,
				Reason: fmt.Sprintf("the lease script answered %v", res)}
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			if ke := (&limiter{key: p.key, keyHealth: keyHealth{keyName: p.keyName}}).keyErr(err); ke != nil {
				p.s.limOK()
				p.bad(p.s, ke)
			} else {
				p.s.limFailed(err)
			}
			p.s.limLocal.Add(1)
		}
		return middleware.Lease{}, err
	}
	p.s.limOK()
	p.sane(p.s)
	l := middleware.Lease{Tokens: res[0], Replicas: int(min(res[2], maxLeaseReplicas+1))}
	switch d := res[1]; {
	case d >= maxDelayUs:
		l.Wait = infiniteDelay
	case d > 0:
		l.Wait = time.Duration(d) * time.Microsecond
	}
	return l, nil
}

// Return implements [middleware.LeasePool].
func (p *leasePool) Return(ctx context.Context, n int64) error {
	ctx, cancel := context.WithTimeout(ctx, p.s.cfg.Timeout)
	defer cancel()
	p.s.leases.Add(1)
	err := leaseReturnScript.Run(ctx, p.s.c, []string{p.key}, strconvF(p.interval), n, strconvF(p.ahead)).Err()
	if err != nil {
		p.s.limErrs.Add(1)
	}
	return err
}

func (p *leasePool) refusal(code int64) *registry.KeyError {
	e := &registry.KeyError{Name: p.keyName, Key: p.key, Err: registry.ErrBadRecord}
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
