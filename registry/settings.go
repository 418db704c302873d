package registry

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults applied to the zero fields of [Settings].
const (
	DefaultFailureThreshold = 5
	DefaultSuccessThreshold = 2
	DefaultResetTimeout     = 60 * time.Second
	DefaultMinRequests      = 10
	DefaultWindow           = 60 * time.Second
	DefaultWindowBuckets    = 10
	DefaultResetBackoff     = 2 // with MaxResetTimeout
)

// MaxWindowBuckets is the largest WindowBuckets accepted. The ratio rule
// keeps one set of counts per bucket, so the number is bounded like any
// other size taken from a configuration file.
const MaxWindowBuckets = 10000

// MaxDuration is the longest ResetTimeout and Window accepted: 100 years
// (of 365 days). The breaker adds these durations to the current time; the
// bound keeps every such sum far from the end of the time range.
const MaxDuration = 100 * 365 * 24 * time.Hour

// Settings configure one breaker. The zero value is the guide's breaker:
// open on the 5th consecutive failure, half-open 60s later, close after 2
// successful probes. Settings are comparable: a registry compares them (after
// applying defaults) to tell "same name, same breaker" from a conflict.
type Settings struct {
	// FailureThreshold is the number of consecutive failures that opens a
	// closed breaker: it opens on the FailureThreshold-th. Default 5. The
	// streak is never shortened by the rolling window of the ratio rule;
	// only a success, a state change or a reset clears it.
	FailureThreshold int `json:"failure_threshold,omitempty"`
	// SuccessThreshold is the number of successful probes that close a
	// half-open breaker; it is also how many probes half-open admits at
	// once. Default 2.
	SuccessThreshold int `json:"success_threshold,omitempty"`
	// ResetTimeout is how long the breaker stays open: at exactly
	// ResetTimeout after opening it is half-open, and 1ns earlier it
	// rejects, at every accepted value. Default 60s; otherwise between 2ns
	// and [MaxDuration] (gobreaker half-opens strictly after its own
	// timeout, so 1ns could not be exact and is refused).
	ResetTimeout time.Duration `json:"reset_timeout,omitempty"`
	// FailureRatio, when above zero, adds the ratio rule: a closed breaker
	// also opens when failures / (successes + failures) over the rolling
	// Window reaches FailureRatio with at least MinRequests finished calls in
	// the window. At most 1. Default 0: the consecutive rule alone.
	FailureRatio float64 `json:"failure_ratio,omitempty"`
	// MinRequests is the number of finished calls the window must hold before
	// the ratio rule may trip. Default 10. Used only with FailureRatio.
	MinRequests int `json:"min_requests,omitempty"`
	// Window is the length of the rolling window of the ratio rule. Default
	// 60s, at most [MaxDuration]. Used only with FailureRatio.
	Window time.Duration `json:"window,omitempty"`
	// WindowBuckets is the number of buckets the window rolls by: counts
	// leave the window one bucket (Window/WindowBuckets) at a time, and an
	// outcome counts in the bucket current when the call ends. At least 2
	// (one bucket would be a fixed window, not a rolling one). Default 10,
	// at most [MaxWindowBuckets]. A call costs the same at every accepted
	// number of buckets: O(1), plus O(1) per bucket that has left the window
	// since the previous call, and never more than O(WindowBuckets).
	// Used only with FailureRatio.
	WindowBuckets int `json:"window_buckets,omitempty"`
	// SlowCallRatio, when above zero, adds the slow-call rule (resilience4j's,
	// sentinel's): a closed breaker also opens when the share of slow calls
	// (those recorded [Slow]: successes that took SlowCallDuration or longer)
	// among the finished calls of the rolling Window reaches SlowCallRatio,
	// with at least MinRequests finished calls in the window. A slow call
	// is still a success to the caller and to the consecutive rule; a slow
	// half-open probe opens the breaker again. At most 1. Default 0: off.
	// Local only: a store-shared breaker refuses it, as it refuses
	// FailureRatio.
	SlowCallRatio float64 `json:"slow_call_ratio,omitempty"`
	// SlowCallDuration is the latency from which a call is slow; required
	// with SlowCallRatio, and only with it. At most [MaxDuration]. The
	// breaker does not time calls itself: whoever records the outcome
	// (middleware.CircuitBreaker) reports Slow.
	SlowCallDuration time.Duration `json:"slow_call_duration,omitempty"`
	// MaxResetTimeout, when above zero, makes the open duration grow on
	// repeated opens (Polly's BreakDurationGenerator, failsafe-go's growing
	// delay): each time a half-open breaker opens again (a probe failed, or
	// a Trip while half-open), its next open spell is the previous one's
	// length times ResetBackoff, up to MaxResetTimeout; the first spell
	// after the breaker was closed is ResetTimeout. At least ResetTimeout
	// (with its default), at most [MaxDuration]. Default 0: every spell is
	// ResetTimeout. Local only: a store-shared breaker refuses it.
	MaxResetTimeout time.Duration `json:"max_reset_timeout,omitempty"`
	// ResetBackoff is the factor each repeated open multiplies the open
	// duration by; used only with MaxResetTimeout, between 1 and 1000.
	// Default 2 when MaxResetTimeout is set.
	ResetBackoff float64 `json:"reset_backoff,omitempty"`
	// ResetJitter, when above zero, shortens each open spell by a random
	// share of up to ResetJitter of its length, drawn afresh for each spell
	// (uniform in [d×(1-ResetJitter), d] for a spell of length d), so that
	// replicas that opened together do not half-open in step. The spell's
	// end is exact all the same: the breaker half-opens at the
	// [CircuitOpenError]'s HalfOpenAt and rejects 1ns before it. At least 0
	// and below 1. Default 0: no jitter. Local only: a store-shared breaker
	// refuses it (its replicas share one spell).
	ResetJitter float64 `json:"reset_jitter,omitempty"`
}

// windowed reports whether a rule needs the rolling window.
func (s Settings) windowed() bool { return s.FailureRatio > 0 || s.SlowCallRatio > 0 }

// MaxResetBackoff is the largest ResetBackoff accepted.
const MaxResetBackoff = 1000

// openFor returns the length of an open spell that follows opens earlier
// opens in a row (0 for the first after a close), with u in [0, 1) the
// spell's random draw (used only with ResetJitter). Never below
// [Settings.minOpen]. s has its defaults applied.
func (s Settings) openFor(opens int, u float64) time.Duration {
	d := float64(s.ResetTimeout)
	if s.MaxResetTimeout > s.ResetTimeout && opens > 0 {
		// math.Pow may overflow to +Inf; min takes the cap then.
		d = min(d*math.Pow(s.ResetBackoff, float64(opens)), float64(s.MaxResetTimeout))
	}
	d *= 1 - s.ResetJitter*u
	return max(time.Duration(d), s.minOpen())
}

// minOpen returns the shortest open spell the settings allow: ResetTimeout
// shortened by the whole ResetJitter, and never below 2ns (so that
// gobreaker, which half-opens strictly after its timeout, is never ready
// before the spell ends). s has its defaults applied.
func (s Settings) minOpen() time.Duration {
	return max(time.Duration(float64(s.ResetTimeout)*(1-s.ResetJitter)), 2)
}

// SettingsError is one field of [Settings] out of range, as returned
// (joined with the others) by [Settings.Validate]. It matches
// [ErrInvalidSettings].
type SettingsError struct {
	// Field is the Go name of the field, such as "Window".
	Field string
	// Value is the field's value.
	Value any
	// Reason says what the field must be.
	Reason string
}

// Error returns "registry: invalid breaker settings: Field = value, reason".
func (e *SettingsError) Error() string {
	return fmt.Sprintf("%v: %s = %v, %s", ErrInvalidSettings, e.Field, e.Value, e.Reason)
}

// Is reports whether target is [ErrInvalidSettings].
func (e *SettingsError) Is(target error) bool { return target == ErrInvalidSettings }

// Validate returns nil if s is in range, and else an error matching
// [ErrInvalidSettings] that names every field out of range: an
// [errors.Join] of one [*SettingsError] per field.
func (s Settings) Validate() error {
	var errs []error
	bad := func(field string, v any, reason string) {
		errs = append(errs, &SettingsError{Field: field, Value: v, Reason: reason})
	}
	if s.FailureThreshold < 0 {
		bad("FailureThreshold", s.FailureThreshold, "must not be negative")
	}
	if s.SuccessThreshold < 0 || s.SuccessThreshold > math.MaxUint32 {
		bad("SuccessThreshold", s.SuccessThreshold, "must be between 0 and 4294967295")
	}
	if s.ResetTimeout < 0 || s.ResetTimeout == 1 || s.ResetTimeout > MaxDuration {
		bad("ResetTimeout", s.ResetTimeout, fmt.Sprintf("must be 0 (the default) or between 2ns and %v", MaxDuration))
	}
	if math.IsNaN(s.FailureRatio) || s.FailureRatio < 0 || s.FailureRatio > 1 {
		bad("FailureRatio", s.FailureRatio, "must be between 0 and 1")
	}
	if s.MinRequests < 0 {
		bad("MinRequests", s.MinRequests, "must not be negative")
	}
	switch {
	case math.IsNaN(s.SlowCallRatio) || s.SlowCallRatio < 0 || s.SlowCallRatio > 1:
		bad("SlowCallRatio", s.SlowCallRatio, "must be between 0 and 1")
	case s.SlowCallDuration < 0 || s.SlowCallDuration > MaxDuration:
		bad("SlowCallDuration", s.SlowCallDuration, fmt.Sprintf("must be between 0 and %v", MaxDuration))
	case s.SlowCallRatio > 0 && s.SlowCallDuration == 0:
		bad("SlowCallDuration", s.SlowCallDuration, "must be set with SlowCallRatio: the latency from which a call is slow")
	case s.SlowCallRatio == 0 && s.SlowCallDuration > 0:
		bad("SlowCallRatio", s.SlowCallRatio, "must be set with SlowCallDuration: the share of slow calls that opens the breaker")
	}
	switch {
	case s.MaxResetTimeout < 0 || s.MaxResetTimeout > MaxDuration:
		bad("MaxResetTimeout", s.MaxResetTimeout, fmt.Sprintf("must be between 0 and %v", MaxDuration))
	case s.MaxResetTimeout > 0 && s.MaxResetTimeout < s.WithDefaults().ResetTimeout:
		bad("MaxResetTimeout", s.MaxResetTimeout, fmt.Sprintf("must be 0 (off) or at least ResetTimeout (%v)", s.WithDefaults().ResetTimeout))
	}
	switch {
	case math.IsNaN(s.ResetBackoff) || (s.ResetBackoff != 0 && (s.ResetBackoff < 1 || s.ResetBackoff > MaxResetBackoff)):
		bad("ResetBackoff", s.ResetBackoff, fmt.Sprintf("must be 0 (the default, 2) or between 1 and %d", MaxResetBackoff))
	case s.ResetBackoff != 0 && s.MaxResetTimeout == 0:
		bad("ResetBackoff", s.ResetBackoff, "is used only with MaxResetTimeout: set the longest open duration too")
	}
	if math.IsNaN(s.ResetJitter) || s.ResetJitter < 0 || s.ResetJitter >= 1 {
		bad("ResetJitter", s.ResetJitter, "must be at least 0 and below 1")
	}
	if s.Window < 0 || s.Window > MaxDuration {
		bad("Window", s.Window, fmt.Sprintf("must be between 0 and %v", MaxDuration))
	}
	if s.WindowBuckets < 0 || s.WindowBuckets == 1 || s.WindowBuckets > MaxWindowBuckets {
		bad("WindowBuckets", s.WindowBuckets, fmt.Sprintf("must be 0 (the default) or between 2 and %d", MaxWindowBuckets))
	}
	if len(errs) == 0 {
		d := s.WithDefaults()
		if d.windowed() && d.Window < time.Duration(d.WindowBuckets) {
			bad("Window", d.Window, fmt.Sprintf("must be at least WindowBuckets (%d) nanoseconds", d.WindowBuckets))
		}
	}
	return errors.Join(errs...)
}

// WithDefaults returns s with its zero fields set to their defaults, as a
// registry compares settings: the window fields are zeroed when no windowed
// rule (ratio, slow calls) is on, so that they never make two otherwise
// equal settings conflict.
func (s Settings) WithDefaults() Settings {
	if s.FailureThreshold == 0 {
		s.FailureThreshold = DefaultFailureThreshold
	}
	if s.SuccessThreshold == 0 {
		s.SuccessThreshold = DefaultSuccessThreshold
	}
	if s.ResetTimeout == 0 {
		s.ResetTimeout = DefaultResetTimeout
	}
	if s.MaxResetTimeout > 0 && s.ResetBackoff == 0 {
		s.ResetBackoff = DefaultResetBackoff
	}
	if !s.windowed() {
		s.MinRequests, s.Window, s.WindowBuckets = 0, 0, 0
		return s
	}
	if s.MinRequests == 0 {
		s.MinRequests = DefaultMinRequests
	}
	if s.Window == 0 {
		s.Window = DefaultWindow
	}
	if s.WindowBuckets == 0 {
		s.WindowBuckets = DefaultWindowBuckets
	}
	return s
}

// String returns the settings in a compact form for error messages, such as
// "{failure_threshold=5 success_threshold=2 reset_timeout=1m0s}".
func (s Settings) String() string {
	str := fmt.Sprintf("{failure_threshold=%d success_threshold=%d reset_timeout=%v", s.FailureThreshold, s.SuccessThreshold, s.ResetTimeout)
	if s.FailureRatio > 0 || s.MinRequests != 0 || s.Window != 0 || s.WindowBuckets != 0 {
		str += fmt.Sprintf(" failure_ratio=%v min_requests=%d window=%v window_buckets=%d", s.FailureRatio, s.MinRequests, s.Window, s.WindowBuckets)
	}
	if s.SlowCallRatio > 0 || s.SlowCallDuration != 0 {
		str += fmt.Sprintf(" slow_call_ratio=%v slow_call_duration=%v", s.SlowCallRatio, s.SlowCallDuration)
	}
	if s.MaxResetTimeout != 0 || s.ResetBackoff != 0 {
		str += fmt.Sprintf(" max_reset_timeout=%v reset_backoff=%v", s.MaxResetTimeout, s.ResetBackoff)
	}
	if s.ResetJitter != 0 {
		str += fmt.Sprintf(" reset_jitter=%v", s.ResetJitter)
	}
	return str + "}"
}
