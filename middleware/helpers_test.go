package middleware_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"

	"github.com/resiliencekit/resilience/middleware"
)

// recorder is an Observer that keeps every event it is given.
type recorder = endpointtest.Recorder

// The event recorders of the pattern tests are one type.
type (
	timeoutEvents = recorder
	retryEventLog = recorder
	eventLog      = recorder
)

// configPaths returns the Path of every *ConfigError joined in err, in order.
func configPaths(err error) []string {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var paths []string
	for _, e := range errs {
		if ce, ok := errors.AsType[*middleware.ConfigError](e); ok {
			paths = append(paths, ce.Path)
		}
	}
	return paths
}

// checkValidate checks what every config table asserts of Validate's err:
// nil when wantPaths is empty, otherwise problems matching ErrInvalidConfig
// whose paths are exactly wantPaths, in order. It reports whether err is such
// a list of problems.
func checkValidate(t *testing.T, err error, wantPaths []string) bool {
	t.Helper()
	if len(wantPaths) == 0 {
		if err != nil {
			t.Errorf("Validate() = %v, want nil", err)
		}
		return false
	}
	if !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
	}
	if got := configPaths(err); !reflect.DeepEqual(got, wantPaths) {
		t.Errorf("problem paths = %q, want %q", got, wantPaths)
	}
	return true
}

// checkConfigProblems is checkValidate, and checks that construct panics at
// construction with Validate's error.
func checkConfigProblems(t *testing.T, err error, wantPaths []string, construct func()) {
	t.Helper()
	if !checkValidate(t, err, wantPaths) {
		return
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

// recoverWith is Recover reporting to obs under name: a Stack with only its
// Recover layer (the exported way to give Recover an Observer).
func recoverWith(name string, obs middleware.Observer) endpoint.Middleware {
	mw, err := middleware.Stack{Name: name, Recover: true, Observer: obs}.Build()
	if err != nil {
		panic(err)
	}
	return mw
}

// givesUp reports whether e is Retry giving up: an EventRetry whose Err is a
// *RetryError.
func givesUp(e middleware.Event) bool {
	_, ok := errors.AsType[*middleware.RetryError](e.Err)
	return e.Kind == middleware.EventRetry && ok
}

// hintError is a failure carrying a Retry-After hint (its RetryAfter method),
// as an HTTP 503 with a Retry-After header decodes to.
type hintError struct{ after time.Duration }

func (e *hintError) Error() string             { return "http 503 Service Unavailable" }
func (e *hintError) RetryAfter() time.Duration { return e.after }
