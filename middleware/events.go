package middleware

import (
	"context"
	"log/slog"
	"time"
)

// EventKind says what a layer did.
type EventKind uint8

// The events layers report. Each one is reported where it happens, once.
const (
	// EventRetry: an attempt failed and another will follow after Delay.
	// Attempt is the number of the attempt that failed (1 for the first).
	EventRetry EventKind = iota + 1
	// EventRetryExhausted: the last allowed attempt failed, or retrying
	// stopped early (Err is the last error, Attempt the number made).
	EventRetryExhausted
	// EventTimeout: a timeout layer's own deadline ended an attempt.
	EventTimeout
	// EventTimeoutRejected: an abandon-mode timeout rejected a call because
	// too many abandoned calls are still running.
	EventTimeoutRejected
	// EventFallback: a fallback served the call in place of the failed
	// endpoint; Err is the error it replaced.
	EventFallback
	// EventPanic: the endpoint panicked; Err is a [*PanicError].
	EventPanic
	// EventStateChange: a circuit breaker moved From one state To another.
	EventStateChange
	// EventRejected: a layer rejected a call without calling the endpoint.
	EventRejected
	// EventChaos: a [Chaos] layer injected a fault: latency (Delay is the
	// injected delay, Err nil), an error (Err is the injected error) or a
	// panic (Err is a [*PanicError] holding the panic value).
	EventChaos
)

var eventNames = [...]string{
	EventRetry:           "retry",
	EventRetryExhausted:  "retry_exhausted",
	EventTimeout:         "timeout",
	EventTimeoutRejected: "timeout_rejected",
	EventFallback:        "fallback",
	EventPanic:           "panic",
	EventStateChange:     "state_change",
	EventRejected:        "rejected",
	EventChaos:           "chaos",
}

// String returns the event's name as logged under the "event" key: "retry",
// "retry_exhausted", "timeout", "timeout_rejected", "fallback", "panic",
// "state_change", "rejected", "chaos".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is what a layer reports to its [Observer]. Fields that do not apply
// to a kind are zero.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Layer is the pattern that reported it: "retry", "timeout", "fallback",
	// "circuit_breaker", ...
	Layer string
	// Name is the layer's configured name (a breaker's service name), or
	// empty.
	Name string
	// Attempt is the attempt number, counting from 1, for retry events.
	Attempt int
	// Delay is the wait before the next attempt (retry) or the timeout that
	// fired (timeout).
	Delay time.Duration
	// Err is the error that caused the event, if any.
	Err error
	// From and To are the states of a state change.
	From, To string
}

// Observer receives the events of the layers it is given to. Observe is
// called synchronously on the caller's goroutine, never while a layer holds a
// lock, so it must be quick and safe for concurrent use.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to [Observer].
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f(ctx, e).
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Observers returns an [Observer] that passes each event to every non-nil
// observer given, in order.
func Observers(obs ...Observer) Observer {
	list := make(multiObserver, 0, len(obs))
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	if len(list) == 1 {
		return list[0]
	}
	return list
}

type multiObserver []Observer

func (m multiObserver) Observe(ctx context.Context, e Event) {
	for _, o := range m {
		o.Observe(ctx, e)
	}
}

// LogObserver returns an [Observer] that logs each event with l (or
// [slog.Default] when l is nil), with the structured keys event, layer, name,
// attempt, delay, error, from and to (each only where it applies). Levels:
// retries, timeouts, fallbacks, rejections and a breaker opening are Warn; a
// retry that gives up and a panic are Error; other state changes are Info.
func LogObserver(l *slog.Logger) Observer { return logObserver{l} }

type logObserver struct{ l *slog.Logger }

func (o logObserver) Observe(ctx context.Context, e Event) {
	l := o.l
	if l == nil {
		l = slog.Default()
	}
	level := slog.LevelWarn
	switch e.Kind {
	case EventRetryExhausted, EventPanic:
		level = slog.LevelError
	case EventStateChange:
		if e.To != "open" {
			level = slog.LevelInfo
		}
	}
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("event", e.Kind.String()), slog.String("layer", e.Layer))
	if e.Name != "" {
		attrs = append(attrs, slog.String("name", e.Name))
	}
	if e.Attempt != 0 {
		attrs = append(attrs, slog.Int("attempt", e.Attempt))
	}
	if e.Delay != 0 || e.Kind == EventRetry {
		attrs = append(attrs, slog.Duration("delay", e.Delay))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	if e.From != "" || e.To != "" {
		attrs = append(attrs, slog.String("from", e.From), slog.String("to", e.To))
	}
	l.LogAttrs(ctx, level, "resilience: "+e.Kind.String(), attrs...)
}

// observer resolves a config's Observer and Logger fields: the Observer when
// set, else a LogObserver on the Logger (or slog.Default).
func observer(o Observer, l *slog.Logger) Observer {
	if o != nil {
		return o
	}
	return LogObserver(l)
}
