package registry

import (
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"
)

// ErrOpen is matched (with [errors.Is]) by every [*CircuitOpenError]: the
// error a breaker returns when it rejects a call.
var ErrOpen = errors.New("registry: circuit open")

// CircuitOpenError is the error a breaker returns when it rejects a call
// without making it: the breaker is open, or half-open with every probe slot
// taken. It matches [ErrOpen] and unwraps to gobreaker's ErrOpenState (open)
// or ErrTooManyRequests (half-open).
//
// The value is shared by every call rejected in one open spell (so a
// rejection allocates nothing): treat it as read-only.
type CircuitOpenError struct {
	// Service is the breaker's name.
	Service string
	// State is the state that rejected the call: [StateOpen] or
	// [StateHalfOpen].
	State State
	// OpenedAt is when the breaker last opened.
	OpenedAt time.Time
	// HalfOpenAt is when the breaker half-opens (or half-opened): OpenedAt
	// plus the reset timeout.
	HalfOpenAt time.Time
}

// Error implements error: `registry: circuit "api" is open` or
// `registry: circuit "api" is half-open, every probe slot is taken`.
func (e *CircuitOpenError) Error() string {
	if e.State == StateHalfOpen {
		return fmt.Sprintf("registry: circuit %q is half-open, every probe slot is taken", e.Service)
	}
	return fmt.Sprintf("registry: circuit %q is open", e.Service)
}

// RetryAfter returns the time left until the breaker half-opens, measured
// now: zero once HalfOpenAt has passed, and zero for a half-open rejection
// (a probe slot frees as soon as a probe ends).
func (e *CircuitOpenError) RetryAfter() time.Duration {
	if e.State != StateOpen {
		return 0
	}
	return max(time.Until(e.HalfOpenAt), 0)
}

// Is reports whether target is [ErrOpen].
func (e *CircuitOpenError) Is(target error) bool { return target == ErrOpen }

// Unwrap returns gobreaker.ErrOpenState for an open rejection and
// gobreaker.ErrTooManyRequests for a half-open one.
func (e *CircuitOpenError) Unwrap() error {
	if e.State == StateHalfOpen {
		return gobreaker.ErrTooManyRequests
	}
	return gobreaker.ErrOpenState
}
