package health_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/health"
)

var errSibling = errors.New("sibling failed")

// TestCallerGoneIsNoVerdict sweeps the ways a caller can leave while a check
// runs: the caller never gets a failure made up from its own leaving. With a
// previous result it gets that result; with none, "not checked" (matching
// ErrNotChecked and its cause). The run goes on, and the observer sees only
// the runs' own results.
func TestCallerGoneIsNoVerdict(t *testing.T) {
	ends := []struct {
		name   string
		caller func(t *testing.T) context.Context
		cause  error
	}{
		{name: "Cancel", cause: context.Canceled, caller: func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(time.Second, cancel)
			t.Cleanup(cancel)
			return ctx
		}},
		{name: "CancelCause(custom)", cause: errSibling, caller: func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancelCause(t.Context())
			time.AfterFunc(time.Second, func() { cancel(errSibling) })
			t.Cleanup(func() { cancel(nil) })
			return ctx
		}},
		{name: "WithTimeoutCause(custom)", cause: errSibling, caller: func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeoutCause(t.Context(), time.Second, errSibling)
			t.Cleanup(cancel)
			return ctx
		}},
		{name: "errgroup sibling failure", cause: errSibling, caller: func(t *testing.T) context.Context {
			// errgroup.WithContext: cancelled with the first error as cause.
			ctx, cancel := context.WithCancelCause(t.Context())
			go func() { time.Sleep(time.Second); cancel(errSibling) }()
			t.Cleanup(func() { cancel(nil) })
			return ctx
		}},
		{name: "deadline", cause: context.DeadlineExceeded, caller: func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			t.Cleanup(cancel)
			return ctx
		}},
	}
	for _, tt := range ends {
		for _, history := range []bool{true, false} {
			name := tt.name + "/no previous result"
			if history {
				name = tt.name + "/after a pass"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var runs atomic.Int64
					var mu sync.Mutex
					var observed []health.Result
					c := health.NewChecker(health.Config{Observer: func(s health.Status) {
						mu.Lock()
						observed = append(observed, s.Result)
						mu.Unlock()
					}})
					c.MustRegister(health.Check{Name: "db", Func: func(ctx context.Context) error {
						if runs.Add(1) == 1 && history {
							return nil
						}
						time.Sleep(3 * time.Second) // slower than the caller, within the timeout
						return nil
					}})
					wantRuns := int64(1)
					if history {
						if s, _ := c.Check(t.Context(), "db"); !s.Healthy {
							t.Fatalf("first check: %+v, want healthy", s)
						}
						wantRuns = 2
					}
					s, _ := c.Check(tt.caller(t), "db")
					if history {
						if !s.Healthy || s.Result != health.Pass || s.Error != nil {
							t.Errorf("status = %+v, want the previous pass", s)
						}
					} else if !errors.Is(s.Error, health.ErrNotChecked) || !errors.Is(s.Error, tt.cause) {
						t.Errorf("status error = %v, want it to match ErrNotChecked and %v", s.Error, tt.cause)
					}
					time.Sleep(5 * time.Second)
					synctest.Wait()
					if got := runs.Load(); got != wantRuns {
						t.Errorf("runs = %d, want %d", got, wantRuns)
					}
					mu.Lock()
					defer mu.Unlock()
					for i, r := range observed {
						if r != health.Pass {
							t.Errorf("observed[%d] = %v, want pass (the run's own result)", i, r)
						}
					}
					if int64(len(observed)) != wantRuns {
						t.Errorf("observed %d results, want %d", len(observed), wantRuns)
					}
				})
			})
		}
	}
}

// TestPanickingObserverIsLogged: the observer runs on the run's goroutine,
// the library's own; its panic is logged at Error with the stack, the
// process lives, and the caller still gets the result.
func TestPanickingObserverIsLogged(t *testing.T) {
	tests := []struct {
		name  string
		check health.CheckFunc
		want  health.Result
	}{
		{name: "result", check: func(context.Context) error { return nil }, want: health.Pass},
		{name: "timeout", check: func(ctx context.Context) error { <-ctx.Done(); time.Sleep(time.Second); return nil }, want: health.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf lockedBuffer
				prev := slog.Default()
				slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
				defer slog.SetDefault(prev)
				c := health.NewChecker(health.Config{Observer: func(health.Status) { panic("observer boom") }})
				c.MustRegister(health.Check{Name: "db", Func: tt.check, Timeout: time.Second})
				s, _ := c.Check(t.Context(), "db")
				if s.Result != tt.want {
					t.Errorf("result = %v, want %v", s.Result, tt.want)
				}
				time.Sleep(2 * time.Second)
				synctest.Wait()
				out := buf.String()
				for _, want := range []string{"level=ERROR", "health observer panicked", "observer boom", "stack="} {
					if !strings.Contains(out, want) {
						t.Errorf("log lacks %q: %s", want, out)
					}
				}
			})
		})
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
