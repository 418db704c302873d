package redisstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/internal/redistest"
	"github.com/resiliencekit/resilience/redisstore"
	"github.com/resiliencekit/resilience/registry"
)

// bound is the documented propagation bound for these tests' config:
// ResyncInterval + Timeout. The timeout is longer than the default, so that
// a loaded CI machine does not pass for a Redis outage.
const (
	resync  = 500 * time.Millisecond
	timeout = time.Second
	bound   = resync + timeout
)

var testCfg = redisstore.Config{ResyncInterval: resync, Timeout: timeout}

func TestBreakerOpensFleetWide(t *testing.T) {
	tests := []struct {
		name      string
		threshold int
	}{
		{name: "default threshold", threshold: 0},
		{name: "threshold 7", threshold: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t)
			fleet := newFleet(t, srv.Addr, 3, testCfg, "payments", registry.Settings{FailureThreshold: tt.threshold, ResetTimeout: time.Minute})
			want := tt.threshold
			if want == 0 {
				want = registry.DefaultFailureThreshold
			}
			// want-1 failures spread over the fleet: every replica stays closed.
			for i := range want - 1 {
				if !call(fleet[i%3].b, registry.Failure) {
					t.Fatalf("failure %d rejected, want admitted", i+1)
				}
			}
			for i, r := range fleet {
				if got := r.b.State(); got != registry.StateClosed {
					t.Fatalf("replica %d after %d failures: state = %v, want closed", i, want-1, got)
				}
			}
			// The want-th failure, on another replica, opens the breaker fleet-wide.
			last := fleet[(want-1)%3]
			if !call(last.b, registry.Failure) {
				t.Fatal("last failure rejected, want admitted")
			}
			if got := last.b.State(); got != registry.StateOpen {
				t.Fatalf("failing replica: state = %v, want open at once", got)
			}
			for i, r := range fleet {
				took, ok := waitFor(bound, func() bool {
					_, err := r.b.Allow()
					return errors.Is(err, registry.ErrOpen)
				})
				if !ok {
					t.Fatalf("replica %d still admits %v after the breaker opened, want rejections within %v", i, took, bound)
				}
				t.Logf("replica %d rejects after %v", i, took)
			}
		})
	}
}

func TestBreakerSuccessClearsFleetStreak(t *testing.T) {
	srv := redistest.Start(t)
	fleet := newFleet(t, srv.Addr, 2, testCfg, "search", registry.Settings{FailureThreshold: 3, ResetTimeout: time.Minute})
	a, b := fleet[0].b, fleet[1].b
	call(a, registry.Failure)
	call(b, registry.Failure)
	call(a, registry.Success) // a knows of the streak: this success clears it fleet-wide
	call(b, registry.Failure)
	call(a, registry.Failure)
	for i, r := range fleet {
		if got := r.b.State(); got != registry.StateClosed {
			t.Errorf("replica %d: state = %v, want closed (the success cleared the streak)", i, got)
		}
	}
	call(b, registry.Failure) // the third in a row
	if got := b.State(); got != registry.StateOpen {
		t.Errorf("state = %v, want open", got)
	}
}

func TestBreakerHalfOpenProbesFleetWide(t *testing.T) {
	srv := redistest.Start(t)
	const reset = 150 * time.Millisecond
	fleet := newFleet(t, srv.Addr, 3, testCfg, "probe", registry.Settings{SuccessThreshold: 2, ResetTimeout: reset})
	fleet[0].b.Trip()
	for i, r := range fleet {
		if _, ok := waitFor(bound, func() bool { return r.b.State() == registry.StateOpen }); !ok {
			t.Fatalf("replica %d did not see the trip", i)
		}
	}
	time.Sleep(reset + 20*time.Millisecond)
	// Every replica asks for probes at once: two are admitted in the fleet.
	var (
		mu      sync.Mutex
		tickets []func()
		wg      sync.WaitGroup
	)
	for _, r := range fleet {
		for range 3 {
			wg.Go(func() {
				t, err := r.b.Allow()
				if err == nil {
					mu.Lock()
					tickets = append(tickets, func() { r.b.Done(t, registry.Success) })
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if got, want := len(tickets), 2; got != want {
		t.Fatalf("probes admitted = %d, want %d fleet-wide", got, want)
	}
	for _, done := range tickets {
		done()
	}
	for i, r := range fleet {
		if _, ok := waitFor(bound, func() bool { return r.b.State() == registry.StateClosed }); !ok {
			t.Errorf("replica %d: state = %v, want closed after 2 successful probes", i, r.b.State())
		}
	}
}

func TestBreakerResetAndTripShared(t *testing.T) {
	srv := redistest.Start(t)
	fleet := newFleet(t, srv.Addr, 2, testCfg, "ops", registry.Settings{ResetTimeout: time.Minute})
	fleet[0].b.Trip()
	if _, ok := waitFor(bound, func() bool { return fleet[1].b.State() == registry.StateOpen }); !ok {
		t.Fatal("Trip on replica 0 not seen by replica 1")
	}
	fleet[1].b.Reset()
	if _, ok := waitFor(bound, func() bool { return fleet[0].b.State() == registry.StateClosed }); !ok {
		t.Fatal("Reset on replica 1 not seen by replica 0")
	}
	// A new replica starts from the fleet's state.
	fleet[0].b.Trip()
	late := newFleet(t, srv.Addr, 1, testCfg, "ops", registry.Settings{ResetTimeout: time.Minute})
	if got := late[0].b.State(); got != registry.StateOpen {
		t.Errorf("new replica: state = %v, want open", got)
	}
}

func TestBreakerStoreOutage(t *testing.T) {
	srv := redistest.Start(t)
	var log statusLog
	cfg := testCfg
	cfg.OnStatus = log.add
	fleet := newFleet(t, srv.Addr, 3, cfg, "outage", registry.Settings{FailureThreshold: 3, ResetTimeout: time.Minute})
	call(fleet[0].b, registry.Failure)

	srv.Stop()
	// Calls keep flowing, decided locally; the first store error costs at
	// most the store timeout, the later ones nothing.
	start := time.Now()
	for i := range 100 {
		if !call(fleet[i%3].b, registry.Success) {
			t.Fatalf("success call %d rejected during the outage", i)
		}
	}
	if took := time.Since(start); took > 2*timeout {
		t.Errorf("100 successes took %v during the outage, want under %v", took, 2*timeout)
	}
	// Failures are counted locally: a replica opens after its own 3.
	for i := range 3 {
		if !call(fleet[1].b, registry.Failure) {
			t.Fatalf("failure %d rejected, want admitted", i+1)
		}
	}
	if got := fleet[1].b.State(); got != registry.StateOpen {
		t.Errorf("replica 1 after 3 local failures: state = %v, want open (local decision)", got)
	}
	if _, ok := waitFor(bound, func() bool { return log.has(false) }); !ok {
		t.Error("no status event for the outage")
	}
	st, _ := fleet[1].reg.StoreStats()
	if st.Healthy || st.Errors == 0 || st.LocalDecisions == 0 {
		t.Errorf("StoreStats = %+v, want unhealthy with errors and local decisions", st)
	}

	srv.Restart(t)
	// Back: every replica takes the store's (empty, so closed) state.
	for i, r := range fleet {
		if _, ok := waitFor(3*bound, func() bool {
			st, _ := r.reg.StoreStats()
			return st.Healthy && r.b.State() == registry.StateClosed
		}); !ok {
			st, _ := r.reg.StoreStats()
			t.Fatalf("replica %d after the restart: stats %+v, state %v; want healthy and closed", i, st, r.b.State())
		}
	}
	if !log.has(true) {
		t.Error("no status event for the store's return")
	}
	// And shares again.
	for i := range 3 {
		call(fleet[i].b, registry.Failure)
	}
	for i, r := range fleet {
		if _, ok := waitFor(bound, func() bool { return r.b.State() == registry.StateOpen }); !ok {
			t.Errorf("replica %d: state = %v after 3 failures fleet-wide, want open", i, r.b.State())
		}
	}
}

func TestBreakerKeysAndCap(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv.Addr, redisstore.Config{Prefix: "app1:", Timeout: timeout, ResyncInterval: resync})
	reg := st.Registry(registry.Config{MaxBreakers: 2})
	for _, name := range []string{"a", "b"} {
		b, err := reg.Breaker(name, registry.Settings{})
		if err != nil {
			t.Fatal(err)
		}
		call(b, registry.Failure)
	}
	if _, err := reg.Breaker("c", registry.Settings{}); !errors.Is(err, registry.ErrTooManyBreakers) {
		t.Errorf("third name: err = %v, want ErrTooManyBreakers", err)
	}
	if _, err := reg.Breaker("r", registry.Settings{FailureRatio: 0.5}); !errors.Is(err, registry.ErrInvalidSettings) {
		t.Errorf("ratio rule: err = %v, want ErrInvalidSettings", err)
	}
	keys, err := st.Client().Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"app1:breaker:a": true, "app1:breaker:b": true}
	if len(keys) != len(want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("unexpected key %q", k)
		}
		ttl, _ := st.Client().PTTL(context.Background(), k).Result()
		if ttl <= 0 || ttl > redisstore.DefaultKeyTTL {
			t.Errorf("key %q: TTL = %v, want in (0, %v]", k, ttl, redisstore.DefaultKeyTTL)
		}
	}
}

func TestBreakerResyncWithoutPush(t *testing.T) {
	srv := redistest.Start(t)
	fleet := newFleet(t, srv.Addr, 2, testCfg, "silent", registry.Settings{ResetTimeout: time.Minute})
	// Open the breaker behind the replicas' backs, with no push: only the
	// periodic resync can tell them.
	c := fleet[0].store.Client()
	ctx := context.Background()
	now, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	rec := []any{"s", 1, "g", 1, "f", 0, "o", now.UnixMilli(), "h", 0, "p", 0, "k", 0}
	if err := c.HSet(ctx, "resilience:breaker:silent", rec...).Err(); err != nil {
		t.Fatal(err)
	}
	for i, r := range fleet {
		took, ok := waitFor(bound, func() bool { return r.b.State() == registry.StateOpen })
		if !ok {
			t.Fatalf("replica %d: state = %v after %v, want open within %v (resync)", i, r.b.State(), took, bound)
		}
	}
}

func TestBreakerStoreHangs(t *testing.T) {
	srv := redistest.Start(t)
	var log statusLog
	const short = 100 * time.Millisecond
	cfg := redisstore.Config{ResyncInterval: 200 * time.Millisecond, Timeout: short, OnStatus: log.add}
	fleet := newFleet(t, srv.Addr, 1, cfg, "hang", registry.Settings{FailureThreshold: 3, ResetTimeout: time.Minute})
	b := fleet[0].b
	srv.Pause()
	// The first failure waits for the store timeout, once; the next ones are
	// decided locally at once.
	start := time.Now()
	call(b, registry.Failure)
	if took := time.Since(start); took < short || took > short+200*time.Millisecond {
		t.Errorf("first failure during the hang took %v, want the store timeout (%v)", took, short)
	}
	start = time.Now()
	call(b, registry.Failure)
	call(b, registry.Failure)
	if took := time.Since(start); took > 20*time.Millisecond {
		t.Errorf("later failures took %v, want no store wait", took)
	}
	if got := b.State(); got != registry.StateOpen {
		t.Errorf("state = %v, want open (decided locally)", got)
	}
	if _, ok := waitFor(time.Second, func() bool { return log.has(false) }); !ok {
		t.Error("no status event for the hang")
	}
	srv.Resume()
	// Redis answers again, and never saw those failures: the breaker takes
	// its (closed) state.
	if _, ok := waitFor(5*time.Second, func() bool {
		st, _ := fleet[0].reg.StoreStats()
		return st.Healthy && b.State() == registry.StateClosed
	}); !ok {
		st, _ := fleet[0].reg.StoreStats()
		t.Fatalf("after the hang: stats %+v, state %v; want healthy and closed", st, b.State())
	}
	if !log.has(true) {
		t.Error("no status event for the store's return")
	}
}

func TestBreakerClosedSuccessNoRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	fleet := newFleet(t, srv.Addr, 1, testCfg, "fast", registry.Settings{})
	r := fleet[0]
	before, _ := r.reg.StoreStats()
	allocs := testing.AllocsPerRun(1000, func() { call(r.b, registry.Success) })
	after, _ := r.reg.StoreStats()
	if got := after.Records - before.Records; got != 0 {
		t.Errorf("store operations for 1000 closed successes = %d, want 0", got)
	}
	if allocs != 0 {
		t.Errorf("allocs per closed success = %v, want 0", allocs)
	}
	// A failure is recorded (one operation), and so is the success that
	// ends its streak; the success after that is not.
	call(r.b, registry.Failure)
	call(r.b, registry.Success)
	call(r.b, registry.Success)
	end, _ := r.reg.StoreStats()
	if got, want := end.Records-after.Records, uint64(2); got != want {
		t.Errorf("store operations = %d, want %d (the failure and the success that cleared it)", got, want)
	}
}

func TestBreakerQuietSubscriptionStaysUp(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redisstore.Config{ResyncInterval: 100 * time.Millisecond, Timeout: time.Second}
	fleet := newFleet(t, srv.Addr, 2, cfg, "quiet", registry.Settings{ResetTimeout: time.Minute})
	time.Sleep(450 * time.Millisecond) // quiet: the subscription pings, and stays up
	fleet[0].b.Trip()
	if _, ok := waitFor(time.Second, func() bool { return fleet[1].b.State() == registry.StateOpen }); !ok {
		t.Fatal("trip not seen")
	}
	for i, r := range fleet {
		if st, _ := r.reg.StoreStats(); st.Errors != 0 || !st.Healthy || st.Pushes == 0 {
			t.Errorf("replica %d: StoreStats = %+v, want healthy, no errors, pushes", i, st)
		}
	}
}
