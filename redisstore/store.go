package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resiliencekit/resilience/internal/callback"
	"github.com/resiliencekit/resilience/registry"
)

// Defaults applied to the zero fields of [Config].
const (
	DefaultPrefix = "resilience:"
	DefaultKeyTTL = 24 * time.Hour
)

// Config configures a [Store]. The zero value gives the defaults.
type Config struct {
	// Prefix starts every key and channel the store uses, so that several
	// applications (or environments) can share one Redis. Default
	// "resilience:" ([DefaultPrefix]). A breaker's state is the hash
	// Prefix+"breaker:"+name, its changes are published on
	// Prefix+"breaker:changes", and a rate limit's state is the string
	// Prefix+"rate:"+key.
	Prefix string
	// KeyTTL is how long a breaker's key lives after its last change (at
	// least twice the breaker's ResetTimeout), so that names no longer used
	// do not stay in Redis for ever. A key that expired is a closed breaker.
	// Default 24h ([DefaultKeyTTL]).
	KeyTTL time.Duration
	// Timeout bounds every store operation, with the caller's context.
	// Default 100ms ([registry.DefaultStoreTimeout]).
	Timeout time.Duration
	// ResyncInterval is the registries' resync period (see
	// [registry.StoreConfig]) and how long a rate limit decides locally
	// after Redis failed before it tries Redis again. Default 1s
	// ([registry.DefaultResyncInterval]).
	ResyncInterval time.Duration
	// OnStatus, when set, is told when Redis becomes unreachable and when
	// it is reachable again: by each registry made with [Store.Registry]
	// (from its goroutine) and by the rate limits (from the call that
	// noticed), so calls may overlap; by [Open] when its first ping fails.
	// A panic in OnStatus is recovered and logged on Logger at Error with
	// its stack, wherever it runs, and the store goes on: a status hook is
	// never a verdict on the call that happened to notice. Default nil.
	OnStatus func(registry.StoreStatus)
	// Logger is where the store logs a panic of OnStatus and an address
	// [Open] cannot reach. Default nil: [slog.Default].
	Logger *slog.Logger
}

// Store keeps circuit-breaker state and rate-limit budgets in Redis, shared
// by every process that uses the same Redis and [Config.Prefix]. It
// implements [registry.Store]; [Store.Registry] makes a registry on it and
// [Store.RateLimit] a rate-limit layer. A Store is safe for concurrent use.
type Store struct {
	c       redis.UniversalClient
	cfg     Config
	own     bool // Close closes c
	channel string

	limDown     atomic.Int64 // rate limits: UnixNano until which they decide locally; 0 when Redis is up
	limReported atomic.Bool  // rate limits: a down status was reported
	limErrs     atomic.Uint64
	limLocal    atomic.Uint64

	mu   sync.Mutex
	regs []*registry.Registry
}

// New returns a Store on the Redis client c: a *redis.Client,
// *redis.ClusterClient, *redis.Ring or failover client, with its own
// address, AUTH (Username, Password, CredentialsProvider) and TLS
// (TLSConfig) options. Set ContextTimeoutEnabled in the client's options,
// so that the store's timeouts also bound reads from a Redis that hangs
// ([Open] does). Close does not close c.
func New(c redis.UniversalClient, cfg Config) *Store {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.KeyTTL <= 0 {
		cfg.KeyTTL = DefaultKeyTTL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = registry.DefaultStoreTimeout
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = registry.DefaultResyncInterval
	}
	return &Store{c: c, cfg: cfg, channel: cfg.Prefix + "breaker:changes"}
}

// Open returns a Store on a new client for the Redis at addr
// ("host:port"), with ContextTimeoutEnabled and cfg (the first one given;
// none: the default [Config]); [Store.Close] closes the client. For AUTH,
// TLS, a cluster or a sentinel, make the client yourself and use [New].
//
// Open pings Redis once, bounded by Config.Timeout. When the ping fails (a
// wrong address, a Redis that is down), Open still returns a working Store,
// which decides locally until Redis answers, and says so: a line on
// Config.Logger at Warn naming the address and the error, and
// Config.OnStatus told that the store is unreachable.
func Open(addr string, cfg ...Config) *Store {
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	s := New(redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true}), c)
	s.own = true
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	err := s.c.Ping(ctx).Err()
	cancel()
	if err != nil {
		s.logger().LogAttrs(context.Background(), slog.LevelWarn, "redisstore: redis unreachable at open; deciding locally until it answers",
			slog.String("addr", addr), slog.String("error", err.Error()))
		s.limFailed(fmt.Errorf("redisstore: ping %s: %w", addr, err))
	}
	return s
}

// logger returns the store's logger.
func (s *Store) logger() *slog.Logger {
	if s.cfg.Logger != nil {
		return s.cfg.Logger
	}
	return slog.Default()
}

// status tells Config.OnStatus of st; a panic in it is logged, and the
// store goes on.
func (s *Store) status(st registry.StoreStatus) {
	if s.cfg.OnStatus == nil {
		return
	}
	callback.Log(s.logger(), callback.Call("redisstore Config.OnStatus", func() { s.cfg.OnStatus(st) }))
}

// Registry returns a new registry whose breakers are shared through s
// (see [registry.WithStore]), with s's Timeout, ResyncInterval and
// OnStatus, and opts. [Store.Close] closes it.
//
//	s := redisstore.Open("localhost:6379")
//	defer s.Close()
//	reg := s.Registry()
//	mw := middleware.CircuitBreaker("payments", middleware.BreakerConfig{Registry: reg})
func (s *Store) Registry(opts ...registry.Option) *registry.Registry {
	sc := registry.StoreConfig{Timeout: s.cfg.Timeout, ResyncInterval: s.cfg.ResyncInterval, OnStatus: s.cfg.OnStatus, Logger: s.cfg.Logger}
	r := registry.New(append([]registry.Option{registry.WithStore(s, sc)}, opts...)...)
	s.mu.Lock()
	s.regs = append(s.regs, r)
	s.mu.Unlock()
	return r
}

// Close closes the registries made with [Store.Registry], then the Redis
// client if [Open] made it. It returns the client's error.
func (s *Store) Close() error {
	s.mu.Lock()
	regs := s.regs
	s.regs = nil
	s.mu.Unlock()
	for _, r := range regs {
		r.Close()
	}
	if s.own {
		return s.c.Close()
	}
	return nil
}

// Client returns the store's Redis client.
func (s *Store) Client() redis.UniversalClient { return s.c }

// Store is a registry.Store.
var _ registry.Store = (*Store)(nil)

func (s *Store) breakerKey(name string) string { return s.cfg.Prefix + "breaker:" + name }

// recordScript applies one operation to a breaker's state, atomically, by
// Redis's clock. Fields: s state (0 closed, 1 open, 2 half-open), g
// generation, f failure streak, o opened at (ms), h half-open since (ms),
// p probe slots taken, k probe successes.
var recordScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 's', 'g', 'f', 'o', 'h', 'p', 'k')
local s = tonumber(v[1]) or 0
local g = tonumber(v[2]) or 0
local f = tonumber(v[3]) or 0
local o = tonumber(v[4]) or 0
local h = tonumber(v[5]) or 0
local p = tonumber(v[6]) or 0
local k = tonumber(v[7]) or 0
local op = tonumber(ARGV[1])
local gen = tonumber(ARGV[2])
local ft = tonumber(ARGV[3])
local st = tonumber(ARGV[4])
local reset = tonumber(ARGV[5])
local changed, dirty, admitted = false, false, 0
local function move(ns)
  s = ns; g = g + 1; f = 0; p = 0; k = 0; changed = true
  if ns == 1 then o = now elseif ns == 0 then o = 0 end
  if ns == 2 then h = now else h = 0 end
end
if s == 1 and now >= o + reset then move(2) end
if s == 2 and p > k and now >= h + reset then p = k; h = now; dirty = true end
if op == 3 then
  if s == 0 then admitted = 1
  elseif s == 2 and p < st then p = p + 1; admitted = 1; dirty = true end
elseif op == 4 then
  if s ~= 1 then move(1) end
elseif op == 5 then
  move(0)
elseif gen == g then
  if s == 0 then
    if op == 1 then
      f = f + 1; dirty = true
      if f >= ft then move(1) end
    elseif op == 0 and f > 0 then f = 0; dirty = true end
  elseif s == 2 then
    if op == 1 then move(1)
    elseif op == 0 then
      k = k + 1; dirty = true
      if k >= st then move(0) end
    elseif op == 2 and p > 0 then p = p - 1; dirty = true end
  end
end
if changed or dirty then
  redis.call('HSET', KEYS[1], 's', s, 'g', g, 'f', f, 'o', o, 'h', h, 'p', p, 'k', k)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
if changed then redis.call('PUBLISH', ARGV[7], ARGV[8]) end
return {s, g, f, o, p, k, now, admitted}
`)

// Record implements [registry.Store]: one Lua script, so the outcome is
// applied atomically and by Redis's clock.
func (s *Store) Record(ctx context.Context, name string, st registry.Settings, gen uint64, op registry.Op) (registry.SharedState, error) {
	ttl := max(s.cfg.KeyTTL, 2*st.ResetTimeout)
	args := []any{int(op), gen, st.FailureThreshold, st.SuccessThreshold, st.ResetTimeout.Milliseconds(), ttl.Milliseconds(), s.channel, name}
	res, err := recordScript.Run(ctx, s.c, []string{s.breakerKey(name)}, args...).Int64Slice()
	if err != nil {
		return registry.SharedState{}, err
	}
	if len(res) != 8 {
		return registry.SharedState{}, fmt.Errorf("redisstore: record returned %d values, want 8", len(res))
	}
	ss := sharedState(time.Now(), res[6], res[0], res[1], res[2], res[3], res[4], res[5])
	ss.Admitted = res[7] == 1
	return ss, nil
}

// sharedState builds a state from the store's fields, converting the time
// it opened from Redis's clock (nowMs) to this process's (now).
func sharedState(now time.Time, nowMs, st, gen, f, openedMs, p, k int64) registry.SharedState {
	ss := registry.SharedState{
		State:      registry.State(st),
		Generation: uint64(gen),
		Failures:   int(f),
		Probes:     int(p),
		Successes:  int(k),
	}
	if ss.State != registry.StateClosed && openedMs > 0 {
		ss.OpenedAt = now.Add(-time.Duration(nowMs-openedMs) * time.Millisecond)
	}
	return ss
}

// Load implements [registry.Store]: one pipeline of TIME and one HMGET per
// name.
func (s *Store) Load(ctx context.Context, names []string) ([]registry.SharedState, error) {
	pipe := s.c.Pipeline()
	tc := pipe.Time(ctx)
	cmds := make([]*redis.SliceCmd, len(names))
	for i, n := range names {
		cmds[i] = pipe.HMGet(ctx, s.breakerKey(n), "s", "g", "f", "o", "p", "k")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	now := time.Now()
	srv, err := tc.Result()
	if err != nil {
		return nil, err
	}
	nowMs := srv.UnixMilli()
	out := make([]registry.SharedState, len(names))
	for i, c := range cmds {
		var f [6]int64
		for j, v := range c.Val() {
			if str, ok := v.(string); ok {
				f[j], _ = strconv.ParseInt(str, 10, 64)
			}
		}
		out[i] = sharedState(now, nowMs, f[0], f[1], f[2], f[3], f[4], f[5])
	}
	return out, nil
}

// Watch implements [registry.Store]: a subscription to the store's
// channel of changes.
func (s *Store) Watch(ctx context.Context, ready func(), changed func(name string)) error {
	ps := s.c.Subscribe(ctx)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { ps.Close() }) // unblocks a read
	defer stop()
	sctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err := ps.Subscribe(sctx, s.channel)
	if err == nil {
		_, err = ps.ReceiveTimeout(sctx, s.cfg.Timeout) // the confirmation
	}
	cancel()
	if err != nil {
		return err
	}
	ready()
	// A connection that dies silently (no reset) would block a read for
	// ever: after a quiet ResyncInterval, ping; a second quiet one with the
	// ping unanswered ends the subscription (the registry subscribes again).
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.cfg.ResyncInterval)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || pinged {
				return err
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		}
		pinged = false
		if m, ok := msg.(*redis.Message); ok {
			changed(m.Payload)
		}
	}
}
