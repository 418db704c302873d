package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
)

// watchCall is one call of a Watch's fn.
type watchCall struct {
	set *policy.Set
	err error
}

// recorder records the calls of a Watch's fn.
type recorder struct {
	mu    sync.Mutex
	calls []watchCall
}

func (r *recorder) fn(set *policy.Set, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, watchCall{set, err})
}

func (r *recorder) got() []watchCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]watchCall(nil), r.calls...)
}

// TestWatch: fn is called at the start and at each change of the contents,
// not on a touch; a broken file is reported once and Watch goes on; Watch
// ends with ctx.
func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		path := filepath.Join(t.TempDir(), "policies.yaml")
		write := func(s string) {
			t.Helper()
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		v1 := "api:\n  retry: {max_attempts: 2}\n"
		write(v1)
		ctx, cancel := context.WithCancel(t.Context())
		var rec recorder
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- policy.Config{WatchInterval: interval}.Watch(ctx, path, rec.fn) }()
		synctest.Wait()
		step := func(name string, change func(), want int) []watchCall {
			t.Helper()
			change()
			time.Sleep(interval)
			synctest.Wait()
			got := rec.got()
			if len(got) != want {
				t.Fatalf("%s: fn called %d times, want %d: %v", name, len(got), want, got)
			}
			return got
		}
		got := step("start", func() {}, 1)
		if got[0].err != nil || mustStack(t, got[0].set, "api").Retry.MaxAttempts != 2 {
			t.Fatalf("first call = %v, want the file's set", got[0])
		}
		step("touch", func() {
			now := time.Now().Add(time.Hour)
			if err := os.Chtimes(path, now, now); err != nil {
				t.Fatal(err)
			}
		}, 1)
		step("same contents rewritten", func() { write(v1) }, 1)
		got = step("change", func() { write("api:\n  retry: {max_attempts: 4}\n") }, 2)
		if got[1].err != nil || mustStack(t, got[1].set, "api").Retry.MaxAttempts != 4 {
			t.Fatalf("call after the change = %v, want max_attempts 4", got[1])
		}
		got = step("broken", func() { write("api:\n  retry: {max_attempts: -1}\n  retri: {}\n") }, 3)
		if err := got[2].err; got[2].set != nil || !errors.Is(err, middleware.ErrInvalidConfig) || !hasPath(err, "retry.max_attempts") || !hasPath(err, "retri") {
			t.Fatalf("call for the broken file = %v, want every problem", got[2])
		}
		step("still broken", func() { time.Sleep(5 * interval) }, 3)
		got = step("fixed", func() { write(v1) }, 4)
		if got[3].err != nil || mustStack(t, got[3].set, "api").Retry.MaxAttempts != 2 {
			t.Fatalf("call after the fix = %v, want max_attempts 2", got[3])
		}
		got = step("removed", func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, 5)
		if !errors.Is(got[4].err, os.ErrNotExist) {
			t.Fatalf("call for the removed file = %v, want os.ErrNotExist", got[4])
		}
		step("still removed", func() { time.Sleep(3 * interval) }, 5)
		step("back", func() { write(v1) }, 6)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch = %v, want context.Canceled", err)
		}
		// 10 steps of one interval each, and 8 more intervals of waiting.
		if got, want := time.Since(start), 18*interval; got != want {
			t.Errorf("elapsed = %v, want %v", got, want)
		}
	})
}

func TestWatchArguments(t *testing.T) {
	ctx := t.Context()
	fn := func(*policy.Set, error) { t.Error("fn called") }
	tests := []struct {
		name string
		call func() error
		path string
	}{
		{"nil fn", func() error { return policy.Watch(ctx, "p.yaml", nil) }, "policy.watch"},
		{"negative interval", func() error { return policy.Config{WatchInterval: -1}.Watch(ctx, "p.yaml", fn) }, "policy.watch_interval"},
		{"negative MaxBytes", func() error { return policy.Config{MaxBytes: -1}.Watch(ctx, "p.yaml", fn) }, "policy.max_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, middleware.ErrInvalidConfig) || !hasPath(err, tt.path) {
				t.Errorf("Watch = %v, want ErrInvalidConfig naming %s", err, tt.path)
			}
		})
	}
}
