package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// Warning is a risky but workable part of a [Stack], found by
// [Stack.Warnings]: something that works, but probably not as its author
// meant. Problems that can never work are errors from [Stack.Validate].
type Warning struct {
	// Path names the field, as the file format spells it: "retry.max_attempts".
	Path string
	// Message says what is risky.
	Message string
}

// String returns "path: message".
func (w Warning) String() string { return w.Path + ": " + w.Message }

// maxJitter is the rnd that gives the largest jittered delay.
const maxJitter = 1 - 1e-12

// worstCase is what a stack can do to one call at most.
type worstCase struct {
	attempts int           // endpoint calls per call
	longest  time.Duration // 0 when unbounded
	bounded  bool
	delays   []time.Duration // the largest wait before each retry
	attempt  time.Duration   // the per-attempt timeout, 0 when none
}

func (s Stack) worstCase() worstCase {
	w := worstCase{attempts: 1}
	if s.Timeout != nil {
		w.attempt = s.Timeout.Timeout
	}
	if s.Retry != nil {
		w.attempts = s.Retry.MaxAttempts
		if w.attempts == 0 {
			w.attempts = retryDefaultMaxAttempts
		}
		for k := 1; k < w.attempts; k++ {
			w.delays = append(w.delays, s.Retry.DelayFor(k, maxJitter))
		}
	}
	if w.attempt > 0 {
		w.bounded = true
		w.longest = time.Duration(w.attempts) * w.attempt
		for _, d := range w.delays {
			w.longest += d
		}
		if s.Bulkhead != nil {
			w.longest += s.Bulkhead.MaxWait
		}
		if s.RateLimit != nil && s.RateLimit.Wait {
			w.bounded = false
		}
	}
	if s.Budget > 0 && (!w.bounded || s.Budget < w.longest) {
		w.bounded, w.longest = true, s.Budget
	}
	return w
}

// crossErrors reports what can never work across layers.
func (s Stack) crossErrors() error {
	var errs []error
	if s.Budget < 0 {
		errs = append(errs, &ConfigError{Path: "budget", Field: "Stack.Budget", Value: s.Budget, Reason: "must not be negative"})
	}
	if s.Budget > 0 && s.Timeout != nil && s.Timeout.Timeout >= s.Budget {
		errs = append(errs, &ConfigError{Path: "timeout.timeout", Field: "TimeoutConfig.Timeout", Value: s.Timeout.Timeout,
			Reason: fmt.Sprintf("must be shorter than the budget (%s): an attempt could never time out before the whole call does", s.Budget)})
	}
	if s.Budget > 0 && s.Retry != nil && s.Timeout != nil && s.Timeout.Timeout < s.Budget {
		attempts := s.Retry.MaxAttempts
		if attempts == 0 {
			attempts = retryDefaultMaxAttempts
		}
		if first := s.Timeout.Timeout + s.Retry.DelayFor(1, 0); attempts > 1 && first >= s.Budget {
			errs = append(errs, &ConfigError{Path: "retry.delay", Field: "RetryConfig.Delay", Value: s.Retry.DelayFor(1, 0),
				Reason: fmt.Sprintf("no retry can fit in the budget (%s): an attempt may take %s and the first wait is at least %s", s.Budget, s.Timeout.Timeout, s.Retry.DelayFor(1, 0))})
		}
	}
	if s.Retry != nil {
		for i, e := range s.Retry.RetryOn {
			if e != nil && rejection(e) {
				errs = append(errs, &ConfigError{Path: fmt.Sprintf("retry.retry_on[%d]", i), Field: fmt.Sprintf("RetryConfig.RetryOn[%d]", i), Value: e,
					Reason: "is a rejection (open circuit, rate limit, full bulkhead), which is never retried: retrying it would only add load"})
			}
		}
	}
	return errors.Join(errs...)
}

// Warnings returns what is risky in the stack but can work: a breaker reset
// timeout shorter than one attempt (the breaker half-opens while the call
// that opened it may still run), and retries whose worst-case total passes the
// budget (the later attempts will be cut). Build logs them.
func (s Stack) Warnings() []Warning {
	var ws []Warning
	if s.CircuitBreaker != nil && s.Timeout != nil {
		reset := s.CircuitBreaker.ResetTimeout
		if reset == 0 {
			reset = registry.DefaultResetTimeout
		}
		if reset < s.Timeout.Timeout {
			ws = append(ws, Warning{"circuit_breaker.reset_timeout", fmt.Sprintf("%s is shorter than one attempt (timeout %s): the breaker half-opens before a slow attempt can end", reset, s.Timeout.Timeout)})
		}
	}
	if s.Budget > 0 && s.Retry != nil && s.Timeout != nil {
		w := s
		w.Budget = 0
		if wc := w.worstCase(); wc.bounded && wc.longest > s.Budget {
			ws = append(ws, Warning{"budget", fmt.Sprintf("%s is shorter than the worst case of the retries (%s): the last attempts will be cut by the budget", s.Budget, wc.longest.Round(time.Millisecond))})
		}
	}
	return ws
}

// logWarnings logs each warning with the stack's logger.
func (s Stack) logWarnings(ws []Warning) {
	if len(ws) == 0 {
		return
	}
	l := s.Logger
	if l == nil {
		l = slog.Default()
	}
	for _, w := range ws {
		l.Warn("resilience: risky stack", slog.String("event", "config_warning"), slog.String("path", w.Path), slog.String("warning", w.Message))
	}
}

// Explain returns, as text, what the stack really does: its layers in the
// order they run, with every default filled in, then the worst case a caller
// can see (attempts and backend calls per call, the longest a call can take:
// attempts × the attempt timeout + the largest waits, or the budget), then
// the warnings. An operator can read what a policy file means without reading
// the code.
func (s Stack) Explain() string {
	var b strings.Builder
	b.WriteString("layers, outermost first:\n")
	n := 0
	line := func(format string, args ...any) {
		n++
		fmt.Fprintf(&b, "  %d. ", n)
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	if s.Fallback != nil {
		line("%s: on any failure the caller gets the fallback instead of the error", describeFallback(*s.Fallback))
	}
	if s.Budget > 0 {
		line("budget: %s for the whole call, retries included", s.Budget)
	}
	if c := s.Bulkhead; c != nil {
		q := c.MaxQueue
		if q == 0 {
			q = c.MaxConcurrent
		}
		if c.MaxWait > 0 {
			line("bulkhead: at most %d calls in flight; up to %d more wait at most %s for a slot, the rest are rejected", c.MaxConcurrent, q, c.MaxWait)
		} else {
			line("bulkhead: at most %d calls in flight; more are rejected at once", c.MaxConcurrent)
		}
	}
	if c := s.RateLimit; c != nil {
		mode := "calls over the rate are rejected at once"
		if c.Wait {
			mode = "calls over the rate wait for a token, up to the caller's deadline"
		}
		line("rate_limit: %g calls/s, burst %d; %s", c.Rate, c.Burst, mode)
	}
	if c := s.CircuitBreaker; c != nil {
		st := c.settings()
		ft, sth, rt := st.FailureThreshold, st.SuccessThreshold, st.ResetTimeout
		if ft == 0 {
			ft = registry.DefaultFailureThreshold
		}
		if sth == 0 {
			sth = registry.DefaultSuccessThreshold
		}
		if rt == 0 {
			rt = registry.DefaultResetTimeout
		}
		rule := fmt.Sprintf("opens after %d consecutive failures", ft)
		if c.FailureRatio > 0 {
			rule += fmt.Sprintf(" or a failure ratio of %g over the window", c.FailureRatio)
		}
		line("circuit_breaker %q: %s; rejects for %s, then admits %d probes; %d successes close it", c.Name, rule, rt, sth, sth)
	}
	wc := s.worstCase()
	if c := s.Retry; c != nil {
		what := "every error"
		var on []string
		if len(c.RetryOnClasses) > 0 {
			on = append(on, strings.Join(c.RetryOnClasses, ", "))
		}
		if len(c.RetryOn) > 0 {
			on = append(on, fmt.Sprintf("%d listed errors", len(c.RetryOn)))
		}
		if c.RetryIf != nil {
			on = append(on, "RetryIf")
		}
		if len(on) > 0 {
			what = strings.Join(on, " or ")
		}
		var ds []string
		for k := 1; k < wc.attempts; k++ {
			base := c.DelayFor(k, 0.5)
			if c.DisableJitter {
				ds = append(ds, base.String())
			} else {
				ds = append(ds, fmt.Sprintf("%s (%s-%s)", base, c.DelayFor(k, 0), c.DelayFor(k, maxJitter).Round(time.Millisecond)))
			}
		}
		delays := "no waits"
		if len(ds) > 0 {
			delays = "waits " + strings.Join(ds, ", ")
		}
		line("retry: %d attempts; %s; retries %s; never caller cancellation or rejections", wc.attempts, delays, what)
	}
	if c := s.Timeout; c != nil {
		mode := "cooperative: the endpoint must honour its context"
		if c.Abandon {
			mode = "abandons an endpoint that ignores its context"
		}
		line("timeout: %s per attempt (%s)", c.Timeout, mode)
	}
	b.WriteString("  endpoint\n")
	b.WriteString("worst case per call:\n")
	fmt.Fprintf(&b, "  attempts: %d\n  backend calls: %d\n", wc.attempts, wc.attempts)
	switch {
	case !wc.bounded:
		b.WriteString("  longest time: unbounded (no per-attempt timeout or budget: the caller's deadline decides)\n")
	case s.Budget > 0 && wc.longest == s.Budget:
		fmt.Fprintf(&b, "  longest time: %s (the budget)\n", wc.longest)
	default:
		var parts []string
		parts = append(parts, fmt.Sprintf("%d × %s", wc.attempts, wc.attempt))
		for _, d := range wc.delays {
			parts = append(parts, d.Round(time.Millisecond).String())
		}
		if s.Bulkhead != nil && s.Bulkhead.MaxWait > 0 {
			parts = append(parts, s.Bulkhead.MaxWait.String()+" bulkhead wait")
		}
		fmt.Fprintf(&b, "  longest time: %s (%s)\n", wc.longest.Round(time.Millisecond), strings.Join(parts, " + "))
	}
	if ws := s.Warnings(); len(ws) > 0 {
		b.WriteString("warnings:\n")
		for _, w := range ws {
			fmt.Fprintf(&b, "  %s\n", w)
		}
	}
	return b.String()
}
