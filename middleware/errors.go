package middleware

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/registry"
)

// ErrInvalidConfig is matched (with [errors.Is]) by every configuration
// error: a [*ConfigError] from a config's Validate method, and the panic value
// of a constructor given a bad configuration.
var ErrInvalidConfig = errors.New("middleware: invalid config")

// ErrTimeout is returned, wrapped, when a [Timeout] layer's own deadline ends
// an attempt. It matches both ErrTimeout and [context.DeadlineExceeded]:
//
//	errors.Is(err, middleware.ErrTimeout)       // true
//	errors.Is(err, context.DeadlineExceeded)    // true
//
// When the caller's own deadline or cancellation comes first, the caller's
// error is returned instead and ErrTimeout does not match.
var ErrTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string { return "middleware: timeout" }

// Is makes ErrTimeout match context.DeadlineExceeded as well.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Timeout reports true, as net.Error's Timeout does.
func (timeoutError) Timeout() bool { return true }

// Temporary reports true: a timed-out call may succeed if made again.
func (timeoutError) Temporary() bool { return true }

// errTooManyAbandoned is returned at once, without calling the endpoint, by a
// [TimeoutWith] layer in abandon mode when the number of abandoned calls still
// running has reached [TimeoutConfig.MaxAbandoned]: the abandoned workers are
// a bulkhead, and it matches [ErrBulkheadFull].
var errTooManyAbandoned = fmt.Errorf("%w: too many abandoned calls in flight (timeout)", ErrBulkheadFull)

// ErrRateLimited is returned when a rate limit rejects a call. The retry layer
// never retries it.
var ErrRateLimited = errors.New("middleware: rate limited")

// ErrBulkheadFull is returned when a bulkhead has no free slot. The retry
// layer never retries it.
var ErrBulkheadFull = errors.New("middleware: bulkhead full")

// ErrCircuitOpen is matched by the error a circuit breaker returns when it
// rejects a call (a [*CircuitOpenError]). The retry layer never retries it.
// It is [registry.ErrOpen].
var ErrCircuitOpen = registry.ErrOpen

// retryAfterer is implemented by errors that say how long to wait before
// calling again: a [*CircuitOpenError] (time until half-open), a
// [*RateLimitError] (time until a token) and an [*HTTPError] decoded from a
// 429 or 503 response with a Retry-After header. [EncodeHTTPError] writes
// the hint as a Retry-After header. When [Retry] retries an error with a
// hint, it waits at least that long before the next attempt, up to its
// MaxDelay; a hint longer than MaxDelay stops retrying (a first attempt then
// returns its own error unchanged). Retry never retries a *CircuitOpenError
// or a *RateLimitError, whatever their hint: they are the toolkit's own
// rejections, left to the caller (or an outer layer) to wait out.
type retryAfterer interface {
	RetryAfter() time.Duration
}

// retryAfter returns the hint of the first error in err's chain that
// implements retryAfterer.
func retryAfter(err error) (time.Duration, bool) {
	// A walk of the chain by hand: errors.As would allocate its target on
	// the retry path.
	for err != nil {
		if ra, ok := err.(retryAfterer); ok {
			return ra.RetryAfter(), true
		}
		switch x := err.(type) {
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				if d, ok := retryAfter(e); ok {
					return d, true
				}
			}
			return 0, false
		default:
			return 0, false
		}
	}
	return 0, false
}

// rejection reports whether err is one of the toolkit's own load-shedding
// rejections, which are never retried.
func rejection(err error) bool {
	return errors.Is(err, ErrCircuitOpen) || errors.Is(err, ErrRateLimited) ||
		errors.Is(err, ErrBulkheadFull) || errors.Is(err, ErrLimited) || errors.Is(err, ErrThrottled) ||
		errors.Is(err, ErrKeyRejected)
}

// RetryError is returned by [Retry] when it made more than one attempt and the
// last one failed, or when retrying stopped early. It unwraps to the last
// attempt's error, and to Cause when the context or a retry budget ended
// retrying early, so both match with [errors.Is].
type RetryError struct {
	// Attempts is the number of times the endpoint was called.
	Attempts int
	// Err is the last attempt's error.
	Err error
	// Cause is why retrying stopped before the attempts ran out: the
	// context's error (context.Canceled or context.DeadlineExceeded) when it
	// ended during a wait, or context.DeadlineExceeded when the next wait
	// would have passed the context's deadline, or [ErrRetryBudgetExhausted]
	// when the layer's [RetryBudget] refused the next retry. Nil when the
	// attempts ran out or the last error was not retryable.
	Cause error
}

// Error implements error.
func (e *RetryError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("middleware: retry stopped after %d attempts (%v): %v", e.Attempts, e.Cause, e.Err)
	}
	return fmt.Sprintf("middleware: retry gave up after %d attempts: %v", e.Attempts, e.Err)
}

// Unwrap returns the last error and, when set, the cause.
func (e *RetryError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// PanicError is a panic turned into an error by [Recover]. It unwraps to the
// panic value when that value is an error.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the stack of the goroutine that panicked, as debug.Stack
	// formats it.
	Stack []byte
}

func newPanicError(v any) *PanicError {
	if pe, ok := v.(*PanicError); ok {
		return pe
	}
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// Error implements error. It does not include the stack.
func (e *PanicError) Error() string { return fmt.Sprintf("middleware: panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error, and nil otherwise.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// ConfigError describes one problem in a configuration. It matches
// [ErrInvalidConfig]. Validate methods join every problem they find with
// [errors.Join], so one call reports them all.
type ConfigError struct {
	// Path names the field as the declarative file format spells it, with
	// its layer: "retry.max_attempts".
	Path string
	// Field names the Go field: "RetryConfig.MaxAttempts".
	Field string
	// Value is the offending value.
	Value any
	// Reason says what is wrong: "must be at least 1".
	Reason string
}

// Error implements error:
// "middleware: invalid config: retry.max_attempts: -1, must be at least 1 (RetryConfig.MaxAttempts)".
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("middleware: invalid config: ")
	b.WriteString(e.Path)
	b.WriteString(": ")
	if e.Value != nil {
		fmt.Fprintf(&b, "%v, ", e.Value)
	}
	b.WriteString(e.Reason)
	if e.Field != "" {
		b.WriteString(" (")
		b.WriteString(e.Field)
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// problems collects configuration errors for one config struct.
type problems struct {
	layer  string // "retry"
	goType string // "RetryConfig"
	errs   []error
}

func (p *problems) add(path, field string, value any, reason string) {
	p.errs = append(p.errs, &ConfigError{
		Path:   p.layer + "." + path,
		Field:  p.goType + "." + field,
		Value:  value,
		Reason: reason,
	})
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// mustValid panics with err when it is not nil: constructors reject a bad
// configuration at construction, never at request time.
func mustValid(err error) {
	if err != nil {
		panic(err)
	}
}

// mustEndpoint panics, when a middleware is applied to a nil endpoint, with
// an error matching [ErrInvalidConfig] that names the layer: a nil endpoint
// is refused at wrap time, never found at request time. Every middleware of
// the package calls it first thing.
func mustEndpoint(layer string, next endpoint.Endpoint) {
	if next == nil {
		panic(fmt.Errorf("%w: %s: nil endpoint", ErrInvalidConfig, layer))
	}
}

// validateObserver adds a problem when o holds a nil [ObserverFunc], which
// would panic at the first event: a nil Observer interface is the default,
// a nil function inside one is a mistake.
func validateObserver(p *problems, o Observer) {
	if f, ok := o.(ObserverFunc); ok && f == nil {
		p.add("observer", "Observer", nil, "is a nil ObserverFunc (leave Observer nil for the default)")
	}
}
