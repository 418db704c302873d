package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// EventKind says what a layer did.
type EventKind uint8

// The events layers report. Each one is reported where it happens, once.
const (
	// EventRetry: an attempt failed and Retry decided what comes next.
	// Attempt is the number of the attempt that failed (1 for the first).
	// When another attempt follows, Err is the attempt's error and Wait the
	// wait before it; when Retry gives up (the attempts ran out, or
	// retrying stopped early), Err is a [*RetryError] with the attempts
	// made and the last error, and Wait is zero.
	EventRetry EventKind = iota + 1
	// EventTimeout: a timeout layer's own deadline ended an attempt that
	// had run for Latency.
	EventTimeout
	// EventFallback: a fallback served the call in place of the failed
	// endpoint; Err is the error it replaced.
	EventFallback
	// EventPanic: the endpoint panicked; Err is a [*PanicError].
	EventPanic
	// EventStateChange: a circuit breaker moved From one state To another.
	EventStateChange
	// EventRejected: a layer rejected a call without calling the endpoint
	// (an open circuit, a rate limit, a full bulkhead, too many abandoned
	// calls); Err is the rejection, Wait how long the call waited before it
	// was turned away.
	EventRejected
	// EventCall: a call through a [Measure] layer ended. Outcome says how,
	// Latency how long it took and Err its error, if any. Unlike the other
	// kinds it is reported for every call, successes included, and only by
	// Measure.
	EventCall
	// EventChaos: a fault injection layer (package chaos) injected a fault:
	// latency (Wait is the injected delay, Err nil), an error (Err is the
	// injected error) or a panic (Err is a [*PanicError] holding the panic
	// value).
	EventChaos
	// EventLimit: an [AdaptiveLimit] layer moved its limit; Limit is the
	// new limit and Latency the average latency of the window that moved
	// it.
	EventLimit
	// EventHedge: a [Hedge] layer sent a hedge; Attempt is its number (2
	// for the first hedge), Err the failure that made it go at once, or
	// nil when it went because the attempts before it were slow.
	EventHedge
)

var eventNames = [...]string{
	EventRetry:       "retry",
	EventTimeout:     "timeout",
	EventFallback:    "fallback",
	EventPanic:       "panic",
	EventStateChange: "state_change",
	EventRejected:    "rejected",
	EventCall:        "call",
	EventChaos:       "chaos",
	EventLimit:       "limit",
	EventHedge:       "hedge",
}

// String returns the event's name as logged under the "event" key: "retry",
// "timeout", "fallback", "panic", "state_change",
// "rejected", "call", "chaos", "limit", "hedge".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Outcome is how a call through a [Measure] layer ended, in an [EventCall].
type Outcome uint8

// The outcomes of an [EventCall].
const (
	// OutcomeSuccess: the call returned no error.
	OutcomeSuccess Outcome = iota + 1
	// OutcomeFailure: the call failed (after any retries). A call cut by a
	// deadline of the library's own (a [Stack]'s Budget, a [Timeout]
	// layer) is a failure.
	OutcomeFailure
	// OutcomeRejected: a layer refused the call without making it: an
	// open circuit, a rate limit, a full bulkhead, too many abandoned
	// calls.
	OutcomeRejected
	// OutcomeCanceled: the caller has gone (its context was canceled, with
	// or without a cause, or passed its deadline, whatever the error says),
	// or the error is a cancellation: no verdict on the service.
	OutcomeCanceled
)

var outcomeNames = [...]string{
	OutcomeSuccess:  "success",
	OutcomeFailure:  "failure",
	OutcomeRejected: "rejected",
	OutcomeCanceled: "canceled",
}

// String returns the outcome's name, as logged and used as a metric label:
// "success", "failure", "rejected" or "canceled"; "" for the zero Outcome
// (events other than EventCall).
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Event is what a layer reports to its [Observer]. Each field has one
// meaning; fields that do not apply to a kind are zero.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Layer is the pattern that reported it: "retry", "timeout", "budget",
	// "fallback", "circuit_breaker", "rate_limit", "bulkhead", "recover",
	// "measure", "chaos", "adaptive_limit", "throttle", "hedge".
	Layer string
	// Name is the layer's configured name (a breaker's service name), or
	// empty.
	Name string
	// Attempt is the attempt number, counting from 1, for retry events.
	Attempt int
	// Err is the error that caused the event, if any.
	Err error
	// Wait is how long the layer holds the call before it goes on: the
	// wait before the next attempt (EventRetry), the time a rejected call
	// waited for a slot or token before it was turned away (EventRejected),
	// an injected latency (EventChaos).
	Wait time.Duration
	// Latency is how long the call ran: the whole call (EventCall), or the
	// attempt a timeout's deadline ended (EventTimeout).
	Latency time.Duration
	// From and To are the states of a breaker's state change.
	From, To registry.State
	// Outcome is how a call ended, for EventCall.
	Outcome Outcome
	// Limit is an adaptive limit's new value, for EventLimit.
	Limit int
	// Key is the key a keyed layer ([KeyedCircuitBreaker],
	// [KeyedRateLimit]) chose for the call, or the key of the breaker
	// that changed state; empty for the other layers. Name stays the
	// layer's name, so metrics that label by Name have one series per
	// layer however many keys there are: log the Key, do not label by it.
	Key string
}

// Observer receives the events of the layers it is given to. Observe is
// called synchronously, never while a layer holds a lock, so it must be
// quick and safe for concurrent use.
//
// Which goroutine: every event a layer reports about a call is reported on
// the goroutine that called the endpoint, with the call's context; a panic
// in Observe there goes on up to that caller, after the layer has released
// what it holds (a bulkhead slot, a breaker's ticket or probe slot). Two
// kinds of event come from a goroutine of the library's own instead, where
// a panic in Observe is recovered and logged at Error with its stack, and
// the library goes on: a circuit breaker's state change made by its reset
// timer (open to half-open, from the registry's timer goroutine, with
// context.Background()), and, in abandon mode ([TimeoutConfig].Abandon),
// the [EventPanic] of a worker that panicked after its caller stopped
// waiting (from the worker's goroutine). A breaker's other state changes
// are reported on the goroutine of a call into the breaker: the one that
// caused them, or one still delivering earlier changes (so that every
// subscriber hears them in order).
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to [Observer]. A nil ObserverFunc is
// refused where an Observer is accepted (a config's Observer field,
// [Observers]) with an error matching [ErrInvalidConfig] naming the field:
// leave the field nil for the default observer.
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f(ctx, e).
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Observers returns an [Observer] that passes each event to every non-nil
// observer given, in order: log, metrics and traces at once. The result is
// comparable (a pointer), so several circuit breakers of one name given the
// same Observers value report each state change once. It panics with an
// error matching [ErrInvalidConfig], naming the argument, when one of obs is
// a nil [ObserverFunc] (a nil Observer is skipped).
func Observers(obs ...Observer) Observer {
	list := make([]Observer, 0, len(obs))
	for i, o := range obs {
		if f, ok := o.(ObserverFunc); ok && f == nil {
			panic(&ConfigError{Path: fmt.Sprintf("observers[%d]", i), Field: fmt.Sprintf("Observers[%d]", i), Reason: "is a nil ObserverFunc"})
		}
		if o != nil {
			list = append(list, o)
		}
	}
	if len(list) == 1 {
		return list[0]
	}
	return &multiObserver{list}
}

type multiObserver struct{ list []Observer }

func (m *multiObserver) Observe(ctx context.Context, e Event) {
	for _, o := range m.list {
		o.Observe(ctx, e)
	}
}

// LogObserver returns an [Observer] that logs each event with l (or
// [slog.Default] when l is nil), with the structured keys event, layer, name,
// attempt, error, outcome, latency, wait, from and to (each only where it
// applies). Levels: retries, timeouts, fallbacks, rejections and a breaker
// opening are Warn; a retry that gives up and a panic are Error; other state
// changes are Info; a measured call ([EventCall]) is Debug when it succeeded
// or the caller canceled it, and Info otherwise (the layers inside have
// already logged why).
func LogObserver(l *slog.Logger) Observer { return logObserver{l} }

type logObserver struct{ l *slog.Logger }

func (o logObserver) Observe(ctx context.Context, e Event) {
	l := o.l
	if l == nil {
		l = slog.Default()
	}
	level := slog.LevelWarn
	switch e.Kind {
	case EventPanic:
		level = slog.LevelError
	case EventRetry:
		if _, ok := e.Err.(*RetryError); ok {
			level = slog.LevelError // gave up
		}
	case EventStateChange:
		if e.To != registry.StateOpen {
			level = slog.LevelInfo
		}
	case EventCall:
		level = slog.LevelInfo
		if e.Outcome == OutcomeSuccess || e.Outcome == OutcomeCanceled {
			level = slog.LevelDebug
		}
	}
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("event", e.Kind.String()), slog.String("layer", e.Layer))
	if e.Name != "" {
		attrs = append(attrs, slog.String("name", e.Name))
	}
	if e.Key != "" {
		attrs = append(attrs, slog.String("key", e.Key))
	}
	if e.Attempt != 0 {
		attrs = append(attrs, slog.Int("attempt", e.Attempt))
	}
	if e.Outcome != 0 {
		attrs = append(attrs, slog.String("outcome", e.Outcome.String()))
	}
	if e.Latency != 0 || e.Kind == EventCall {
		attrs = append(attrs, slog.Duration("latency", e.Latency))
	}
	if e.Wait != 0 {
		attrs = append(attrs, slog.Duration("wait", e.Wait))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	if e.Kind == EventStateChange {
		attrs = append(attrs, slog.String("from", e.From.String()), slog.String("to", e.To.String()))
	}
	l.LogAttrs(ctx, level, "resilience: "+e.Kind.String(), attrs...)
}

// observer resolves a config's Observer field: the Observer when set, else
// a LogObserver on slog.Default.
func observer(o Observer) Observer {
	if o != nil {
		return o
	}
	return LogObserver(nil)
}

// Discard is an [Observer] that drops every event: give it to a layer or a
// [Stack] (their Observer field) to silence its events, in tests say, It is comparable, so breakers of
// one name given Discard share one subscription.
var Discard Observer = discardObserver{}

type discardObserver struct{}

func (discardObserver) Observe(context.Context, Event) {}
