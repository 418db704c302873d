package health

import (
	"errors"
	"strings"
)

// Setup errors. [Checker.Register] wraps one of them in an error that names
// the check, so errors.Is matches and the message says which check.
var (
	// ErrEmptyName is returned by Register for a check named "".
	ErrEmptyName = errors.New("health: empty check name")
	// ErrNilCheck is returned by Register for a nil CheckFunc.
	ErrNilCheck = errors.New("health: nil check func")
	// ErrDuplicateCheck is returned by Register for a name already registered.
	ErrDuplicateCheck = errors.New("health: check already registered")
	// ErrStarted is returned by Start when background checking is already
	// running.
	ErrStarted = errors.New("health: already started")
)

// ErrUnknownCheck is returned, wrapped with the name, by [Checker.Check] for
// a name that was never registered, and is the error of the [Status] it
// reports for that name.
var ErrUnknownCheck = errors.New("health: unknown check")

// ErrCheckFailed is the error a boolean check made with [Bool] or [BoolCtx]
// reports when its function returns false.
var ErrCheckFailed = errors.New("health: check failed")

// ErrDegraded is matched by every error made with [Degraded]: a check that
// returns such an error is reported as [Warn], not [Fail].
var ErrDegraded = errors.New("health: degraded")

// ErrNotChecked is the error of a cached [Status] (see [Checker.Start]) for a
// check whose first run has not finished yet.
var ErrNotChecked = errors.New("health: not checked yet")

// ErrStale is the error, wrapped with the age, of a cached [Status] older
// than the checker's max age (see [Config].MaxAge).
var ErrStale = errors.New("health: result is stale")

// ErrUnavailable is matched by every [*UnavailableError].
var ErrUnavailable = errors.New("health: required services unavailable")

// Degraded returns an error that marks a check as degraded rather than
// failed: the check is reported as [Warn], stays healthy, and does not fail
// readiness. The result matches both [ErrDegraded] and err (which may be nil).
//
// A circuit breaker in its half-open state is the typical case:
//
//	if state == halfOpen {
//		return health.Degraded(fmt.Errorf("breaker %s is half-open", name))
//	}
func Degraded(err error) error { return &degradedError{err: err} }

type degradedError struct{ err error }

func (e *degradedError) Error() string {
	if e.err == nil {
		return ErrDegraded.Error()
	}
	return ErrDegraded.Error() + ": " + e.err.Error()
}

func (e *degradedError) Is(target error) bool { return target == ErrDegraded }
func (e *degradedError) Unwrap() error        { return e.err }

// UnavailableError is returned by [Checker.Require] when a required check is
// not healthy. It matches [ErrUnavailable], and through Unwrap each failing
// check's own error (so errors.Is(err, middleware.ErrTimeout) matches a
// check that timed out). Its message
// lists the names only: check errors may hold secrets, so log them from
// Statuses deliberately if at all.
type UnavailableError struct {
	// Names lists every unhealthy required check, in the order required.
	Names []string
	// Statuses holds the status of each check in Names, in the same order.
	Statuses []Status
}

// Error implements error: "health: required services unavailable: a, b".
func (e *UnavailableError) Error() string {
	return ErrUnavailable.Error() + ": " + strings.Join(e.Names, ", ")
}

// Is reports whether target is [ErrUnavailable].
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the error of each unhealthy check.
func (e *UnavailableError) Unwrap() []error {
	errs := make([]error, 0, len(e.Statuses))
	for _, s := range e.Statuses {
		if s.Error != nil {
			errs = append(errs, s.Error)
		}
	}
	return errs
}
