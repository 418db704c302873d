package health

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// CheckFunc checks one dependency. It returns nil when the dependency is
// healthy, an error made with [Degraded] when it works but is degraded, and
// any other error when it is unhealthy. It should return promptly once ctx is
// done: ctx carries the check's timeout. A CheckFunc that ignores ctx is still
// reported as failed at its deadline, and is not run again until it returns.
type CheckFunc func(ctx context.Context) error

// Bool returns a CheckFunc that calls f and reports [ErrCheckFailed] when it
// returns false, for a check that is a yes-or-no question, such as
//
//	health.Bool(func() bool { _, err := os.Stat("corpus"); return err == nil })
//
// Bool returns nil when f is nil, so Register reports [ErrNilCheck].
func Bool(f func() bool) CheckFunc {
	if f == nil {
		return nil
	}
	return func(context.Context) error {
		if f() {
			return nil
		}
		return ErrCheckFailed
	}
}

// BoolCtx is [Bool] for a function that takes the check's context.
func BoolCtx(f func(ctx context.Context) bool) CheckFunc {
	if f == nil {
		return nil
	}
	return func(ctx context.Context) error {
		if f(ctx) {
			return nil
		}
		return ErrCheckFailed
	}
}

// Result is the outcome of a check, or of a whole report, with the values of
// the IETF draft "Health Check Response Format for HTTP APIs".
type Result string

// The three results, from best to worst.
const (
	// Pass: healthy.
	Pass Result = "pass"
	// Warn: healthy but degraded. A check reports Warn by returning an error
	// made with [Degraded]; a report is Warn when some check warns or an
	// optional check fails.
	Warn Result = "warn"
	// Fail: unhealthy. A report is Fail when some critical check fails.
	Fail Result = "fail"
)

// resultOf classifies a check's error.
func resultOf(err error) Result {
	switch {
	case err == nil:
		return Pass
	case errors.Is(err, ErrDegraded):
		return Warn
	default:
		return Fail
	}
}

// Status is the health of one check. The zero value is not meaningful; a
// Status comes from a [Checker].
type Status struct {
	// Name is the name the check was registered under.
	Name string
	// Healthy is true when Result is Pass or Warn.
	Healthy bool
	// Result is Pass, Warn or Fail.
	Result Result
	// Critical is true for a critical check (the default) and false for one
	// registered with [Check].Optional.
	Critical bool
	// Latency is how long the check ran; for a check that timed out, its
	// timeout.
	Latency time.Duration
	// Error is nil when Result is Pass; otherwise the check's error, or
	// one the checker made: matching [middleware.ErrTimeout] for a check cut
	// by its own timeout, wrapping a [*middleware.PanicError] for one that
	// panicked, matching [ErrStale], [ErrNotChecked] or [ErrUnknownCheck].
	Error error
	// LastCheck is when the check's result was recorded; zero when it has
	// never run.
	LastCheck time.Time
}

// statusJSON is the JSON form of a Status.
type statusJSON struct {
	Name      string    `json:"name"`
	Healthy   bool      `json:"healthy"`
	Result    Result    `json:"result"`
	Critical  bool      `json:"critical"`
	LatencyMS float64   `json:"latency_ms"`
	Error     *string   `json:"error"`
	LastCheck time.Time `json:"last_check"`
}

// MarshalJSON returns one object per check, with the latency in
// milliseconds:
//
//	{"name":"chromadb","healthy":true,"result":"pass","critical":true,
//	 "latency_ms":15.2,"error":null,"last_check":"2026-01-13T17:45:00Z"}
//
// latency_ms is in milliseconds with a fraction. The error's text is
// included: use [Handler] to serve health to untrusted clients.
func (s Status) MarshalJSON() ([]byte, error) {
	j := statusJSON{
		Name:      s.Name,
		Healthy:   s.Healthy,
		Result:    s.Result,
		Critical:  s.Critical,
		LatencyMS: ms(s.Latency),
		LastCheck: s.LastCheck,
	}
	if s.Error != nil {
		msg := s.Error.Error()
		j.Error = &msg
	}
	return json.Marshal(j)
}

// ms converts d to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
