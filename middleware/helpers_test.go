package middleware_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/resiliencekit/resilience/middleware"
)

// recorder is an Observer that keeps every event it is given.
type recorder struct {
	mu     sync.Mutex
	events []middleware.Event
}

func (r *recorder) Observe(_ context.Context, e middleware.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Events() []middleware.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]middleware.Event(nil), r.events...)
}

// all returns a copy of the events so far (the name some tests use).
func (r *recorder) all() []middleware.Event { return r.Events() }

// The event recorders of the pattern tests are one type.
type (
	timeoutEvents = recorder
	retryEventLog = recorder
	eventLog      = recorder
)

// checkConfigProblems checks what every config table asserts: err (from
// Validate) reports exactly wantPaths, each matching ErrInvalidConfig, and
// construct panics at construction with that same error; with no wantPaths,
// err is nil.
func checkConfigProblems(t *testing.T, err error, wantPaths []string, construct func()) {
	t.Helper()
	if len(wantPaths) == 0 {
		if err != nil {
			t.Errorf("Validate() = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
	}
	if got := configPaths(err); !reflect.DeepEqual(got, wantPaths) {
		t.Errorf("problem paths = %q, want %q", got, wantPaths)
	}
	v := func() (v any) {
		defer func() { v = recover() }()
		construct()
		return nil
	}()
	perr, ok := v.(error)
	if !ok || !errors.Is(perr, middleware.ErrInvalidConfig) {
		t.Fatalf("constructor panicked with %v (%T), want an error matching ErrInvalidConfig", v, v)
	}
	if got, want := perr.Error(), err.Error(); got != want {
		t.Errorf("panic error = %q, want Validate's %q", got, want)
	}
}
