package policy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
	"github.com/resiliencekit/resilience/registry"
)

// parse parses a policy file, or fails the test.
func parse(t *testing.T, file string) *policy.Set {
	t.Helper()
	set, err := policy.Parse([]byte(file))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return set
}

// onRegistry is a Reloader's adjust that puts every stack on reg, quiet.
func onRegistry(reg *registry.Registry) func(string, middleware.Stack) middleware.Stack {
	return func(_ string, s middleware.Stack) middleware.Stack {
		s.Registry, s.Observer = reg, quiet
		return s
	}
}

// load runs n goroutines that call ep until stop is closed, and counts the
// calls; check is called with each call's result.
type load struct {
	calls atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(n int, ep func(context.Context, any) (any, error), check func(any, error)) *load {
	l := &load{stop: make(chan struct{})}
	for range n {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := ep(context.Background(), nil)
				l.calls.Add(1)
				check(resp, err)
			}
		})
	}
	return l
}

// waitCalls waits until at least n calls were made.
func (l *load) waitCalls(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.calls.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d calls in 10s, want %d", l.calls.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (l *load) end() int64 {
	close(l.stop)
	l.wg.Wait()
	return l.calls.Load()
}

// watchInto runs Watch on path into r, every 2ms, until the test ends; it
// returns once Watch has made its first call, with a function that returns
// the errors Watch reported.
func watchInto(t *testing.T, r *policy.Reloader, path string) func() []error {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu    sync.Mutex
		errs  []error
		done  = make(chan struct{})
		first = make(chan struct{})
		once  sync.Once
	)
	go func() {
		defer close(done)
		policy.Config{WatchInterval: 2 * time.Millisecond}.Watch(ctx, path, func(set *policy.Set, err error) {
			defer once.Do(func() { close(first) })
			if err == nil {
				err = r.Update(set)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-first
	return func() []error {
		mu.Lock()
		defer mu.Unlock()
		return append([]error(nil), errs...)
	}
}

// waitSet waits until r runs a Set other than old.
func waitSet(t *testing.T, r *policy.Reloader, old *policy.Set) *policy.Set {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.Set() == old {
		if time.Now().After(deadline) {
			t.Fatal("the new file was not swapped in within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	return r.Set()
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	// Write and rename, as a deployment does: a reader never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderLoad: with goroutines calling the Reloader's endpoint all
// the time, a file change that raises the breaker's failure_threshold swaps
// in without losing a call (each returns the endpoint's own error or the
// breaker's rejection, none an error of the reload) and without losing the
// breaker's state (a failure streak is kept, an open breaker stays open).
func TestReloadUnderLoad(t *testing.T) {
	const file = "api:\n  circuit_breaker: {failure_threshold: %d, reset_timeout: 1h}\n"
	t.Run("failure streak kept", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "policies.yaml")
		writeFile(t, path, fmt.Sprintf(file, 100000))
		set, err := policy.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		reg := registry.New(registry.Config{})
		r := policy.NewReloader(set, onRegistry(reg))
		ep, err := r.Endpoint("api", failing)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := reg.Get("api")
		var wrong atomic.Int64
		var firstWrong atomic.Value
		l := startLoad(8, ep, func(resp any, err error) {
			if !errors.Is(err, errDown) || resp != nil {
				if wrong.Add(1) == 1 {
					firstWrong.Store(fmt.Sprintf("%v, %v", resp, err))
				}
			}
		})
		reported := watchInto(t, r, path)
		base := r.Set() // Watch's first look: the same contents
		l.waitCalls(t, 500)
		writeFile(t, path, fmt.Sprintf(file, 200000))
		waitSet(t, r, base)
		l.waitCalls(t, l.calls.Load()+500) // calls on the new stack
		calls := l.end()
		if n := wrong.Load(); n > 0 {
			t.Errorf("%d calls returned something other than the endpoint's error, the first %v", n, firstWrong.Load())
		}
		if errs := reported(); len(errs) > 0 {
			t.Errorf("Watch reported %v", errs)
		}
		if b2, _ := reg.Get("api"); b2 != b {
			t.Errorf("the breaker was replaced")
		}
		snap := b.Snapshot()
		if snap.State != registry.StateClosed || snap.Settings.FailureThreshold != 200000 {
			t.Errorf("breaker = %v with threshold %d, want closed with 200000", snap.State, snap.Settings.FailureThreshold)
		}
		if got := int64(snap.ConsecutiveFailures); got != calls {
			t.Errorf("failure streak = %d, want %d: every failure of the %d calls, before and after the update", got, calls, calls)
		}
	})
	t.Run("open breaker stays open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "policies.yaml")
		writeFile(t, path, fmt.Sprintf(file, 3))
		set, err := policy.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		reg := registry.New(registry.Config{})
		r := policy.NewReloader(set, onRegistry(reg))
		ep, err := r.Endpoint("api", failing)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			ep(context.Background(), nil)
		}
		b, _ := reg.Get("api")
		opened := b.Snapshot().OpenedAt
		if b.State() != registry.StateOpen {
			t.Fatalf("state = %v, want open after 3 failures", b.State())
		}
		var wrong atomic.Int64
		l := startLoad(8, ep, func(resp any, err error) {
			if !errors.Is(err, middleware.ErrCircuitOpen) {
				wrong.Add(1)
			}
		})
		reported := watchInto(t, r, path)
		base := r.Set()
		l.waitCalls(t, 500)
		writeFile(t, path, fmt.Sprintf(file, 10))
		waitSet(t, r, base)
		l.waitCalls(t, l.calls.Load()+500)
		l.end()
		if n := wrong.Load(); n > 0 {
			t.Errorf("%d calls were not rejected by the open breaker", n)
		}
		if errs := reported(); len(errs) > 0 {
			t.Errorf("Watch reported %v", errs)
		}
		snap := b.Snapshot()
		if snap.State != registry.StateOpen || !snap.OpenedAt.Equal(opened) || snap.Settings.FailureThreshold != 10 {
			t.Errorf("breaker = %v opened at %v with threshold %d, want open at %v with 10", snap.State, snap.OpenedAt, snap.Settings.FailureThreshold, opened)
		}
	})
}

// TestReloadInvalidFile: an invalid new file leaves the old policies
// running, and Watch and Update report every problem.
func TestReloadInvalidFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "policies.yaml")
		writeFile(t, path, "api:\n  circuit_breaker: {failure_threshold: 3}\n  fallback: {value: [1.5]}\n")
		set, err := policy.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		reg := registry.New(registry.Config{})
		r := policy.NewReloader(set, onRegistry(reg))
		ep, err := policy.EndpointFor[[]float32](r, "api", failing)
		if err != nil {
			t.Fatal(err)
		}
		broken := "api:\n  circuit_breaker: {failure_threshold: -1, reset_timeout: soon}\n  fallback: {value: [1.5]}\n  retri: {}\n"
		reported := watchInto(t, r, path)
		set = r.Set() // Watch's first look: the same contents
		writeFile(t, path, broken)
		time.Sleep(10 * 2 * time.Millisecond) // ten looks: reported once
		synctest.Wait()
		errs := reported()
		if len(errs) != 1 {
			t.Fatalf("Watch reported %d errors, want 1: %v", len(errs), errs)
		}
		for _, p := range []string{"circuit_breaker.failure_threshold", "circuit_breaker.reset_timeout", "retri"} {
			if !hasPath(errs[0], p) {
				t.Errorf("Watch reported %v, want %s named", errs[0], p)
			}
		}
		if r.Set() != set {
			t.Errorf("the Reloader's Set changed")
		}
		resp, err := ep(context.Background(), nil)
		if v, ok := resp.([]float32); err != nil || !ok || len(v) != 1 || v[0] != 1.5 {
			t.Errorf("call = %#v, %v, want the old policy's fallback", resp, err)
		}
		if b, _ := reg.Get("api"); b.Settings().FailureThreshold != 3 {
			t.Errorf("threshold = %d, want the old 3", b.Settings().FailureThreshold)
		}

		// A file that parses but does not fit the endpoint: Update refuses it.
		misfit := parse(t, "api:\n  circuit_breaker: {failure_threshold: 7}\n  fallback: {value: none}\n")
		err = r.Update(misfit)
		if !errors.Is(err, middleware.ErrInvalidConfig) || !hasPath(err, "fallback.value") {
			t.Errorf("Update = %v, want ErrInvalidConfig naming fallback.value", err)
		}
		if b, _ := reg.Get("api"); b.Settings().FailureThreshold != 3 || r.Set() != set {
			t.Errorf("after a refused Update: threshold %d, set changed %t; want 3, false", b.Settings().FailureThreshold, r.Set() != set)
		}
		if err := r.Update(nil); !errors.Is(err, middleware.ErrInvalidConfig) {
			t.Errorf("Update(nil) = %v, want ErrInvalidConfig", err)
		}
	})
}

// TestReloadAllOrNothing: an Update that fails for one endpoint changes no
// endpoint and no breaker.
func TestReloadAllOrNothing(t *testing.T) {
	v1 := parse(t, `
a:
  circuit_breaker: {failure_threshold: 3}
  fallback: {value: a1}
b:
  circuit_breaker: {failure_threshold: 4}
  fallback: {value: b1}
c:
  fallback: {value: c1}
`)
	reg := registry.New(registry.Config{})
	r := policy.NewReloader(v1, onRegistry(reg))
	var eps []func(context.Context, any) (any, error)
	for _, name := range []string{"a", "b", "c"} {
		ep, err := r.Endpoint(name, failing)
		if name == "b" {
			ep, err = policy.EndpointFor[string](r, name, failing)
		}
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	check := func(t *testing.T, want ...string) {
		t.Helper()
		for i, ep := range eps {
			if resp, _ := ep(context.Background(), nil); resp != want[i] {
				t.Errorf("endpoint %d: resp = %v, want %s", i, resp, want[i])
			}
		}
	}
	threshold := func(name string) int {
		b, _ := reg.Get(name)
		return b.Settings().FailureThreshold
	}
	tests := []struct {
		name  string
		file  string
		paths []string
		is    error
	}{
		{"a stack missing", "a:\n  circuit_breaker: {failure_threshold: 9}\n  fallback: {value: a2}\nb:\n  circuit_breaker: {failure_threshold: 9}\n  fallback: {value: b2}\n", nil, policy.ErrUnknownStack},
		{"two stacks, one breaker, two settings", "a:\n  circuit_breaker: {name: same, failure_threshold: 9}\nb:\n  circuit_breaker: {name: same, failure_threshold: 8}\nc: {}\n", nil, middleware.ErrInvalidConfig},
		{"a value that does not fit one endpoint", "a:\n  circuit_breaker: {failure_threshold: 9}\nb:\n  circuit_breaker: {failure_threshold: 9}\n  fallback: {value: [1]}\nc: {}\n", []string{"fallback.value"}, middleware.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := policy.Parse([]byte(tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = r.Update(set)
			if !errors.Is(err, tt.is) {
				t.Fatalf("Update = %v, want %v", err, tt.is)
			}
			for _, p := range tt.paths {
				if !hasPath(err, p) {
					t.Errorf("Update = %v, want %s named", err, p)
				}
			}
			if r.Set() != v1 {
				t.Errorf("the Set changed")
			}
			if a, b := threshold("a"), threshold("b"); a != 3 || b != 4 {
				t.Errorf("thresholds = %d, %d, want the old 3, 4", a, b)
			}
			check(t, "a1", "b1", "c1")
		})
	}
	t.Run("a valid set swaps in everywhere", func(t *testing.T) {
		v2 := parse(t, "a:\n  circuit_breaker: {failure_threshold: 5}\n  fallback: {value: a2}\nb:\n  circuit_breaker: {failure_threshold: 6}\n  fallback: {value: b2}\nc:\n  fallback: {value: c2}\n")
		if err := r.Update(v2); err != nil {
			t.Fatal(err)
		}
		if a, b := threshold("a"), threshold("b"); a != 5 || b != 6 {
			t.Errorf("thresholds = %d, %d, want 5, 6", a, b)
		}
		check(t, "a2", "b2", "c2")
		if r.Set() != v2 {
			t.Errorf("Set() is not the new set")
		}
	})
}

// TestReloadSharedBreaker: two stacks may name one breaker with the same
// settings (a default and its value are the same); Update changes it once.
func TestReloadSharedBreaker(t *testing.T) {
	reg := registry.New(registry.Config{})
	r := policy.NewReloader(parse(t, "a:\n  circuit_breaker: {name: same, failure_threshold: 5}\nb:\n  circuit_breaker: {name: same}\n"), onRegistry(reg))
	for _, name := range []string{"a", "b"} {
		if _, err := r.Endpoint(name, failing); err != nil {
			t.Fatalf("Endpoint(%s): %v", name, err)
		}
	}
	if err := r.Update(parse(t, "a:\n  circuit_breaker: {name: same, failure_threshold: 7}\nb:\n  circuit_breaker: {name: same, failure_threshold: 7}\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := reg.Get("same"); b.Settings().FailureThreshold != 7 {
		t.Errorf("threshold = %d, want 7", b.Settings().FailureThreshold)
	}
	// A new endpoint on a breaker the registry holds with other settings is
	// an error, as with Stack.Apply.
	other := policy.NewReloader(parse(t, "c:\n  circuit_breaker: {name: same, failure_threshold: 2}\n"), onRegistry(reg))
	if _, err := other.Endpoint("c", failing); !errors.Is(err, middleware.ErrInvalidConfig) || !errors.Is(err, registry.ErrConflict) {
		t.Errorf("Endpoint = %v, want ErrInvalidConfig and registry.ErrConflict", err)
	}
	if _, err := other.Endpoint("nope", failing); !errors.Is(err, policy.ErrUnknownStack) {
		t.Errorf("Endpoint(nope) = %v, want ErrUnknownStack", err)
	}
	if _, err := other.Endpoint("c", nil); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Endpoint(c, nil) = %v, want ErrInvalidConfig", err)
	}
	if _, err := policy.NewReloader(nil, nil).Endpoint("c", failing); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Endpoint on a Reloader without a Set = %v, want ErrInvalidConfig", err)
	}
}
