package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/internal/redistest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/redisstore"
	"github.com/resiliencekit/resilience/registry"
)

// breakerRecord returns a valid closed breaker record (generation 1, this
// test's settings' fingerprint) with the given fields replaced.
func breakerRecord(fp string, over ...any) []any {
	rec := map[string]any{"s": 0, "g": 1, "f": 0, "o": 0, "h": 0, "p": 0, "k": 0, "fp": fp}
	for i := 0; i+1 < len(over); i += 2 {
		rec[over[i].(string)] = over[i+1]
	}
	var out []any
	for k, v := range rec {
		if v != nil {
			out = append(out, k, v)
		}
	}
	return out
}

// TestBreakerBadKeyHarmsThatKeyAlone sweeps corrupt values written at one
// breaker's key with a raw client: that breaker decides locally and is
// reported naming the key, the value is left as it is, another breaker of
// the same stores stays shared, and once the key is repaired the breaker is
// shared again.
func TestBreakerBadKeyHarmsThatKeyAlone(t *testing.T) {
	srv := redistest.Start(t)
	settings := registry.Settings{FailureThreshold: 2, ResetTimeout: time.Minute}
	fp := settings.Fingerprint()
	other := registry.Settings{FailureThreshold: 100, ResetTimeout: time.Minute}.Fingerprint()
	const future = int64(1e12) // ms past Redis's clock
	tests := []struct {
		name  string
		write func(ctx context.Context, c *redis.Client, key string, nowMs int64) error
		want  error
	}{
		{name: "foreign string", want: registry.ErrBadRecord, write: func(ctx context.Context, c *redis.Client, key string, _ int64) error {
			return c.Set(ctx, key, "hello", 0).Err()
		}},
		{name: "list (WRONGTYPE)", want: registry.ErrBadRecord, write: func(ctx context.Context, c *redis.Client, key string, _ int64) error {
			return c.RPush(ctx, key, "a", "b").Err()
		}},
		{name: "set (WRONGTYPE)", want: registry.ErrBadRecord, write: func(ctx context.Context, c *redis.Client, key string, _ int64) error {
			return c.SAdd(ctx, key, "a").Err()
		}},
		{name: "state 7", want: registry.ErrBadRecord, write: hset(breakerRecord(fp, "s", 7))},
		{name: "negative probes", want: registry.ErrBadRecord, write: func(ctx context.Context, c *redis.Client, key string, nowMs int64) error {
			return c.HSet(ctx, key, breakerRecord(fp, "s", 2, "o", nowMs, "h", nowMs, "p", -100)...).Err()
		}},
		{name: "probes above SuccessThreshold", want: registry.ErrBadRecord, write: func(ctx context.Context, c *redis.Client, key string, nowMs int64) error {
			return c.HSet(ctx, key, breakerRecord(fp, "s", 2, "o", nowMs, "h", nowMs, "p", 100)...).Err()
		}},
		{name: "successes above probes", want: registry.ErrBadRecord, write: func(ctx context.Context, c *redis.Client, key string, nowMs int64) error {
			return c.HSet(ctx, key, breakerRecord(fp, "s", 2, "o", nowMs, "h", nowMs, "p", 1, "k", 2)...).Err()
		}},
		{name: "generation 2^53", want: registry.ErrBadRecord, write: hset(breakerRecord(fp, "g", "9007199254740992"))},
		{name: "generation beyond int64", want: registry.ErrBadRecord, write: hset(breakerRecord(fp, "g", "99999999999999999999999"))},
		{name: "negative failure streak", want: registry.ErrBadRecord, write: hset(breakerRecord(fp, "f", -1))},
		{name: "NaN failure streak", want: registry.ErrBadRecord, write: hset(breakerRecord(fp, "f", "nan"))},
		{name: "fractional failure streak", want: registry.ErrBadRecord, write: hset(breakerRecord(fp, "f", "1.5"))},
		{name: "inf opening time", want: registry.ErrBadRecord, write: hset(breakerRecord(fp, "s", 1, "o", "inf"))},
		{name: "open with no opening time", want: registry.ErrBadRecord, write: hset(breakerRecord(fp, "s", 1, "o", 0))},
		{name: "opened far in the future", want: registry.ErrBadRecord, write: func(ctx context.Context, c *redis.Client, key string, nowMs int64) error {
			return c.HSet(ctx, key, breakerRecord(fp, "s", 1, "o", nowMs+future)...).Err()
		}},
		{name: "truncated record", want: registry.ErrBadRecord, write: hset([]any{"s", 1, "g", 3})},
		{name: "mismatched fingerprint", want: registry.ErrConflict, write: hset(breakerRecord(other))},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bad, good := fmt.Sprintf("bad-%d", i), fmt.Sprintf("good-%d", i)
			badKey := "resilience:breaker:" + bad
			ctx := context.Background()
			c := redis.NewClient(&redis.Options{Addr: srv.Addr})
			defer c.Close()
			now, err := c.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.write(ctx, c, badKey, now.UnixMilli()); err != nil {
				t.Fatal(err)
			}
			dump := c.Dump(ctx, badKey).Val()

			type replica struct {
				log       statusLog
				bad, good *registry.Breaker
			}
			reps := make([]*replica, 2)
			for j := range reps {
				r := &replica{}
				cfg := testCfg
				cfg.OnStatus = r.log.add
				reg := newStore(t, srv.Addr, cfg).Registry(registry.Config{})
				if r.bad, err = reg.Breaker(bad, settings); err != nil {
					t.Fatal(err)
				}
				if r.good, err = reg.Breaker(good, settings); err != nil {
					t.Fatal(err)
				}
				reps[j] = r
			}
			a, b := reps[0], reps[1]

			// Reported, naming the key.
			var st registry.StoreStatus
			if _, ok := waitFor(bound, func() (ok bool) { st, ok = a.log.find(bad, false); return ok }); !ok {
				t.Fatalf("no unhealthy status naming %q; statuses %+v", bad, a.log.list)
			}
			var ke *registry.KeyError
			if !errors.As(st.Err, &ke) || ke.Key != badKey || !errors.Is(st.Err, tt.want) {
				t.Errorf("status error = %v, want a *registry.KeyError at %q matching %v", st.Err, badKey, tt.want)
			}
			if _, down := a.log.find("", false); down {
				t.Error("the store as a whole was reported down")
			}

			// That breaker decides locally: A's failures open A's breaker, not B's.
			call(a.bad, registry.Failure)
			call(a.bad, registry.Failure)
			if got := a.bad.State(); got != registry.StateOpen {
				t.Errorf("bad breaker on A after 2 failures: state = %v, want open (decided locally)", got)
			}
			time.Sleep(50 * time.Millisecond)
			if got := b.bad.State(); got != registry.StateClosed {
				t.Errorf("bad breaker on B: state = %v, want closed (nothing shared through a bad key)", got)
			}
			if got := c.Dump(ctx, badKey).Val(); got != dump {
				t.Error("the bad key was overwritten, want it left as it was")
			}

			// Another breaker of the same stores stays shared.
			a.good.Trip()
			if _, ok := waitFor(bound, func() bool { return b.good.State() == registry.StateOpen }); !ok {
				t.Errorf("good breaker on B: state = %v after a Trip on A, want open (shared)", b.good.State())
			}

			// Repaired: the breaker is shared again, and says so.
			if err := c.Del(ctx, badKey).Err(); err != nil {
				t.Fatal(err)
			}
			for j, r := range reps {
				if _, ok := waitFor(bound, func() bool { _, ok := r.log.find(bad, true); return ok }); !ok {
					t.Fatalf("replica %d: no healthy status naming %q after the repair", j, bad)
				}
			}
			if got := a.bad.State(); got != registry.StateClosed {
				t.Errorf("bad breaker on A after the repair: state = %v, want closed (the store's)", got)
			}
			b.bad.Trip()
			if _, ok := waitFor(bound, func() bool { return a.bad.State() == registry.StateOpen }); !ok {
				t.Errorf("repaired breaker on A: state = %v after a Trip on B, want open (shared again)", a.bad.State())
			}
		})
	}
}

// hset returns a writer of the hash fields kv.
func hset(kv []any) func(context.Context, *redis.Client, string, int64) error {
	return func(ctx context.Context, c *redis.Client, key string, _ int64) error {
		return c.HSet(ctx, key, kv...).Err()
	}
}

// TestRateLimitBadKeyHarmsThatKeyAlone sweeps bad values written at one
// rate limit's key with a raw client, and a rate so low that its key's
// expiry used to overflow: that limit alone decides locally and is
// reported naming its key, the store as a whole is not reported down,
// another limit of the same stores stays shared, the value is left as it
// is, and once the key is deleted the limit is shared again. The low rate
// is no bad key at all: it works shared.
func TestRateLimitBadKeyHarmsThatKeyAlone(t *testing.T) {
	srv := redistest.Start(t)
	const aheadUs = int64(1e15) // µs past Redis's clock: about 31 years
	tests := []struct {
		name  string
		rate  float64                                                                   // of the bad key's limit; 0: 1 call a second
		write func(ctx context.Context, c *redis.Client, key string, nowUs int64) error // nil: no bad value, the limit must work shared
	}{
		{name: "foreign string", write: set("hello")},
		{name: "list (WRONGTYPE)", write: func(ctx context.Context, c *redis.Client, key string, _ int64) error {
			return c.RPush(ctx, key, "a", "b").Err()
		}},
		{name: "hash (WRONGTYPE)", write: hset([]any{"tat", "1"})},
		{name: "nan", write: set("nan")},
		{name: "inf", write: set("inf")},
		{name: "-5", write: set("-5")},
		{name: "TAT far in the future", write: func(ctx context.Context, c *redis.Client, key string, nowUs int64) error {
			return c.Set(ctx, key, strconv.FormatInt(nowUs+aheadUs, 10), 0).Err()
		}},
		{name: "rate 1e-20", rate: 1e-20},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bad, good := fmt.Sprintf("bad-%d", i), fmt.Sprintf("good-%d", i)
			badKey := "resilience:rate:" + bad
			ctx := context.Background()
			c := redis.NewClient(&redis.Options{Addr: srv.Addr})
			defer c.Close()
			now, err := c.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			var dump string
			if tt.write != nil {
				if err := tt.write(ctx, c, badKey, now.UnixMicro()); err != nil {
					t.Fatal(err)
				}
				dump = c.Dump(ctx, badKey).Val()
			}
			r := tt.rate
			if r == 0 {
				r = 1
			}

			type replica struct {
				log       statusLog
				store     *redisstore.Store
				bad, good endpoint.Endpoint
			}
			reps := make([]*replica, 2)
			for j := range reps {
				rp := &replica{}
				cfg := testCfg
				cfg.OnStatus = rp.log.add
				rp.store = newStore(t, srv.Addr, cfg)
				rp.bad = rp.store.RateLimit(bad, middleware.RateLimitConfig{Rate: r, Burst: 1, Observer: &eventLog{}})(endpoint.Nop)
				rp.good = rp.store.RateLimit(good, middleware.RateLimitConfig{Rate: 1, Burst: 1, Observer: &eventLog{}})(endpoint.Nop)
				reps[j] = rp
			}
			a, b := reps[0], reps[1]
			admitted := func(eps ...endpoint.Endpoint) int {
				n := 0
				for _, ep := range eps {
					_, err := ep(ctx, nil)
					switch {
					case err == nil:
						n++
					case !errors.Is(err, middleware.ErrRateLimited):
						t.Errorf("call: %v, want nil or ErrRateLimited", err)
					}
				}
				return n
			}

			if tt.write == nil {
				// Not a bad key: the limit is shared, and nothing is reported.
				if got := admitted(a.bad); got != 1 {
					t.Errorf("first call of the 1e-20 limit: admitted %d, want 1", got)
				}
				if got := admitted(b.bad, a.bad); got != 0 {
					t.Errorf("later calls of the 1e-20 limit on both replicas: admitted %d of 2, want 0 (shared)", got)
				}
				for j, rp := range reps {
					if rp.log.has(false) {
						t.Errorf("replica %d: unhealthy status %+v, want none", j, rp.log.list)
					}
				}
				if got := admitted(a.good, b.good); got != 1 {
					t.Errorf("good limit on two replicas: admitted %d of 2, want 1 (shared)", got)
				}
				return
			}

			// Reported, naming the key; the store as a whole is not down.
			admitted(a.bad, b.bad)
			for j, rp := range reps {
				st, ok := rp.log.find(bad, false)
				if !ok {
					t.Fatalf("replica %d: no unhealthy status naming %q; statuses %+v", j, bad, rp.log.list)
				}
				var ke *registry.KeyError
				if !errors.As(st.Err, &ke) || ke.Key != badKey || ke.Name != bad || !errors.Is(st.Err, registry.ErrBadRecord) {
					t.Errorf("replica %d: status error = %v, want a *registry.KeyError at %q matching ErrBadRecord", j, st.Err, badKey)
				}
				if _, down := rp.log.find("", false); down {
					t.Errorf("replica %d: the store as a whole was reported down", j)
				}
				if st := rp.store.LimiterStats(); !st.Healthy || st.BadRecords == 0 {
					t.Errorf("replica %d: LimiterStats = %+v, want healthy with bad records counted", j, st)
				}
			}

			// Another limit of the same stores stays shared.
			if got := admitted(a.good, b.good); got != 1 {
				t.Errorf("good limit on two replicas: admitted %d of 2, want 1 (shared)", got)
			}
			if got := c.Dump(ctx, badKey).Val(); got != dump {
				t.Error("the bad key was overwritten, want it left as it was")
			}

			// Deleted: the limit is shared again, and says so.
			if err := c.Del(ctx, badKey).Err(); err != nil {
				t.Fatal(err)
			}
			for j, rp := range reps {
				if _, ok := waitFor(3*resync, func() bool {
					rp.bad(ctx, nil)
					_, ok := rp.log.find(bad, true)
					return ok
				}); !ok {
					t.Fatalf("replica %d: no healthy status naming %q after the repair", j, bad)
				}
			}
			if err := c.Del(ctx, badKey).Err(); err != nil {
				t.Fatal(err)
			}
			if got := admitted(a.bad, b.bad); got != 1 {
				t.Errorf("repaired limit on two replicas: admitted %d of 2, want 1 (shared again)", got)
			}
		})
	}
}

// set returns a writer of the string v.
func set(v string) func(context.Context, *redis.Client, string, int64) error {
	return func(ctx context.Context, c *redis.Client, key string, _ int64) error {
		return c.Set(ctx, key, v, 0).Err()
	}
}
