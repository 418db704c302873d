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
	// [registry.Config].ResyncInterval) and how long the rate limits decide
	// locally after Redis failed (or one rate limit after its key was found
	// bad) before they try Redis again. Default 1s
	// ([registry.DefaultResyncInterval]).
	ResyncInterval time.Duration
	// OnStatus, when set, is told when Redis becomes unreachable and when
	// it is reachable again (Name ""), and when one breaker's or rate
	// limit's key is found bad and when it is sane again (Name names it):
	// by each registry made with [Store.Registry] (from its goroutine) and
	// by the rate limits (from the call that noticed), so calls may
	// overlap; by [Open] when its first ping fails.
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
	limBad      atomic.Uint64 // rate limits: keys found bad
	limLocal    atomic.Uint64
	leases      atomic.Uint64 // round trips of leased limits

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

// Registry returns a new registry whose breakers are shared through s: it
// is [registry.New] with cfg.Store set to s (whatever cfg.Store held), and
// the zero StoreTimeout, ResyncInterval, OnStoreStatus and Logger of cfg
// taken from s's Timeout, ResyncInterval, OnStatus and Logger. The zero
// Config gives a registry with the defaults on s. [Store.Close] closes it.
//
//	s := redisstore.Open("localhost:6379")
//	defer s.Close()
//	reg := s.Registry(registry.Config{})
//	mw := middleware.CircuitBreaker("payments", middleware.BreakerConfig{Registry: reg})
func (s *Store) Registry(cfg registry.Config) *registry.Registry {
	cfg.Store = s
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = s.cfg.Timeout
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = s.cfg.ResyncInterval
	}
	if cfg.OnStoreStatus == nil {
		cfg.OnStoreStatus = s.cfg.OnStatus
	}
	if cfg.Logger == nil {
		cfg.Logger = s.cfg.Logger
	}
	r := registry.New(cfg)
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

// StoreKey returns the Redis key of the breaker called name
// ([registry.StoreKeyer]): Prefix+"breaker:"+name.
func (s *Store) StoreKey(name string) string { return s.breakerKey(name) }

// Limits of a valid breaker record. Lua numbers are doubles: a generation
// is exact, and goes up by one, only below 2^53.
const (
	maxGeneration = 1<<53 - 1
	maxCount      = 1<<31 - 1
	clockSkewMs   = 60_000 // how far ahead of Redis's clock an opening time may be
)

// Codes of the record script's refusal {-1, code}.
const (
	refusedType     = 1 // the key holds another type
	refusedField    = 2 // a field is missing, malformed or out of range
	refusedSettings = 3 // written with other settings (another fingerprint)
)

// recordScript applies one operation to a breaker's state, atomically, by
// Redis's clock. Fields: s state (0 closed, 1 open, 2 half-open), g
// generation, f failure streak, o opened at (ms), h half-open since (ms),
// p probe slots taken, k probe successes, fp the settings' fingerprint.
// What the key holds is untrusted: the script checks it (valid, the same
// checks as [decodeBreaker]) and refuses, writing nothing, a record that is
// not a breaker's state with these settings: {-1, code}.
var recordScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = tonumber(ARGV[1])
local gen = tonumber(ARGV[2])
local ft = tonumber(ARGV[3])
local st = tonumber(ARGV[4])
local reset = tonumber(ARGV[5])
local fp = ARGV[9]
local ty = redis.call('TYPE', KEYS[1])['ok']
if ty ~= 'none' and ty ~= 'hash' then return {-1, 1} end
local v = redis.call('HMGET', KEYS[1], 's', 'g', 'f', 'o', 'h', 'p', 'k', 'fp')
local function int(x, hi)
  if type(x) ~= 'string' or #x > 20 or not string.find(x, '^%d+$') then return nil end
  local n = tonumber(x)
  if n > hi then return nil end
  return n
end
local s, g, f, o, h, p, k = 0, 0, 0, 0, 0, 0, 0
local fresh = true
for i = 1, 7 do if v[i] then fresh = false end end
if not fresh then
  s = int(v[1], 2); g = int(v[2], ` + maxGenerationLua + `); f = int(v[3], ` + maxCountLua + `)
  o = int(v[4], now + ` + clockSkewLua + `); h = int(v[5], now + ` + clockSkewLua + `)
  p = int(v[6], st); k = int(v[7], st)
  if not (s and g and f and o and h and p and k) or k > p or (s ~= 0 and o == 0) or (s ~= 2 and p ~= 0) then
    return {-1, 2}
  end
  if v[8] and v[8] ~= fp then return {-1, 3} end
end
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
      if p < k then p = k end
      if k >= st then move(0) end
    elseif op == 2 and p > k then p = p - 1; dirty = true end
  end
end
if changed or dirty or (not fresh and v[8] ~= fp) then
  redis.call('HSET', KEYS[1], 's', s, 'g', string.format('%.0f', g), 'f', f, 'o', string.format('%.0f', o), 'h', string.format('%.0f', h), 'p', p, 'k', k, 'fp', fp)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
if changed then redis.call('PUBLISH', ARGV[7], ARGV[8]) end
return {s, g, f, o, p, k, now, admitted}
`)

// The limits, as the Lua source spells them.
var (
	maxGenerationLua = strconv.FormatInt(maxGeneration, 10)
	maxCountLua      = strconv.FormatInt(maxCount, 10)
	clockSkewLua     = strconv.FormatInt(clockSkewMs, 10)
)

// Record implements [registry.Store]: one Lua script, so the outcome is
// applied atomically and by Redis's clock. A record the script refuses is a
// [*registry.KeyError] naming the key.
func (s *Store) Record(ctx context.Context, name string, st registry.Settings, gen uint64, op registry.Op) (registry.SharedState, error) {
	ttl := max(s.cfg.KeyTTL, 2*st.ResetTimeout)
	key := s.breakerKey(name)
	args := []any{int(op), gen, st.FailureThreshold, st.SuccessThreshold, st.ResetTimeout.Milliseconds(), ttl.Milliseconds(), s.channel, name, st.Fingerprint()}
	res, err := recordScript.Run(ctx, s.c, []string{key}, args...).Int64Slice()
	if err != nil {
		return registry.SharedState{}, err
	}
	if len(res) == 2 && res[0] == -1 {
		return registry.SharedState{}, refusal(name, key, res[1])
	}
	if len(res) != 8 {
		return registry.SharedState{}, fmt.Errorf("redisstore: record returned %d values, want 8", len(res))
	}
	rec := breakerRecord{s: res[0], g: res[1], f: res[2], o: res[3], p: res[4], k: res[5], present: true}
	if err := rec.check(res[6]); err != nil {
		return registry.SharedState{}, &registry.KeyError{Name: name, Key: key, Reason: err.Error(), Err: registry.ErrBadRecord}
	}
	ss := rec.shared(time.Now(), res[6])
	ss.Admitted = res[7] == 1
	return ss, nil
}

// refusal is the error for the record script's refusal code.
func refusal(name, key string, code int64) error {
	e := &registry.KeyError{Name: name, Key: key, Err: registry.ErrBadRecord}
	switch code {
	case refusedType:
		e.Reason = "the key holds another type than a hash"
	case refusedSettings:
		e.Reason = "the record was written with other settings"
		e.Err = registry.ErrConflict
	default:
		e.Reason = "a field is missing, malformed or out of range"
	}
	return e
}

// breakerRecord is a breaker's record as the store keeps it (see
// recordScript), in Redis's clock.
type breakerRecord struct {
	s, g, f, o, h, p, k int64
	fp                  string
	present             bool // false: no record (a closed breaker, generation 0)
}

// errField is a field of a record that is missing or malformed.
type errField string

func (e errField) Error() string { return string(e) }

// decodeBreaker is the one Go check of a breaker's record as Redis returns
// it (HMGET s g f o h p k fp): every field present and a decimal integer in
// range, or every field absent (no record). recordScript makes the same
// checks in Lua.
func decodeBreaker(vals []any, nowMs int64) (breakerRecord, error) {
	var rec breakerRecord
	fields := [...]*int64{&rec.s, &rec.g, &rec.f, &rec.o, &rec.h, &rec.p, &rec.k}
	names := [...]string{"s", "g", "f", "o", "h", "p", "k"}
	if len(vals) != len(fields)+1 {
		return rec, errField(fmt.Sprintf("%d fields, want %d", len(vals), len(fields)+1))
	}
	n := 0
	for i, v := range vals[:len(fields)] {
		str, ok := v.(string)
		if !ok {
			continue
		}
		n++
		x, err := strconv.ParseInt(str, 10, 64)
		if err != nil || len(str) > 20 || str[0] == '+' || str[0] == '-' {
			return rec, errField(fmt.Sprintf("field %s = %.40q is not a non-negative integer", names[i], str))
		}
		*fields[i] = x
	}
	switch n {
	case 0:
		return rec, nil
	case len(fields):
	default:
		return rec, errField(fmt.Sprintf("truncated record: %d of %d fields", n, len(fields)))
	}
	rec.present = true
	rec.fp, _ = vals[len(fields)].(string)
	return rec, rec.check(nowMs)
}

// check reports what makes a present record invalid, or nil.
func (r breakerRecord) check(nowMs int64) error {
	if !r.present {
		return nil
	}
	switch {
	case r.s < 0 || r.s > 2:
		return errField(fmt.Sprintf("state %d out of range", r.s))
	case r.g < 0 || r.g > maxGeneration:
		return errField(fmt.Sprintf("generation %d out of range [0, 2^53)", r.g))
	case r.f < 0 || r.f > maxCount:
		return errField(fmt.Sprintf("failure streak %d out of range", r.f))
	case r.p < 0 || r.p > maxCount || r.k < 0 || r.k > r.p:
		return errField(fmt.Sprintf("probes %d, successes %d out of range", r.p, r.k))
	case r.o < 0 || r.o > nowMs+clockSkewMs || r.h < 0 || r.h > nowMs+clockSkewMs:
		return errField(fmt.Sprintf("opened at %d ms, half-open at %d ms: not before Redis's clock (%d ms)", r.o, r.h, nowMs))
	case r.s != 0 && r.o == 0:
		return errField(fmt.Sprintf("state %d with no opening time", r.s))
	case r.s != 2 && r.p != 0:
		return errField(fmt.Sprintf("probes %d in state %d", r.p, r.s))
	}
	return nil
}

// shared returns the record as a registry state, converting the time it
// opened from Redis's clock (nowMs) to this process's (now).
func (r breakerRecord) shared(now time.Time, nowMs int64) registry.SharedState {
	ss := registry.SharedState{
		State:       registry.State(r.s),
		Generation:  uint64(r.g),
		Failures:    int(r.f),
		Probes:      int(r.p),
		Successes:   int(r.k),
		Fingerprint: r.fp,
	}
	if ss.State != registry.StateClosed && r.o > 0 {
		ss.OpenedAt = now.Add(-time.Duration(nowMs-r.o) * time.Millisecond)
	}
	return ss
}

// Load implements [registry.Store]: one pipeline of TIME and one HMGET per
// name. A key that holds another type or an invalid record
// ([decodeBreaker]) has its state's Err set, a [*registry.KeyError]; only
// a failure of Redis itself fails the Load.
func (s *Store) Load(ctx context.Context, names []string) ([]registry.SharedState, error) {
	pipe := s.c.Pipeline()
	tc := pipe.Time(ctx)
	cmds := make([]*redis.SliceCmd, len(names))
	for i, n := range names {
		cmds[i] = pipe.HMGet(ctx, s.breakerKey(n), "s", "g", "f", "o", "h", "p", "k", "fp")
	}
	if _, err := pipe.Exec(ctx); err != nil && !wrongType(err) {
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
		key := s.breakerKey(names[i])
		if err := c.Err(); err != nil {
			if !wrongType(err) {
				return nil, err
			}
			out[i].Err = refusal(names[i], key, refusedType)
			continue
		}
		rec, err := decodeBreaker(c.Val(), nowMs)
		if err != nil {
			out[i].Err = &registry.KeyError{Name: names[i], Key: key, Reason: err.Error(), Err: registry.ErrBadRecord}
			continue
		}
		out[i] = rec.shared(now, nowMs)
	}
	return out, nil
}

// wrongType reports whether err is Redis's WRONGTYPE: a key holding another
// type than the command works on (a bad key, not a Redis failure).
func wrongType(err error) bool { return redis.HasErrorPrefix(err, "WRONGTYPE") }

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
