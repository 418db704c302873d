package endpointtest

import (
	"context"
	"sync"

	"github.com/resiliencekit/resilience/middleware"
)

// Recorder is a [middleware.Observer] that keeps every event it is given,
// for tests that assert what a layer reported: give it as a layer's or a
// Stack's Observer, then read [Recorder.Events]. The zero value is ready to
// use; a Recorder is safe for concurrent use and must not be copied after
// first use.
type Recorder struct {
	mu     sync.Mutex
	events []middleware.Event
}

// Observe keeps e.
func (r *Recorder) Observe(_ context.Context, e middleware.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns a copy of the events kept so far, in the order they came.
func (r *Recorder) Events() []middleware.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]middleware.Event(nil), r.events...)
}
