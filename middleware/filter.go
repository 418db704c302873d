package middleware

import "errors"

// filter is the one implementation of "which errors count", shared by
// Retry (RetryOn, RetryIf), CircuitBreaker (FailOn, FailIf) and Fallback
// (FallbackOn, FallbackIf): the guide's pair of a list of errors, each
// matched with [errors.Is], and a predicate. It is never modified after
// construction.
type filter struct {
	on   []error
	onIf func(error) bool
}

// newFilter returns the filter of on and onIf, keeping a copy of on.
func newFilter(on []error, onIf func(error) bool) filter {
	return filter{on: append([]error(nil), on...), onIf: onIf}
}

// all reports whether the filter is empty: every error counts.
func (f filter) all() bool { return len(f.on) == 0 && f.onIf == nil }

// matches reports whether err counts: it matches an error of on, or onIf
// reports true for it; with neither set, every error counts.
func (f filter) matches(err error) bool {
	if f.all() {
		return true
	}
	for _, target := range f.on {
		if errors.Is(err, target) {
			return true
		}
	}
	return f.onIf != nil && f.onIf(err)
}
