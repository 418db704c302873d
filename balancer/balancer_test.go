package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"

	"github.com/resiliencekit/resilience/balancer"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// fleet is a set of fake instances: each endpoint answers its name, or the
// error set for it, and counts its calls.
type fleet struct {
	mu     sync.Mutex
	errs   map[string]error
	calls  map[string]int
	closed map[string]int
	order  []string // instances called, in order
	hook   func()   // called on every call, outside mu
}

func newFleet() *fleet {
	return &fleet{errs: map[string]error{}, calls: map[string]int{}, closed: map[string]int{}}
}

func (f *fleet) factory(instance string) (endpoint.Endpoint, io.Closer, error) {
	ep := func(context.Context, any) (any, error) {
		if f.hook != nil {
			f.hook()
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls[instance]++
		f.order = append(f.order, instance)
		if err := f.errs[instance]; err != nil {
			return nil, err
		}
		return instance, nil
	}
	return ep, closerFunc(func() error {
		f.mu.Lock()
		f.closed[instance]++
		f.mu.Unlock()
		return nil
	}), nil
}

func (f *fleet) fail(instance string, err error) {
	f.mu.Lock()
	f.errs[instance] = err
	f.mu.Unlock()
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("i%02d", i)
	}
	return out
}

// newBalancer returns an endpointer and balancer over instances of f.
func newBalancer(t *testing.T, f *fleet, instances []string, share float64) (*balancer.Endpointer, *balancer.Balancer) {
	return newBalancerThreshold(t, f, instances, share, 1)
}

func newBalancerThreshold(t *testing.T, f *fleet, instances []string, share float64, threshold int) (*balancer.Endpointer, *balancer.Balancer) {
	t.Helper()
	e, err := balancer.NewEndpointer(sd.FixedInstancer(instances), f.factory, balancer.Config{
		Breaker: middleware.BreakerConfig{FailureThreshold: threshold, SuccessThreshold: 1, ResetTimeout: time.Minute, Observer: middleware.Discard},
		Logger:  quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	b, err := balancer.New(e, balancer.BalancerConfig{MaxEjectedShare: share})
	if err != nil {
		t.Fatal(err)
	}
	return e, b
}

// TestMaxEjectedShare: open breakers take their instances out of rotation,
// the first opened first, up to the share (at least one, never all); past
// it an instance stays in rotation and is called although its breaker is
// open.
func TestMaxEjectedShare(t *testing.T) {
	tests := []struct {
		name        string
		n           int
		share       float64
		trip        int // instances tripped, i00 first, a second apart
		wantSkipped int // the first-tripped ones skipped
	}{
		{"default share of 10: one", 10, 0, 3, 1},
		{"half of 10", 10, 0.5, 3, 3},
		{"half of 10, all bad", 10, 0.5, 10, 5},
		{"one of three at the default", 3, 0, 1, 1},
		{"two of three at the default", 3, 0, 2, 1},
		{"all of three at share 1: never all", 3, 1, 3, 2},
		{"a single instance is never ejected", 1, 1, 1, 0},
		{"0.3 of 10 is 3, not 2", 10, 0.3, 5, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFleet()
				e, b := newBalancer(t, f, names(tt.n), tt.share)
				ins, _ := e.Instances()
				for _, in := range ins[:tt.trip] {
					in.Breaker.Trip()
					time.Sleep(time.Second)
				}
				for range 10 * tt.n {
					ep, err := b.Endpoint()
					if err != nil {
						t.Fatal(err)
					}
					if _, err := ep(context.Background(), nil); err != nil {
						t.Fatalf("a call in rotation failed: %v", err)
					}
				}
				for i, name := range names(tt.n) {
					skipped := f.calls[name] == 0
					if want := i < tt.wantSkipped; skipped != want {
						t.Errorf("%s (tripped %v) skipped = %v, want %v; calls %v", name, i < tt.trip, skipped, want, f.calls)
					}
				}
			})
		})
	}
}

// TestRetryMovesOn: each attempt of a call goes to an instance the call
// has not tried; a failed instance is left for another at once (no
// backoff with NoDelay), and a rejection is not retried.
func TestRetryMovesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet()
		e, b := newBalancerThreshold(t, f, names(3), 1, 100) // breakers stay closed: this is about the retry
		f.fail("i00", errors.New("boom"))
		f.fail("i01", errors.New("boom"))
		// Other callers take two turns of the round robin during each
		// attempt: without the call's record of the instances it tried, the
		// next attempt would land on the same instance again.
		f.hook = func() { b.Endpoint(); b.Endpoint() }
		call := balancer.Retry(b, middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Observer: middleware.Discard})
		for i := range 6 {
			f.mu.Lock()
			f.order = nil
			f.mu.Unlock()
			resp, err := call(context.Background(), nil)
			if err != nil || resp != "i02" {
				t.Fatalf("call %d = %v, %v; want i02's answer", i, resp, err)
			}
			f.mu.Lock()
			order := slices.Clone(f.order)
			f.mu.Unlock()
			seen := map[string]bool{}
			for _, in := range order {
				if seen[in] {
					t.Errorf("call %d tried %v: %s twice while another was left", i, order, in)
				}
				seen[in] = true
			}
		}
		f.hook = nil

		f.fail("i00", middleware.ErrLimited)
		f.fail("i01", middleware.ErrLimited)
		f.fail("i02", middleware.ErrLimited)
		for _, in := range mustInstances(t, e) {
			in.Breaker.Reset()
		}
		f.mu.Lock()
		f.order = nil
		f.mu.Unlock()
		if _, err := call(context.Background(), nil); !errors.Is(err, middleware.ErrLimited) {
			t.Fatalf("err = %v, want ErrLimited", err)
		}
		if len(f.order) != 1 {
			t.Errorf("a rejection was tried on %v, want one attempt (rejections are not retried)", f.order)
		}
	})
}

// TestRetryAfterInstanceRejection: an instance whose own breaker rejects
// the attempt (it is half-open with its probe slot taken) is no attempt:
// the call moves on at once and MaxAttempts 1 still succeeds.
func TestRetryAfterInstanceRejection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet()
		e, b := newBalancer(t, f, names(2), 1)
		ins := mustInstances(t, e)
		// i00 half-open with its only probe slot taken: in rotation, and
		// its breaker rejects.
		ins[0].Breaker.Trip()
		time.Sleep(time.Minute)
		tk, err := ins[0].Breaker.Allow()
		if err != nil {
			t.Fatal(err)
		}
		defer ins[0].Breaker.Done(tk, registry.Excluded)
		call := balancer.Retry(b, middleware.RetryConfig{MaxAttempts: 1, Observer: middleware.Discard})
		for i := range 4 {
			if resp, err := call(context.Background(), nil); err != nil || resp != "i01" {
				t.Fatalf("call %d = %v, %v; want i01's answer", i, resp, err)
			}
		}
	})
}

func mustInstances(t *testing.T, e *balancer.Endpointer) []*balancer.Instance {
	t.Helper()
	ins, err := e.Instances()
	if err != nil {
		t.Fatal(err)
	}
	return ins
}

// instancer is an sd.Instancer a test drives.
type instancer struct {
	mu  sync.Mutex
	chs []chan<- sd.Event
	cur sd.Event
}

func (s *instancer) Register(ch chan<- sd.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chs = append(s.chs, ch)
	ch <- s.cur
}

func (s *instancer) Deregister(ch chan<- sd.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chs = slices.DeleteFunc(s.chs, func(c chan<- sd.Event) bool { return c == ch })
}

func (s *instancer) Stop() {}

func (s *instancer) send(ev sd.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = ev
	for _, ch := range s.chs {
		ch <- ev
	}
}

// TestEndpointerChurn: instances that come get a breaker named by them,
// those that leave are closed and their breakers removed; a discovery
// error keeps the last instances; a factory that fails or panics leaves
// its instance out and the rest in; Close closes every instance.
func TestEndpointerChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet()
		factory := func(instance string) (endpoint.Endpoint, io.Closer, error) {
			switch instance {
			case "panics":
				panic("factory bug")
			case "fails":
				return nil, nil, errors.New("cannot dial")
			case "nil":
				return nil, nil, nil
			}
			return f.factory(instance)
		}
		src := &instancer{cur: sd.Event{Instances: []string{"a", "b"}}}
		reg := registry.New(registry.Config{})
		defer reg.Close()
		e, err := balancer.NewEndpointer(src, factory, balancer.Config{Name: "svc", Registry: reg, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		check := func(step string, want ...string) {
			t.Helper()
			synctest.Wait()
			var got []string
			for _, in := range mustInstances(t, e) {
				got = append(got, in.Name)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: instances %v, want %v", step, got, want)
			}
			var wantNames []string
			for _, n := range want {
				wantNames = append(wantNames, "svc/"+n)
			}
			if got := reg.Names(); !slices.Equal(got, wantNames) {
				t.Errorf("%s: breakers %v, want %v", step, got, wantNames)
			}
			eps, err := e.Endpoints()
			if err != nil || len(eps) != len(want) {
				t.Errorf("%s: Endpoints() = %d, %v; want %d", step, len(eps), err, len(want))
			}
		}
		check("start", "a", "b")
		src.send(sd.Event{Instances: []string{"b", "c", "panics", "fails", "nil"}})
		check("churn", "b", "c")
		if f.closed["a"] != 1 {
			t.Errorf("a left: closed %d times, want 1", f.closed["a"])
		}
		src.send(sd.Event{Err: errors.New("consul down")})
		check("discovery error", "b", "c")
		e.Close()
		e.Close()
		if f.closed["b"] != 1 || f.closed["c"] != 1 {
			t.Errorf("after Close: closed %v, want b and c once", f.closed)
		}
		if _, err := e.Instances(); !errors.Is(err, balancer.ErrClosed) {
			t.Errorf("Instances after Close: err = %v, want ErrClosed", err)
		}
		if len(reg.Names()) != 0 {
			t.Errorf("breakers after Close: %v, want none", reg.Names())
		}
		b, err := balancer.New(e, balancer.BalancerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Endpoint(); !errors.Is(err, balancer.ErrClosed) {
			t.Errorf("Endpoint after Close: err = %v, want ErrClosed", err)
		}
	})
}

func TestNoInstances(t *testing.T) {
	e, err := balancer.NewEndpointer(sd.FixedInstancer{}, newFleet().factory, balancer.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	b, _ := balancer.New(e, balancer.BalancerConfig{})
	if _, err := b.Endpoint(); !errors.Is(err, lb.ErrNoEndpoints) {
		t.Errorf("Endpoint of no instances: err = %v, want lb.ErrNoEndpoints", err)
	}
}

// TestBadConfig: every bad input is an error naming it, never a panic at
// call time nor a silent default.
func TestBadConfig(t *testing.T) {
	f := newFleet().factory
	src := sd.FixedInstancer{"a"}
	tests := []struct {
		name string
		make func() error
	}{
		{"nil instancer", func() error { _, err := balancer.NewEndpointer(nil, f, balancer.Config{}); return err }},
		{"nil factory", func() error { _, err := balancer.NewEndpointer(src, nil, balancer.Config{}); return err }},
		{"bad breaker", func() error {
			_, err := balancer.NewEndpointer(src, f, balancer.Config{Breaker: middleware.BreakerConfig{FailureThreshold: -1}})
			return err
		}},
		{"bad name", func() error { _, err := balancer.NewEndpointer(src, f, balancer.Config{Name: "a\x00b"}); return err }},
		{"nil endpointer", func() error { _, err := balancer.New(nil, balancer.BalancerConfig{}); return err }},
		{"share NaN", func() error { return balancer.BalancerConfig{MaxEjectedShare: nan}.Validate() }},
		{"share above 1", func() error { return balancer.BalancerConfig{MaxEjectedShare: 1.5}.Validate() }},
		{"share negative", func() error { return balancer.BalancerConfig{MaxEjectedShare: -0.1}.Validate() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.make(); !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Errorf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
	t.Run("nil balancer", func(t *testing.T) {
		defer func() {
			if err, _ := recover().(error); !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Errorf("Retry(nil) panicked with %v, want ErrInvalidConfig", err)
			}
		}()
		balancer.Retry(nil, middleware.RetryConfig{})
	})
}

var nan = math.NaN()

// silentInstancer never sends anything.
type silentInstancer struct{}

func (silentInstancer) Register(chan<- sd.Event)   {}
func (silentInstancer) Deregister(chan<- sd.Event) {}
func (silentInstancer) Stop()                      {}

// TestSilentInstancer: an Instancer that breaks go-kit's contract (no event
// at registration) does not hang NewEndpointer: it returns after a second
// with no instance.
func TestSilentInstancer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		e, err := balancer.NewEndpointer(silentInstancer{}, newFleet().factory, balancer.Config{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if got := time.Since(start); got != time.Second {
			t.Errorf("NewEndpointer took %v, want 1s", got)
		}
		if ins, err := e.Instances(); err != nil || len(ins) != 0 {
			t.Errorf("Instances = %v, %v; want none", ins, err)
		}
	})
}
