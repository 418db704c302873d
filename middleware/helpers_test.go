package middleware_test

import (
	"context"
	"sync"

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
