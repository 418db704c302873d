package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

type tenantKey struct{}

func tenantOf(ctx context.Context, _ any) string { s, _ := ctx.Value(tenantKey{}).(string); return s }

func tenant(name string) context.Context {
	return context.WithValue(context.Background(), tenantKey{}, name)
}

// keyedRecorder keeps the events it observes.
type keyedRecorder struct {
	mu sync.Mutex
	ev []middleware.Event
}

func (r *keyedRecorder) Observe(_ context.Context, e middleware.Event) {
	r.mu.Lock()
	r.ev = append(r.ev, e)
	r.mu.Unlock()
}

// TestKeyedCircuitBreaker: one tenant's failures open its own breaker, not
// the others'; its rejection is not retried; events name the layer and the
// key; a bad key is rejected, alone.
func TestKeyedCircuitBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &keyedRecorder{}
		calls := map[string]int{}
		var mu sync.Mutex
		ep := func(ctx context.Context, _ any) (any, error) {
			mu.Lock()
			calls[tenantOf(ctx, nil)]++
			mu.Unlock()
			if tenantOf(ctx, nil) == "bad" {
				return nil, errors.New("tenant's shard down")
			}
			return "ok", nil
		}
		guarded := middleware.KeyedCircuitBreaker(middleware.KeyedBreakerConfig{
			Key:     tenantOf,
			Breaker: middleware.BreakerConfig{Name: "shards", FailureThreshold: 3, ResetTimeout: time.Minute, Observer: rec},
		})(ep)
		withRetry := middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Observer: middleware.Discard})(guarded)
		for range 10 {
			withRetry(tenant("bad"), nil)
			if _, err := withRetry(tenant("good"), nil); err != nil {
				t.Fatalf("good tenant: %v", err)
			}
		}
		if calls["bad"] != 3 || calls["good"] != 10 {
			t.Errorf("calls %v, want bad 3 (then its breaker is open and rejections are not retried), good 10", calls)
		}
		_, err := withRetry(tenant("bad"), nil)
		if e, ok := errors.AsType[*registry.CircuitOpenError](err); !ok || e.Service != "bad" {
			t.Errorf("bad tenant: err = %v, want its breaker's CircuitOpenError", err)
		}
		var change *middleware.Event
		for i := range rec.ev {
			if rec.ev[i].Kind == middleware.EventStateChange {
				change = &rec.ev[i]
			}
		}
		if change == nil || change.Name != "shards" || change.Key != "bad" || change.To != registry.StateOpen {
			t.Errorf("state change event %+v, want Name shards, Key bad, to open", change)
		}
		for _, k := range []string{"", strings.Repeat("x", registry.MaxNameLen+1), "a\x00b"} {
			if _, err := guarded(tenant(k), nil); !errors.Is(err, middleware.ErrKeyRejected) || !errors.Is(err, registry.ErrInvalidName) {
				t.Errorf("key %q: err = %v, want ErrKeyRejected and ErrInvalidName", k, err)
			}
		}
		if _, err := guarded(tenant("good"), nil); err != nil {
			t.Errorf("good tenant after bad keys: %v", err)
		}
	})
}

// TestKeyedBreakerEviction: an open breaker is never evicted before its
// reset timeout has passed, nor a half-open one before the TTL has since,
// however many keys come: with every slot held by such a breaker a new key
// is rejected (ErrKeyRejected, ErrTooManyKeys); after that the new keys get
// room.
func TestKeyedBreakerEviction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := errors.New("down")
		ep := func(ctx context.Context, _ any) (any, error) {
			if strings.HasPrefix(tenantOf(ctx, nil), "open") {
				return nil, down
			}
			return "ok", nil
		}
		guarded := middleware.KeyedCircuitBreaker(middleware.KeyedBreakerConfig{
			Key: tenantOf, MaxKeys: 16, TTL: 10 * time.Minute,
			Breaker: middleware.BreakerConfig{FailureThreshold: 1, ResetTimeout: time.Minute, Observer: middleware.Discard},
		})(ep)
		// Fill every shard with open breakers: keys until 16 are open.
		open := 0
		for i := 0; open < 16 && i < 10000; i++ {
			_, err := guarded(tenant(fmt.Sprint("open", i)), nil)
			if errors.Is(err, down) {
				open++
			}
		}
		rejected := 0
		for i := range 200 {
			_, err := guarded(tenant(fmt.Sprint("new", i)), nil)
			if errors.Is(err, middleware.ErrKeyRejected) && errors.Is(err, registry.ErrTooManyKeys) {
				rejected++
			} else if err != nil {
				t.Fatalf("new key: %v", err)
			}
		}
		if rejected == 0 {
			t.Fatal("no new key rejected while every breaker held is open: an open breaker was evicted")
		}
		time.Sleep(time.Minute) // the spells end: the breakers half-open, and stay for the TTL
		if _, err := guarded(tenant("early"), nil); !errors.Is(err, registry.ErrTooManyKeys) {
			t.Fatalf("a new key while every breaker is half-open for less than the TTL: err = %v, want ErrTooManyKeys", err)
		}
		time.Sleep(10 * time.Minute)
		for i := range 200 {
			if _, err := guarded(tenant(fmt.Sprint("later", i)), nil); err != nil {
				t.Fatalf("after the reset timeout, a new key: %v", err)
			}
		}
	})
}

// TestKeyedChurn: a million distinct keys through a keyed breaker and a
// keyed rate limit hold at most MaxKeys entries and a bounded heap. With
// -race the churn is a tenth as long (the detector multiplies the cost of
// each call); the bound is the same.
func TestKeyedChurn(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n = 100_000
	}
	const maxKeys = 10_000
	cb := middleware.KeyedCircuitBreaker(middleware.KeyedBreakerConfig{
		Key: func(_ context.Context, req any) string { return req.(string) }, MaxKeys: maxKeys,
		Breaker: middleware.BreakerConfig{Observer: middleware.Discard},
	})(func(context.Context, any) (any, error) { return nil, nil })
	rl := middleware.KeyedRateLimit(middleware.KeyedRateLimitConfig{
		Key: func(_ context.Context, req any) string { return req.(string) }, MaxKeys: maxKeys, Rate: 1e6, Burst: 1,
		Observer: middleware.Discard,
	})(func(context.Context, any) (any, error) { return nil, nil })
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx := context.Background()
	for i := range n {
		key := fmt.Sprint("tenant-", i)
		if _, err := cb(ctx, key); err != nil {
			t.Fatalf("breaker, key %d: %v", i, err)
		}
		if _, err := rl(ctx, key); err != nil && !errors.Is(err, middleware.ErrRateLimited) {
			t.Fatalf("rate limit, key %d: %v", i, err)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(cb)
	runtime.KeepAlive(rl)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d keys: heap grew %d KiB (%d B per key held)", n, grown>>10, grown/(2*maxKeys))
	if limit := int64(64 << 20); grown > limit {
		t.Errorf("heap grew %d MiB over %d keys, want at most %d MiB (MaxKeys %d per layer)", grown>>20, n, limit>>20, maxKeys)
	}
}

// TestKeyedRateLimit: each key has its own bucket; a drained bucket is not
// evicted (a flood of new keys cannot hand a key a fresh burst), and a full
// one is.
func TestKeyedRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &keyedRecorder{}
		ep := middleware.KeyedRateLimit(middleware.KeyedRateLimitConfig{
			Key: tenantOf, Rate: 1.0 / 60, Burst: 1, MaxKeys: 16, TTL: time.Hour, Name: "per-tenant", Observer: rec,
		})(func(context.Context, any) (any, error) { return "ok", nil })
		if _, err := ep(tenant("a"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := ep(tenant("b"), nil); err != nil {
			t.Fatalf("another tenant's first call: %v", err)
		}
		_, err := ep(tenant("a"), nil)
		rle, ok := errors.AsType[*middleware.RateLimitError](err)
		if !ok || rle.Delay != time.Minute {
			t.Fatalf("a's second call: err = %v, want a RateLimitError with a delay of 1m", err)
		}
		if e := rec.ev[len(rec.ev)-1]; e.Kind != middleware.EventRejected || e.Name != "per-tenant" || e.Key != "a" {
			t.Errorf("event %+v, want a rejection named per-tenant with key a", e)
		}
		for i := range 2000 { // a flood of new keys
			ep(tenant(fmt.Sprint("flood", i)), nil)
		}
		if _, err := ep(tenant("a"), nil); !errors.Is(err, middleware.ErrRateLimited) {
			t.Errorf("a after the flood: err = %v, want still limited (its drained bucket kept)", err)
		}
		time.Sleep(time.Minute)
		if _, err := ep(tenant("a"), nil); err != nil {
			t.Errorf("a a minute later: %v, want its token back", err)
		}
	})
}

func TestKeyedConfigValidate(t *testing.T) {
	key := func(context.Context, any) string { return "" }
	for _, err := range []error{
		middleware.KeyedBreakerConfig{}.Validate(),
		middleware.KeyedBreakerConfig{Key: key, MaxKeys: -1}.Validate(),
		middleware.KeyedBreakerConfig{Key: key, TTL: time.Microsecond}.Validate(),
		middleware.KeyedBreakerConfig{Key: key, Breaker: middleware.BreakerConfig{FailureThreshold: -1}}.Validate(),
		middleware.KeyedRateLimitConfig{Key: key, Burst: 1}.Validate(),
		middleware.KeyedRateLimitConfig{Key: key, Rate: 1}.Validate(),
		middleware.KeyedRateLimitConfig{Rate: 1, Burst: 1}.Validate(),
		middleware.KeyedRateLimitConfig{Key: key, Rate: 1, Burst: 1, MaxKeys: registry.MaxKeyedMax + 1}.Validate(),
	} {
		if !errors.Is(err, middleware.ErrInvalidConfig) {
			t.Errorf("Validate = %v, want ErrInvalidConfig", err)
		}
	}
}
