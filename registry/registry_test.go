package registry_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/registry"
	"github.com/sony/gobreaker/v2"
)

var errBoom = errors.New("boom")

// fail makes n calls that fail.
func fail(t *testing.T, b *registry.Breaker, n int) {
	t.Helper()
	for i := range n {
		tk, err := b.Allow()
		if err != nil {
			t.Fatalf("failure %d: Allow() = %v, want admitted", i+1, err)
		}
		b.Done(tk, registry.Failure)
	}
}

// succeed makes n calls that succeed.
func succeed(t *testing.T, b *registry.Breaker, n int) {
	t.Helper()
	for i := range n {
		tk, err := b.Allow()
		if err != nil {
			t.Fatalf("success %d: Allow() = %v, want admitted", i+1, err)
		}
		b.Done(tk, registry.Success)
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "plain", in: "chromadb"},
		{name: "space and punctuation", in: "embedding api/v1 (eu-west)"},
		{name: "unicode letters", in: "größe-日本"},
		{name: "max length", in: strings.Repeat("a", registry.MaxNameLen)},
		{name: "empty", in: "", wantErr: true},
		{name: "too long", in: strings.Repeat("a", registry.MaxNameLen+1), wantErr: true},
		{name: "newline", in: "a\nb", wantErr: true},
		{name: "NUL", in: "a\x00b", wantErr: true},
		{name: "invalid UTF-8", in: "a\xffb", wantErr: true},
		{name: "tab", in: "a\tb", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := registry.CheckName(tt.in)
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("CheckName(%q) = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, registry.ErrInvalidName) {
				t.Errorf("CheckName(%q) = %v, want ErrInvalidName", tt.in, err)
			}
			_, err = registry.New(registry.Config{}).Breaker(tt.in, registry.Settings{})
			if got := err != nil; got != tt.wantErr {
				t.Errorf("Breaker(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestBreakerSameNameSameBreaker(t *testing.T) {
	r := registry.New(registry.Config{})
	b1, err := r.Breaker("chromadb", registry.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	// Explicit defaults are the same settings as zero fields.
	b2, err := r.Breaker("chromadb", registry.Settings{FailureThreshold: 5, SuccessThreshold: 2, ResetTimeout: time.Minute})
	if err != nil {
		t.Fatalf("Breaker with explicit defaults: %v", err)
	}
	if b1 != b2 {
		t.Errorf("same name gave two breakers")
	}
	got, ok := r.Get("chromadb")
	if !ok || got != b1 {
		t.Errorf("Get = %p, %v; want %p, true", got, ok, b1)
	}
	if _, ok := r.Get("missing"); ok {
		t.Errorf("Get(missing) ok = true, want false")
	}
}

func TestBreakerConflict(t *testing.T) {
	r := registry.New(registry.Config{})
	if _, err := r.Breaker("api", registry.Settings{FailureThreshold: 3}); err != nil {
		t.Fatal(err)
	}
	_, err := r.Breaker("api", registry.Settings{FailureThreshold: 7})
	if !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	for _, want := range []string{"failure_threshold=3", "failure_threshold=7", `"api"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name string
		s    registry.Settings
		want int // number of problems
	}{
		{name: "zero", s: registry.Settings{}},
		{name: "ratio", s: registry.Settings{FailureRatio: 0.5, MinRequests: 20, Window: 10 * time.Second, WindowBuckets: 5}},
		{name: "negative everything", s: registry.Settings{FailureThreshold: -1, SuccessThreshold: -1, ResetTimeout: -1, FailureRatio: -0.1, MinRequests: -1, Window: -1, WindowBuckets: -1}, want: 7},
		{name: "ratio above one", s: registry.Settings{FailureRatio: 1.5}, want: 1},
		{name: "one bucket", s: registry.Settings{FailureRatio: 0.5, WindowBuckets: 1}, want: 1},
		{name: "window shorter than buckets", s: registry.Settings{FailureRatio: 0.5, Window: 3, WindowBuckets: 10}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			var got int
			if err != nil {
				if !errors.Is(err, registry.ErrInvalidSettings) {
					t.Fatalf("err = %v, want ErrInvalidSettings", err)
				}
				got = len(err.(interface{ Unwrap() []error }).Unwrap())
			}
			if got != tt.want {
				t.Errorf("problems = %d, want %d (%v)", got, tt.want, err)
			}
			if _, err := registry.New(registry.Config{}).Breaker("x", tt.s); (err != nil) != (tt.want > 0) {
				t.Errorf("Breaker error = %v, want error %v", err, tt.want > 0)
			}
		})
	}
}

func TestMaxBreakers(t *testing.T) {
	tests := []struct {
		name string
		cfg  registry.Config
		max  int
	}{
		{name: "cap 3", cfg: registry.Config{MaxBreakers: 3}, max: 3},
		{name: "default cap", max: registry.DefaultMaxBreakers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registry.New(tt.cfg)
			for i := range tt.max {
				if _, err := r.Breaker(fmt.Sprintf("svc-%d", i), registry.Settings{}); err != nil {
					t.Fatalf("breaker %d: %v", i+1, err)
				}
			}
			if _, err := r.Breaker("one-too-many", registry.Settings{}); !errors.Is(err, registry.ErrTooManyBreakers) {
				t.Errorf("err = %v, want ErrTooManyBreakers", err)
			}
			// An existing name is still served at the cap.
			if _, err := r.Breaker("svc-0", registry.Settings{}); err != nil {
				t.Errorf("existing name at the cap: %v", err)
			}
			if got := len(r.Names()); got != tt.max {
				t.Errorf("names = %d, want %d", got, tt.max)
			}
		})
	}
}

func TestNamesSorted(t *testing.T) {
	r := registry.New(registry.Config{})
	for _, n := range []string{"zeta", "alpha", "mid"} {
		if _, err := r.Breaker(n, registry.Settings{}); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(r.Names(), ",")
	if want := "alpha,mid,zeta"; got != want {
		t.Errorf("Names() = %s, want %s", got, want)
	}
}

func TestStateString(t *testing.T) {
	tests := []struct {
		s    registry.State
		want string
	}{
		{registry.StateClosed, "closed"},
		{registry.StateOpen, "open"},
		{registry.StateHalfOpen, "half-open"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if got, _ := tt.s.MarshalText(); string(got) != tt.want {
			t.Errorf("MarshalText() = %q, want %q", got, tt.want)
		}
	}
}

// TestThresholds walks a breaker through the guide's state diagram, one call
// at a time, checking the edges.
func TestThresholds(t *testing.T) {
	tests := []struct {
		name       string
		s          registry.Settings
		threshold  int
		successes  int
		resetAfter time.Duration
	}{
		{name: "defaults", s: registry.Settings{}, threshold: 5, successes: 2, resetAfter: time.Minute},
		{name: "1 and 1", s: registry.Settings{FailureThreshold: 1, SuccessThreshold: 1, ResetTimeout: time.Second}, threshold: 1, successes: 1, resetAfter: time.Second},
		{name: "ratio rule on", s: registry.Settings{FailureThreshold: 3, SuccessThreshold: 3, ResetTimeout: 2 * time.Second, FailureRatio: 0.99, MinRequests: 100}, threshold: 3, successes: 3, resetAfter: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := registry.New(registry.Config{}).Breaker("svc", tt.s)
				if err != nil {
					t.Fatal(err)
				}
				// One success in the middle resets the streak.
				fail(t, b, tt.threshold-1)
				succeed(t, b, 1)
				fail(t, b, tt.threshold-1)
				if got := b.State(); got != registry.StateClosed {
					t.Fatalf("after %d failures: state = %v, want closed", tt.threshold-1, got)
				}
				if got := b.Snapshot().ConsecutiveFailures; got != tt.threshold-1 {
					t.Errorf("consecutive failures = %d, want %d", got, tt.threshold-1)
				}
				fail(t, b, 1)
				if got := b.State(); got != registry.StateOpen {
					t.Fatalf("after %d failures: state = %v, want open", tt.threshold, got)
				}
				start := time.Now()
				_, err = b.Allow()
				if e, ok := errors.AsType[*registry.CircuitOpenError](err); !ok || e.State != registry.StateOpen || e.RetryAfter() != tt.resetAfter {
					t.Fatalf("Allow() = %v, want open rejection with RetryAfter %v", err, tt.resetAfter)
				}

				time.Sleep(tt.resetAfter - time.Nanosecond)
				if got := b.State(); got != registry.StateOpen {
					t.Errorf("at ResetTimeout-1ns: state = %v, want open", got)
				}
				if got := b.Snapshot().UntilHalfOpen; got != time.Nanosecond {
					t.Errorf("at ResetTimeout-1ns: until half-open = %v, want 1ns", got)
				}
				_, err = b.Allow()
				if e, ok := errors.AsType[*registry.CircuitOpenError](err); !ok || e.RetryAfter() != time.Nanosecond {
					t.Errorf("at ResetTimeout-1ns: Allow() = %v, want rejection with RetryAfter 1ns", err)
				}
				time.Sleep(time.Nanosecond)
				if got := time.Since(start); got != tt.resetAfter {
					t.Fatalf("elapsed = %v, want %v", got, tt.resetAfter)
				}
				if got := b.Snapshot().State; got != registry.StateHalfOpen {
					t.Errorf("at ResetTimeout: snapshot state = %v, want half-open", got)
				}
				synctest.Wait() // the reset timer has run
				// S-1 successes keep it half-open, the S-th closes it.
				succeed(t, b, tt.successes-1)
				if got := b.State(); got != registry.StateHalfOpen {
					t.Errorf("after %d probe successes: state = %v, want half-open", tt.successes-1, got)
				}
				succeed(t, b, 1)
				if got := b.State(); got != registry.StateClosed {
					t.Errorf("after %d probe successes: state = %v, want closed", tt.successes, got)
				}
			})
		})
	}
}

func TestHalfOpenFailureReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := registry.New(registry.Config{}).Breaker("svc", registry.Settings{FailureThreshold: 1, SuccessThreshold: 3, ResetTimeout: time.Second})
		fail(t, b, 1)
		time.Sleep(time.Second)
		synctest.Wait()
		succeed(t, b, 2)
		fail(t, b, 1)
		if got := b.State(); got != registry.StateOpen {
			t.Errorf("state = %v, want open", got)
		}
		if got := b.Snapshot().UntilHalfOpen; got != time.Second {
			t.Errorf("until half-open = %v, want 1s (a fresh open spell)", got)
		}
	})
}

func TestRejectionErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := registry.New(registry.Config{}).Breaker("api", registry.Settings{FailureThreshold: 1, SuccessThreshold: 1, ResetTimeout: time.Second})
		fail(t, b, 1)
		opened := time.Now()
		_, err := b.Allow()
		e, ok := errors.AsType[*registry.CircuitOpenError](err)
		if !ok {
			t.Fatalf("err = %v, want *CircuitOpenError", err)
		}
		if !errors.Is(err, registry.ErrOpen) || !errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			t.Errorf("open rejection %v: want ErrOpen and ErrOpenState only", err)
		}
		if e.Service != "api" || e.State != registry.StateOpen || !e.OpenedAt.Equal(opened) || !e.HalfOpenAt.Equal(opened.Add(time.Second)) {
			t.Errorf("error = %+v", *e)
		}
		_, err2 := b.Allow()
		if e2, _ := errors.AsType[*registry.CircuitOpenError](err2); e2 != e {
			t.Errorf("rejections of one open spell are different values")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		tk, err := b.Allow() // the only probe
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Allow()
		if !errors.Is(err, registry.ErrOpen) || !errors.Is(err, gobreaker.ErrTooManyRequests) || errors.Is(err, gobreaker.ErrOpenState) {
			t.Errorf("half-open rejection %v: want ErrOpen and ErrTooManyRequests only", err)
		}
		if e, _ := errors.AsType[*registry.CircuitOpenError](err); e == nil || e.State != registry.StateHalfOpen || e.RetryAfter() != 0 {
			t.Errorf("half-open rejection = %v, want State half-open and RetryAfter 0", err)
		}
		b.Done(tk, registry.Excluded) // frees the slot at once
		if _, err := b.Allow(); err != nil {
			t.Errorf("after an excluded probe: Allow() = %v, want admitted", err)
		}
	})
}

func TestResetDropsInFlight(t *testing.T) {
	b, _ := registry.New(registry.Config{}).Breaker("svc", registry.Settings{FailureThreshold: 2})
	var old []registry.Ticket
	for range 5 {
		tk, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, tk)
	}
	fail(t, b, 1)
	b.Reset()
	for _, tk := range old {
		b.Done(tk, registry.Failure)
	}
	s := b.Snapshot()
	if s.State != registry.StateClosed || s.ConsecutiveFailures != 0 || s.TotalFailures != 0 {
		t.Errorf("after reset and stale failures: %+v, want closed with no failures", s)
	}
	fail(t, b, 1)
	if got := b.State(); got != registry.StateClosed {
		t.Errorf("state = %v, want closed (one failure since the reset)", got)
	}
}

func TestTripAndReset(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, b *registry.Breaker)
		from  registry.State
	}{
		{name: "from closed", setup: func(*testing.T, *registry.Breaker) {}, from: registry.StateClosed},
		{name: "from closed with a streak", setup: func(t *testing.T, b *registry.Breaker) { fail(t, b, 2) }, from: registry.StateClosed},
		{name: "from half-open", setup: func(t *testing.T, b *registry.Breaker) {
			b.Trip()
			time.Sleep(time.Second)
			synctest.Wait()
		}, from: registry.StateHalfOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var got []string
				r := registry.New(registry.Config{Listeners: []func(registry.StateChange){func(c registry.StateChange) {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, c.From.String()+">"+c.To.String())
				}}})
				b, _ := r.Breaker("svc", registry.Settings{ResetTimeout: time.Second})
				tt.setup(t, b)
				mu.Lock()
				got = nil
				mu.Unlock()
				b.Trip()
				b.Trip() // already open: no change
				if s := b.State(); s != registry.StateOpen {
					t.Fatalf("after Trip: state = %v, want open", s)
				}
				if _, err := b.Allow(); !errors.Is(err, registry.ErrOpen) {
					t.Errorf("after Trip: Allow() = %v, want ErrOpen", err)
				}
				if !r.Reset("svc") {
					t.Fatal("Reset(svc) = false")
				}
				if r.Reset("missing") {
					t.Error("Reset(missing) = true")
				}
				succeed(t, b, 1)
				mu.Lock()
				defer mu.Unlock()
				want := tt.from.String() + ">open,open>closed"
				if g := strings.Join(got, ","); g != want {
					t.Errorf("changes = %s, want %s", g, want)
				}
			})
		})
	}
}

func TestStatesNeverStaleOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := registry.New(registry.Config{})
		a, _ := r.Breaker("a", registry.Settings{ResetTimeout: 10 * time.Second})
		_, _ = r.Breaker("b", registry.Settings{})
		a.Trip()
		time.Sleep(4 * time.Second)
		st := r.States()
		if len(st) != 2 || st["a"].State != registry.StateOpen || st["b"].State != registry.StateClosed {
			t.Fatalf("States() = %+v", st)
		}
		if got := st["a"].UntilHalfOpen; got != 6*time.Second {
			t.Errorf("until half-open = %v, want 6s", got)
		}
		if got, want := st["a"].OpenedAt, time.Now().Add(-4*time.Second); !got.Equal(want) {
			t.Errorf("opened at = %v, want %v", got, want)
		}
		time.Sleep(6 * time.Second)
		// No synctest.Wait: the snapshot must not depend on the timer.
		if got := r.States()["a"]; got.State != registry.StateHalfOpen || got.UntilHalfOpen != 0 {
			t.Errorf("at the reset timeout: %+v, want half-open", got)
		}
		r.ResetAll()
		for name, s := range r.States() {
			if s.State != registry.StateClosed {
				t.Errorf("%s after ResetAll: %v, want closed", name, s.State)
			}
		}
	})
}

// TestListenerReentrant is the regression test for gobreaker's
// OnStateChange, which runs under the breaker's lock: a listener that calls
// back into the breaker deadlocks there. Ours does not, and still gets every
// change once, in order.
func TestListenerReentrant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r *registry.Registry
		var got []string
		r = registry.New(registry.Config{Listeners: []func(registry.StateChange){func(c registry.StateChange) {
			got = append(got, c.From.String()+">"+c.To.String())
			b, _ := r.Get(c.Name)
			_ = b.State()
			_ = r.States()
			_ = b.Snapshot()
			if c.To == registry.StateOpen && len(got) == 1 {
				b.Reset() // queues open>closed, delivered after this call
			}
		}}})
		b, _ := r.Breaker("svc", registry.Settings{FailureThreshold: 1, ResetTimeout: time.Second})
		fail(t, b, 1)
		fail(t, b, 1)
		time.Sleep(time.Second)
		synctest.Wait()
		want := "closed>open,open>closed,closed>open,open>half-open"
		if g := strings.Join(got, ","); g != want {
			t.Errorf("changes = %s, want %s", g, want)
		}
	})
}

func TestListenerOrderUnderConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []registry.StateChange
		r := registry.New(registry.Config{Listeners: []func(registry.StateChange){func(c registry.StateChange) {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
		}}})
		b, _ := r.Breaker("svc", registry.Settings{FailureThreshold: 1, SuccessThreshold: 1, ResetTimeout: time.Millisecond})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					tk, err := b.Allow()
					if err == nil {
						o := registry.Success
						if (g+i)%3 == 0 {
							o = registry.Failure
						}
						b.Done(tk, o)
					}
					if i%50 == 0 {
						time.Sleep(time.Millisecond)
					}
					if i%97 == 0 {
						b.Reset()
					}
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			t.Fatal("no state changes")
		}
		prev := registry.StateClosed
		for i, c := range got {
			if c.From != prev || c.From == c.To {
				t.Fatalf("change %d: %v>%v after %v: out of order or repeated", i, c.From, c.To, prev)
			}
			prev = c.To
		}
		if s := b.State(); s != prev {
			t.Errorf("last change to %v, state %v", prev, s)
		}
	})
}

func TestSubscribeDedupe(t *testing.T) {
	b, _ := registry.New(registry.Config{}).Breaker("svc", registry.Settings{})
	var calls [3]int
	type key struct{ id int }
	b.Subscribe(key{1}, func(registry.StateChange) { calls[0]++ })
	b.Subscribe(key{1}, func(registry.StateChange) { calls[1]++ }) // same key: ignored
	b.Subscribe([]int{1}, func(registry.StateChange) { calls[2]++ })
	b.Subscribe([]int{1}, func(registry.StateChange) { calls[2]++ }) // not comparable: kept
	b.Trip()
	if calls != [3]int{1, 0, 2} {
		t.Errorf("calls = %v, want [1 0 2]", calls)
	}
}

func TestListenerPanicKeepsLaterChanges(t *testing.T) {
	var got []string
	boom := true
	r := registry.New(registry.Config{Listeners: []func(registry.StateChange){func(c registry.StateChange) {
		if boom {
			boom = false
			panic(errBoom)
		}
		got = append(got, c.To.String())
	}}})
	b, _ := r.Breaker("svc", registry.Settings{})
	func() {
		defer func() {
			if v := recover(); v != errBoom {
				t.Errorf("recovered %v, want errBoom", v)
			}
		}()
		b.Trip()
	}()
	b.Reset()
	if g := strings.Join(got, ","); g != "closed" {
		t.Errorf("delivered after the panic: %s, want closed", g)
	}
}

// TestRatioRule checks the failure-ratio rule over the rolling window, and
// that the window never shortens the consecutive streak.
func TestRatioRule(t *testing.T) {
	s := registry.Settings{FailureThreshold: 5, FailureRatio: 0.5, MinRequests: 10, Window: 10 * time.Second, WindowBuckets: 10}
	t.Run("trips at the ratio with enough calls", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, _ := registry.New(registry.Config{}).Breaker("svc", s)
			for range 4 { // 4 x (s, f) = 8 calls, ratio 0.5 but too few
				succeed(t, b, 1)
				fail(t, b, 1)
			}
			succeed(t, b, 1)
			if got := b.State(); got != registry.StateClosed {
				t.Fatalf("9 calls: state = %v, want closed", got)
			}
			fail(t, b, 1) // 10 calls, 5 failures
			if got := b.State(); got != registry.StateOpen {
				t.Errorf("10 calls at ratio 0.5: state = %v, want open", got)
			}
		})
	})
	t.Run("old calls leave the window", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, _ := registry.New(registry.Config{}).Breaker("svc", s)
			for range 4 {
				fail(t, b, 1)
				succeed(t, b, 1)
			}
			time.Sleep(10 * time.Second) // all 8 leave the window
			succeed(t, b, 8)
			fail(t, b, 2) // 10 in the window, 2 failures
			if got := b.State(); got != registry.StateClosed {
				t.Errorf("state = %v, want closed (ratio 0.2 in the window)", got)
			}
		})
	})
	t.Run("slow outage still trips the streak", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, _ := registry.New(registry.Config{}).Breaker("svc", registry.Settings{FailureThreshold: 5, FailureRatio: 0.9, MinRequests: 100, Window: 10 * time.Second})
			for i := range 4 {
				fail(t, b, 1)
				time.Sleep(30 * time.Second) // longer than the window
				if got := b.Snapshot().ConsecutiveFailures; got != i+1 {
					t.Fatalf("streak = %d, want %d", got, i+1)
				}
			}
			fail(t, b, 1)
			if got := b.State(); got != registry.StateOpen {
				t.Errorf("5th consecutive failure spread over 2 minutes: state = %v, want open", got)
			}
		})
	})
}

func TestDefaultRegistry(t *testing.T) {
	if registry.Default == nil {
		t.Fatal("Default is nil")
	}
	b, err := registry.Default.Breaker("registry_test.default", registry.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := registry.Default.Get("registry_test.default"); got != b {
		t.Error("Default.Get did not return the breaker")
	}
}

// TestFastPathKeepsGobreakerOrder: outcomes apply in the order calls end, as
// in gobreaker, even for calls admitted on the fast path.
func TestFastPathKeepsGobreakerOrder(t *testing.T) {
	tests := []struct {
		name       string
		late       registry.Outcome
		wantStreak int
	}{
		{name: "late success resets the streak", late: registry.Success, wantStreak: 0},
		{name: "late failure extends it", late: registry.Failure, wantStreak: 2},
		{name: "late exclusion changes nothing", late: registry.Excluded, wantStreak: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := registry.New(registry.Config{}).Breaker("svc", registry.Settings{})
			early, err := b.Allow() // admitted while clean
			if err != nil {
				t.Fatal(err)
			}
			fail(t, b, 1)
			b.Done(early, tt.late)
			if got := b.Snapshot().ConsecutiveFailures; got != tt.wantStreak {
				t.Errorf("streak = %d, want %d", got, tt.wantStreak)
			}
		})
	}
}

func TestStaleTicketAfterTrip(t *testing.T) {
	b, _ := registry.New(registry.Config{}).Breaker("svc", registry.Settings{FailureThreshold: 1})
	early, _ := b.Allow()
	b.Trip()
	b.Done(early, registry.Success)
	if got := b.State(); got != registry.StateOpen {
		t.Errorf("state = %v, want open", got)
	}
	b.Reset()
	b.Done(early, registry.Failure)
	if got := b.State(); got != registry.StateClosed {
		t.Errorf("state = %v, want closed", got)
	}
}

// TestHalfOpenAtExactlyResetTimeoutWithoutWaitingForTheTimer is the
// regression test for a call made at exactly ResetTimeout being rejected when
// it ran before the breaker's timer goroutine: the boundary must not depend
// on scheduling.
func TestHalfOpenAtExactlyResetTimeoutWithoutWaitingForTheTimer(t *testing.T) {
	for _, rt := range []time.Duration{time.Millisecond, 3 * time.Millisecond, time.Second, time.Minute} {
		t.Run(rt.String(), func(t *testing.T) {
			for i := range 50 {
				synctest.Test(t, func(t *testing.T) {
					reg := registry.New(registry.Config{})
					b, err := reg.Breaker("edge", registry.Settings{ResetTimeout: rt})
					if err != nil {
						t.Fatal(err)
					}
					b.Trip()
					time.Sleep(rt - 1)
					if _, err := b.Allow(); !errors.Is(err, registry.ErrOpen) {
						t.Fatalf("run %d: at ResetTimeout-1ns: err = %v, want a rejection", i, err)
					}
					time.Sleep(time.Nanosecond) // to exactly ResetTimeout
					tk, err := b.Allow()
					if err != nil {
						t.Fatalf("run %d: at ResetTimeout: err = %v, want a half-open probe", i, err)
					}
					b.Done(tk, registry.Success)
					if got := b.State(); got != registry.StateHalfOpen {
						t.Errorf("run %d: state = %s, want half-open", i, got)
					}
				})
			}
		})
	}
}

// TestRegistryRemove: a removed name is gone from the registry, frees its
// place under MaxBreakers, and comes back as a new, closed breaker; the
// removed breaker still works for its holder.
func TestRegistryRemove(t *testing.T) {
	r := registry.New(registry.Config{MaxBreakers: 1})
	defer r.Close()
	old, err := r.Breaker("a", registry.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	old.Trip()
	if _, err := r.Breaker("b", registry.Settings{}); !errors.Is(err, registry.ErrTooManyBreakers) {
		t.Fatalf("second breaker of a full registry: err = %v, want ErrTooManyBreakers", err)
	}
	if !r.Remove("a") {
		t.Fatal("Remove(a) = false, want true")
	}
	if r.Remove("a") {
		t.Error("second Remove(a) = true, want false")
	}
	if _, ok := r.Get("a"); ok || len(r.Names()) != 0 || len(r.States()) != 0 {
		t.Errorf("after Remove: Get ok = %v, Names %v, States %v; want it gone", ok, r.Names(), r.States())
	}
	if _, err := old.Allow(); !errors.Is(err, registry.ErrOpen) {
		t.Errorf("the removed breaker: Allow err = %v, want it still open (ErrOpen)", err)
	}
	fresh, err := r.Breaker("a", registry.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old || fresh.State() != registry.StateClosed {
		t.Errorf("Breaker(a) after Remove: same = %v, state %v; want a new closed breaker", fresh == old, fresh.State())
	}
}
