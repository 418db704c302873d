package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/registry"
)

// worstCase is what a stack can do to one call at most. It is computed in
// closed form, in the same time for any MaxAttempts, and every sum saturates
// at the largest Duration.
type worstCase struct {
	attempts int           // endpoint calls per call
	attempt  time.Duration // the per-attempt timeout, 0 when none
	// waits bounds the total wait between attempts: Retry waits out a
	// Retry-After hint up to MaxDelay (and gives up on a longer one), and
	// any error it retries may carry one, so each wait may last MaxDelay.
	waits    time.Duration
	schedule time.Duration // the waits' bound when no error carries a hint
	maxDelay time.Duration // the longest single wait
	bulkhead time.Duration // the longest wait for a bulkhead slot
	longest  time.Duration // valid when bounded
	bounded  bool
	byBudget bool // longest is the budget
}

func (s Stack) worstCase() worstCase {
	w := worstCase{attempts: 1}
	if !s.Timeout.isZero() {
		w.attempt = max(s.Timeout.Timeout, 0)
	}
	if !s.Retry.isZero() {
		w.attempts = s.Retry.MaxAttempts
		if w.attempts == 0 {
			w.attempts = retryDefaultMaxAttempts
		}
		w.attempts = max(w.attempts, 1)
		sch := s.Retry.schedule()
		w.maxDelay = max(sch.maxDelay, 0)
		w.waits = satMul(w.attempts-1, w.maxDelay)
		w.schedule = sch.sumDelays(w.attempts-1, jitterTop)
	}
	if !s.Bulkhead.isZero() {
		w.bulkhead = max(s.Bulkhead.MaxWait, 0)
	}
	if w.attempt > 0 && (s.RateLimit.isZero() || !s.RateLimit.Wait) {
		w.bounded = true
		w.longest = satAdd(satAdd(satMul(w.attempts, w.attempt), w.waits), w.bulkhead)
	}
	if s.Budget > 0 && (!w.bounded || s.Budget < w.longest) {
		w.bounded, w.longest, w.byBudget = true, s.Budget, true
	}
	return w
}

// withoutHints is the longest time when no error carries a Retry-After hint.
func (w worstCase) withoutHints() time.Duration {
	return satAdd(satAdd(satMul(w.attempts, w.attempt), w.schedule), w.bulkhead)
}

// crossErrors reports what can never work across layers.
func (s Stack) crossErrors() error {
	var errs []error
	if s.Budget < 0 {
		errs = append(errs, &ConfigError{Path: "budget", Field: "Stack.Budget", Value: s.Budget, Reason: "must not be negative"})
	}
	if s.Budget > 0 && !s.Timeout.isZero() && s.Timeout.Timeout >= s.Budget {
		errs = append(errs, &ConfigError{Path: "timeout.timeout", Field: "TimeoutConfig.Timeout", Value: s.Timeout.Timeout,
			Reason: fmt.Sprintf("must be shorter than the budget (%s): an attempt could never time out before the whole call does", s.Budget)})
	}
	if s.Budget > 0 && !s.Retry.isZero() && !s.Timeout.isZero() && s.Timeout.Timeout < s.Budget {
		attempts := s.Retry.MaxAttempts
		if attempts == 0 {
			attempts = retryDefaultMaxAttempts
		}
		if first := s.Timeout.Timeout + s.Retry.DelayFor(1, 0); attempts > 1 && first >= s.Budget {
			errs = append(errs, &ConfigError{Path: "retry.delay", Field: "RetryConfig.Delay", Value: s.Retry.DelayFor(1, 0),
				Reason: fmt.Sprintf("no retry can fit in the budget (%s): an attempt may take %s and the first wait is at least %s", s.Budget, s.Timeout.Timeout, s.Retry.DelayFor(1, 0))})
		}
	}
	if !s.Retry.isZero() {
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
// budget (the later attempts will be cut). Each names the field, as
// "budget: ...". Build logs them. Problems that can never work are errors
// from [Stack.Validate] instead.
func (s Stack) Warnings() []string {
	var ws []string
	if !s.CircuitBreaker.isZero() && !s.Timeout.isZero() {
		reset := s.CircuitBreaker.ResetTimeout
		if reset == 0 {
			reset = registry.DefaultResetTimeout
		}
		if reset < s.Timeout.Timeout {
			ws = append(ws, "circuit_breaker.reset_timeout: "+fmt.Sprintf("%s is shorter than one attempt (timeout %s): the breaker half-opens before a slow attempt can end", reset, s.Timeout.Timeout))
		}
	}
	if s.Budget > 0 && !s.Retry.isZero() && !s.Timeout.isZero() {
		w := s
		w.Budget = 0
		if wc := w.worstCase(); wc.bounded && wc.longest > s.Budget {
			msg := fmt.Sprintf("%s is shorter than the worst case of the retries (%s", s.Budget, wc.longest.Round(time.Millisecond))
			if nh := wc.withoutHints(); nh <= s.Budget {
				msg += fmt.Sprintf(", with every wait at max_delay %s as Retry-After hints may ask; %s without hints", wc.maxDelay, nh.Round(time.Millisecond))
			}
			ws = append(ws, "budget: "+msg+"): the last attempts will be cut by the budget")
		}
	}
	return ws
}

// logWarnings logs each warning with the stack's logger.
func (s Stack) logWarnings(ws []string) {
	if len(ws) == 0 {
		return
	}
	l := slog.Default()
	if lo, ok := s.Observer.(logObserver); ok && lo.l != nil {
		l = lo.l
	}
	for _, w := range ws {
		l.Warn("resilience: risky stack", slog.String("event", "config_warning"), slog.String("warning", w))
	}
}

// Explain returns, as text, what the stack really does: its layers in the
// order they run, with every default filled in, then the worst case a caller
// can see (attempts and backend calls per call, and the longest a call can
// take: attempts × the attempt timeout + the longest waits, or the budget),
// then the warnings. Each wait between attempts counts as MaxDelay, since
// Retry waits out a Retry-After hint up to MaxDelay; the total without hints
// is given too. An operator can read what a policy file means without reading
// the code. Explain takes the same time for any MaxAttempts.
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
	if c := &s.Fallback; !c.isZero() {
		if on := filterNames(c.FallbackOn, c.FallbackIf, "FallbackIf"); on != "" {
			line("%s: on a failure matching %s the caller gets the fallback instead of the error; other failures are returned as they are", describeFallback(*c), on)
		} else {
			line("%s: on any failure the caller gets the fallback instead of the error", describeFallback(*c))
		}
	}
	if s.Measure {
		name := s.Name
		line("measure %q: reports every call's outcome and latency to its observer (a call the fallback then serves counts as failed here)", name)
	}
	if s.Budget > 0 {
		line("budget: %s for the whole call, retries included", s.Budget)
	}
	if c := &s.Bulkhead; !c.isZero() {
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
	if c := &s.AdaptiveLimit; !c.isZero() {
		d := c.withDefaults()
		queue := "calls over it are rejected at once (ErrLimited, with a Retry-After)"
		if d.MaxQueue > 0 {
			queue = fmt.Sprintf("up to %d calls over it wait at most %s for a slot, the rest are rejected (ErrLimited, with a Retry-After)", d.MaxQueue, d.MaxWait)
		}
		line("adaptive_limit: at most a limit of calls in flight, from %d, kept within [%d, %d] by the %s algorithm so that calls stay within %g times their no-load latency; %s; never retried, never a breaker failure",
			d.InitialLimit, d.MinLimit, d.MaxLimit, d.Algorithm, d.Tolerance, queue)
	}
	if c := &s.RateLimit; !c.isZero() {
		mode := "calls over the rate are rejected at once"
		if c.Wait {
			mode = "calls over the rate wait for a token, up to the caller's deadline"
		}
		line("rate_limit: %g calls/s, burst %d; %s", c.Rate, c.Burst, mode)
	}
	if c := &s.CircuitBreaker; !c.isZero() {
		st := c.Settings()
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
		if c.SlowCallRatio > 0 {
			rule += fmt.Sprintf(" or when %g of the window's calls took %s or longer", c.SlowCallRatio, c.SlowCallDuration)
		}
		name := c.Name
		if name == "" { // the stack's Name names the breaker, as in Build and String
			name = s.Name
		}
		open := rt.String()
		if d := st.WithDefaults(); d.MaxResetTimeout > 0 {
			open += fmt.Sprintf(" (x%g on each failed probe, up to %s)", d.ResetBackoff, d.MaxResetTimeout)
		}
		if st.ResetJitter > 0 {
			open += fmt.Sprintf(" less up to %g%% at random", st.ResetJitter*100)
		}
		line("circuit_breaker %q: %s; rejects for %s, then admits %d probes; %d successes close it", name, rule, open, sth, sth)
	}
	wc := s.worstCase()
	if c := &s.Retry; !c.isZero() {
		what := filterNames(c.RetryOn, c.RetryIf, "RetryIf")
		if what == "" {
			what = "every error"
		}
		budget := ""
		if c.Budget != nil {
			budget = fmt.Sprintf("; at most %g retries per call on average over the calls sharing its budget (%s)", c.Budget.ratio, c.Budget)
		}
		line("retry: %d attempts; %s; retries %s; never caller cancellation or rejections%s", wc.attempts, describeWaits(*c, wc.attempts-1), what, budget)
	}
	if c := &s.Hedge; !c.isZero() {
		n := c.MaxHedges
		if n == 0 {
			n = 1
		}
		when := fmt.Sprintf("after %s", c.Delay)
		if c.Quantile > 0 {
			when = fmt.Sprintf("after the p%g of recent latencies (at least %s)", 100*c.Quantile, c.Delay)
		}
		budget := ""
		if c.Budget != nil {
			budget = fmt.Sprintf("; every hedge taken from the %s", c.Budget)
		}
		line("hedge: a call its Idempotent approves is sent again %s, up to %d more times, the first success returned and the rest canceled%s", when, n, budget)
	}
	if c := &s.Throttle; !c.isZero() {
		line("throttle: each attempt is turned away here with probability max(0, (requests - %g × accepts) / (requests + 1)) over the last %s (ErrThrottled), so that the client sends the service about %g times what it accepts; never retried, never a breaker failure",
			c.kOrDefault(), c.windowOrDefault(), c.kOrDefault())
	}
	if c := &s.Timeout; !c.isZero() {
		mode := "cooperative: the endpoint must honour its context"
		if c.Abandon {
			mode = "abandons an endpoint that ignores its context"
		}
		if c.ReturnDefault {
			line("timeout: %s per attempt (%s); a timed-out attempt returns %s with no error (return_default), which is never retried", c.Timeout, mode, describeValue(c.Default, "its default value"))
		} else {
			line("timeout: %s per attempt (%s)", c.Timeout, mode)
		}
	}
	b.WriteString("  endpoint\n")
	b.WriteString("worst case per call:\n")
	fmt.Fprintf(&b, "  attempts: %d\n  backend calls: %d\n", wc.attempts, wc.attempts)
	switch {
	case !wc.bounded:
		b.WriteString("  longest time: unbounded (no per-attempt timeout or budget: the caller's deadline decides)\n")
	case wc.byBudget:
		fmt.Fprintf(&b, "  longest time: %s (the budget)\n", wc.longest)
	default:
		parts := []string{fmt.Sprintf("%d × %s", wc.attempts, wc.attempt)}
		if wc.attempts > 1 {
			parts = append(parts, fmt.Sprintf("%d × %s waits", wc.attempts-1, wc.maxDelay))
		}
		if wc.bulkhead > 0 {
			parts = append(parts, wc.bulkhead.String()+" bulkhead wait")
		}
		fmt.Fprintf(&b, "  longest time: %s (%s)\n", wc.longest.Round(time.Millisecond), strings.Join(parts, " + "))
		if wc.attempts > 1 {
			fmt.Fprintf(&b, "  waits: a Retry-After hint is waited out up to max_delay %s; without hints the waits total %s (longest time %s)\n",
				wc.maxDelay, wc.schedule.Round(time.Millisecond), wc.withoutHints().Round(time.Millisecond))
		}
	}
	if ws := s.Warnings(); len(ws) > 0 {
		b.WriteString("warnings:\n")
		for _, w := range ws {
			fmt.Fprintf(&b, "  %s\n", w)
		}
	}
	return b.String()
}

// explainWaits is how many waits Explain lists one by one.
const explainWaits = 4

// describeWaits describes the first waits of c's schedule and how many more
// follow, in the same time for any number of waits.
func describeWaits(c RetryConfig, waits int) string {
	if waits <= 0 {
		return "no waits"
	}
	var ds []string
	for k := 1; k <= min(waits, explainWaits); k++ {
		base := c.DelayFor(k, 0.5)
		if c.DisableJitter {
			ds = append(ds, base.String())
		} else {
			ds = append(ds, fmt.Sprintf("%s (%s-%s)", base, c.DelayFor(k, 0), c.DelayFor(k, jitterTop).Round(time.Millisecond)))
		}
	}
	out := "waits " + strings.Join(ds, ", ")
	if more := waits - explainWaits; more > 0 {
		out += fmt.Sprintf(" and %d more", more)
	}
	sch := c.schedule()
	return out + fmt.Sprintf(" (each at most %s, or a Retry-After hint up to that)", sch.maxDelay)
}

// filterNames describes an error filter: classes, listed errors and a
// predicate; "" when the filter is empty.
func filterNames(errs []error, pred func(error) bool, predName string) string {
	var on []string
	if len(errs) > 0 {
		on = append(on, fmt.Sprintf("%d listed errors", len(errs)))
	}
	if pred != nil {
		if d := errclass.Describe(pred); d != "" {
			on = append(on, d)
		} else {
			on = append(on, predName)
		}
	}
	return strings.Join(on, " or ")
}

// describeValue returns v as short text, or else what.
func describeValue(v any, what string) string {
	if v == nil {
		return "nil"
	}
	text := fmt.Sprintf("%v", v)
	if s, ok := v.(string); ok {
		text = strconv.Quote(s)
	}
	if len(text) > 40 {
		return what
	}
	return text
}
