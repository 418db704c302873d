package operations

import (
	"context"
	"sync"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// Bounds of [NewEvents].
const (
	// DefaultEvents is how many events an Events keeps when asked for 0.
	DefaultEvents = 256
	// MaxEvents is the most events an Events keeps: a larger n, from a
	// configuration file say, is capped, so that no value allocates more
	// than a few megabytes.
	MaxEvents = 1 << 16
)

// Events is a bounded ring of the most recent middleware events, for
// [Handler] to show. It is a [middleware.Observer]: give it to the layers
// (with middleware.Observers beside a log or metrics observer). Observe
// takes a lock and copies the event; it formats nothing. Safe for
// concurrent use.
type Events struct {
	mu   sync.Mutex
	ring []record
	next int  // where the next event goes
	full bool // the ring has wrapped
}

// record is one event and when it was observed.
type record struct {
	at time.Time
	e  middleware.Event
}

// NewEvents returns an Events keeping the n most recent events: n 0 or
// less keeps [DefaultEvents], and n is capped at [MaxEvents].
func NewEvents(n int) *Events {
	if n <= 0 {
		n = DefaultEvents
	}
	return &Events{ring: make([]record, min(n, MaxEvents))}
}

// Observe records e, dropping the oldest event when the ring is full.
func (ev *Events) Observe(_ context.Context, e middleware.Event) {
	now := time.Now()
	ev.mu.Lock()
	ev.ring[ev.next] = record{at: now, e: e}
	ev.next++
	if ev.next == len(ev.ring) {
		ev.next, ev.full = 0, true
	}
	ev.mu.Unlock()
}

// Len returns how many events the ring holds.
func (ev *Events) Len() int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.full {
		return len(ev.ring)
	}
	return ev.next
}

// recent returns the events held, oldest first.
func (ev *Events) recent() []record {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if !ev.full {
		return append([]record(nil), ev.ring[:ev.next]...)
	}
	out := make([]record, 0, len(ev.ring))
	out = append(out, ev.ring[ev.next:]...)
	return append(out, ev.ring[:ev.next]...)
}
