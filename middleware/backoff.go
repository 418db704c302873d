package middleware

import (
	"math"
	"time"
)

// Retry defaults, as the guide's table gives them.
const (
	retryDefaultMaxAttempts = 3
	retryDefaultDelay       = time.Second
	retryDefaultBackoff     = 2.0
	retryDefaultMaxDelay    = 60 * time.Second
)

// retrySchedule is a RetryConfig's backoff with its defaults resolved.
type retrySchedule struct {
	delay    time.Duration // the first wait; 0 with NoDelay
	backoff  float64       // the multiplier, >= 1 once validated
	maxDelay time.Duration // the cap on every wait
	jitter   bool
}

// schedule resolves c's defaults. It does not validate: a bad value is kept
// as it is, and delay copes with it.
func (c RetryConfig) schedule() retrySchedule {
	s := retrySchedule{
		delay:    c.Delay,
		backoff:  c.Backoff,
		maxDelay: c.MaxDelay,
		jitter:   !c.DisableJitter,
	}
	if c.NoDelay {
		s.delay = 0
	} else if s.delay == 0 {
		s.delay = retryDefaultDelay
	}
	if s.backoff == 0 {
		s.backoff = retryDefaultBackoff
	}
	if s.maxDelay == 0 {
		s.maxDelay = max(retryDefaultMaxDelay, s.delay)
	}
	return s
}

// DelayFor returns the wait [Retry] makes after attempt number attempt fails
// (1 for the wait after the first attempt), given rnd, a random number in
// [0, 1) that chooses the jitter. It is a pure function of c, attempt and
// rnd, so a schedule can be checked or printed without running anything.
//
// With c's defaults resolved (see [RetryConfig]), the base delay for attempt
// k is min(Delay·Backoff^(k-1), MaxDelay). With jitter on (the default) it is
// multiplied by 0.5+rnd, which spreads it evenly over [0.5, 1.5) times the
// base, and capped at MaxDelay again; with DisableJitter, rnd is ignored.
// NoDelay makes every delay zero.
//
// The result is always within [0, MaxDelay], for any attempt and any
// magnitude of Delay and Backoff: the arithmetic is done in floating point
// and compared with MaxDelay before it is turned back into a Duration, so it
// never overflows. An attempt below 1 counts as 1; rnd outside [0, 1) (or
// NaN) is clamped into it. For a config that does not pass
// [RetryConfig.Validate] the result is still a Duration between zero and
// MaxDelay (zero if MaxDelay is negative), but otherwise unspecified.
func (c RetryConfig) DelayFor(attempt int, rnd float64) time.Duration {
	s := c.schedule()
	return s.delayFor(attempt, rnd)
}

// delayFor is [RetryConfig.DelayFor] on resolved values.
func (s *retrySchedule) delayFor(attempt int, rnd float64) time.Duration {
	if s.delay <= 0 || s.maxDelay <= 0 {
		return 0
	}
	limit := float64(s.maxDelay)
	d := float64(s.delay)
	if attempt > 1 {
		// Pow gives +Inf on overflow and NaN for a NaN backoff; both
		// fail the d < limit test below and become the cap.
		d *= math.Pow(s.backoff, float64(attempt-1))
	}
	if !(d < limit) { // d >= limit, +Inf or NaN
		d = limit
	}
	if s.jitter {
		// 0.5+rnd can round up to 1.5 for rnd just below 1 (as
		// rand.Float64 may return): keep the factor in [0.5, 1.5).
		f := 0.5 + rnd
		if !(f >= 0.5) { // rnd < 0 or NaN
			f = 0.5
		} else if f >= 1.5 {
			f = math.Nextafter(1.5, 0)
		}
		d *= f
	}
	switch {
	case !(d < limit):
		return s.maxDelay
	case !(d > 0): // d <= 0, from a negative backoff in a bad config
		return 0
	}
	// 0 < d < float64(maxDelay) <= 2^63: d converts without overflow, and
	// to at most maxDelay (float64 rounding of maxDelay can only add to it).
	return min(time.Duration(d), s.maxDelay)
}
