package middleware_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
)

var (
	errRetryConn  = errors.New("connection refused")
	errRetryOther = errors.New("bad request")
)

// retryQuiet is an Observer that drops every event.
var retryQuiet = middleware.ObserverFunc(func(context.Context, middleware.Event) {})

// retryCall records the OnRetry calls.
type retryCall struct {
	err     error
	attempt int
}

type retryCallLog struct {
	mu    sync.Mutex
	calls []retryCall
}

func (l *retryCallLog) record(err error, attempt int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, retryCall{err, attempt})
}

func (l *retryCallLog) all() []retryCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]retryCall(nil), l.calls...)
}

// retryTimed wraps next and records, for each call, the fake time since start.
func retryTimed(start time.Time, next endpoint.Endpoint) (endpoint.Endpoint, func() []time.Duration) {
	var mu sync.Mutex
	var at []time.Duration
	ep := func(ctx context.Context, req any) (any, error) {
		mu.Lock()
		at = append(at, time.Since(start))
		mu.Unlock()
		return next(ctx, req)
	}
	return ep, func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), at...)
	}
}

func TestRetrySchedule(t *testing.T) {
	for _, tt := range loadRetrySchedules(t) {
		t.Run(tt.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				wantDelays := tt.delays(t)
				events := &retryEventLog{}
				retries := &retryCallLog{}
				cfg := tt.retryConfig(t)
				cfg.Observer = events
				cfg.OnRetry = retries.record
				script := endpointtest.Script("err")
				start := time.Now()
				ep, callTimes := retryTimed(start, script.Endpoint())

				_, err := middleware.Retry(cfg)(ep)(t.Context(), nil)

				var wantTotal time.Duration
				wantAt := []time.Duration{0}
				for _, d := range wantDelays {
					wantTotal += d
					wantAt = append(wantAt, wantTotal)
				}
				if got := time.Since(start); got != wantTotal {
					t.Errorf("elapsed = %v, want %v", got, wantTotal)
				}
				if got, want := fmt.Sprint(callTimes()), fmt.Sprint(wantAt); got != want {
					t.Errorf("calls at %s, want %s", got, want)
				}
				var gotDelays []time.Duration
				for _, e := range events.Events() {
					if e.Kind == middleware.EventRetry && !givesUp(e) {
						gotDelays = append(gotDelays, e.Wait)
					}
				}
				if got, want := fmt.Sprint(gotDelays), fmt.Sprint(wantDelays); got != want {
					t.Errorf("EventRetry delays = %s, want %s", got, want)
				}
				calls := retries.all()
				if got, want := len(calls), len(wantDelays); got != want {
					t.Errorf("OnRetry calls = %d, want %d", got, want)
				}
				for i, c := range calls {
					if c.attempt != i+1 {
						t.Errorf("OnRetry call %d: attempt = %d, want %d", i, c.attempt, i+1)
					}
				}
				wantCalls := len(wantDelays) + 1
				if got := script.Calls(); got != wantCalls {
					t.Errorf("calls = %d, want %d", got, wantCalls)
				}
				if !errors.Is(err, endpointtest.ErrScripted) {
					t.Errorf("err = %v, want it to match ErrScripted", err)
				}
				re, ok := errors.AsType[*middleware.RetryError](err)
				switch {
				case wantCalls == 1 && ok:
					t.Errorf("err = %v, want the endpoint's error unwrapped", err)
				case wantCalls > 1 && !ok:
					t.Errorf("err = %v, want a *RetryError", err)
				case ok && re.Attempts != wantCalls:
					t.Errorf("Attempts = %d, want %d", re.Attempts, wantCalls)
				}
			})
		})
	}
}

// TestRetryJitter checks 10,000 jittered waits made by the middleware: each
// within ±50% of its base delay, each really waited, and not all alike.
func TestRetryJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := &retryEventLog{}
		const calls, waits = 2500, 4 // 10,000 waits
		ep := middleware.Retry(middleware.RetryConfig{
			MaxAttempts: waits + 1,
			Delay:       time.Second,
			Backoff:     2,
			MaxDelay:    time.Hour,
			Observer:    events,
		})(endpointtest.Script("err").Endpoint())
		start := time.Now()
		for range calls {
			if _, err := ep(t.Context(), nil); err == nil {
				t.Fatal("err = nil, want an error")
			}
		}
		elapsed := time.Since(start)

		var total time.Duration
		distinct := make(map[int]map[time.Duration]bool)
		n := 0
		for _, e := range events.Events() {
			if e.Kind != middleware.EventRetry || givesUp(e) {
				continue
			}
			n++
			total += e.Wait
			base := time.Second << (e.Attempt - 1)
			if e.Wait < base/2 || e.Wait >= base*3/2 {
				t.Fatalf("attempt %d: delay %v, want in [%v, %v)", e.Attempt, e.Wait, base/2, base*3/2)
			}
			if distinct[e.Attempt] == nil {
				distinct[e.Attempt] = make(map[time.Duration]bool)
			}
			distinct[e.Attempt][e.Wait] = true
		}
		if n != calls*waits {
			t.Errorf("EventRetry count = %d, want %d", n, calls*waits)
		}
		if elapsed != total {
			t.Errorf("elapsed = %v, want the sum of the reported delays %v", elapsed, total)
		}
		for attempt := 1; attempt <= waits; attempt++ {
			if got, want := len(distinct[attempt]), calls/2; got < want {
				t.Errorf("attempt %d: %d distinct delays, want at least %d", attempt, got, want)
			}
		}
	})
}

func TestRetryMaxAttempts(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		script      []string
		wantCalls   int
		wantErr     bool
	}{
		{"default is 3", 0, []string{"err"}, 3, true},
		{"one attempt", 1, []string{"err"}, 1, true},
		{"two attempts", 2, []string{"err"}, 2, true},
		{"five attempts", 5, []string{"err"}, 5, true},
		{"success on the last attempt", 3, []string{"err", "err", "ok"}, 3, false},
		{"success on the second attempt", 5, []string{"err", "ok"}, 2, false},
		{"success at once", 5, []string{"ok"}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				script := endpointtest.Script(tt.script...)
				counter := endpointtest.Count(script.Endpoint())
				ep := middleware.Retry(middleware.RetryConfig{
					MaxAttempts: tt.maxAttempts,
					NoDelay:     true,
					Observer:    retryQuiet,
				})(counter.Endpoint())
				start := time.Now()

				resp, err := ep(t.Context(), nil)

				if got := counter.Calls(); got != tt.wantCalls {
					t.Errorf("calls = %d, want %d", got, tt.wantCalls)
				}
				if got := time.Since(start); got != 0 {
					t.Errorf("elapsed = %v, want 0 with NoDelay", got)
				}
				if !tt.wantErr {
					if err != nil || resp != "ok" {
						t.Errorf("Retry() = %v, %v, want ok, nil", resp, err)
					}
					return
				}
				if !errors.Is(err, endpointtest.ErrScripted) {
					t.Fatalf("err = %v, want it to match ErrScripted", err)
				}
				re, ok := errors.AsType[*middleware.RetryError](err)
				if tt.wantCalls == 1 {
					if err != endpointtest.ErrScripted {
						t.Errorf("err = %#v, want the endpoint's error itself", err)
					}
					return
				}
				if !ok {
					t.Fatalf("err = %v, want a *RetryError", err)
				}
				if re.Attempts != tt.wantCalls || re.Cause != nil || re.Err != endpointtest.ErrScripted {
					t.Errorf("RetryError = %+v, want {Attempts: %d, Err: ErrScripted, Cause: nil}", re, tt.wantCalls)
				}
			})
		})
	}
}

func TestRetryFilter(t *testing.T) {
	isOther := func(err error) bool { return errors.Is(err, errRetryOther) }
	never := func(error) bool { return false }
	errThird := errors.New("third")
	tests := []struct {
		name      string
		retryOn   []error
		retryIf   func(error) bool
		err       error
		wantCalls int
	}{
		{"default retries every error", nil, nil, errRetryOther, 3},
		{"empty RetryOn retries every error", []error{}, nil, errRetryOther, 3},
		{"RetryOn match", []error{errRetryConn}, nil, errRetryConn, 3},
		{"RetryOn match wrapped", []error{errRetryConn}, nil, fmt.Errorf("dial: %w", errRetryConn), 3},
		{"RetryOn second entry", []error{errRetryOther, errRetryConn}, nil, errRetryConn, 3},
		{"RetryOn no match", []error{errRetryConn}, nil, errRetryOther, 1},
		{"RetryIf true", nil, isOther, errRetryOther, 3},
		{"RetryIf false", nil, isOther, errRetryConn, 1},
		{"RetryIf never", nil, never, errRetryConn, 1},
		{"both, RetryOn matches", []error{errRetryConn}, isOther, errRetryConn, 3},
		{"both, RetryIf matches", []error{errRetryConn}, isOther, errRetryOther, 3},
		{"both, neither matches", []error{errRetryConn}, isOther, errThird, 1},
		{"RetryOn DeadlineExceeded matches ErrTimeout", []error{context.DeadlineExceeded}, nil, middleware.ErrTimeout, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := endpointtest.New(endpointtest.Err(tt.err))
			ep := middleware.Retry(middleware.RetryConfig{
				NoDelay:  true,
				RetryOn:  tt.retryOn,
				RetryIf:  tt.retryIf,
				Observer: retryQuiet,
			})(script.Endpoint())

			_, err := ep(t.Context(), nil)

			if got := script.Calls(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want it to match %v", err, tt.err)
			}
			if _, ok := errors.AsType[*middleware.RetryError](err); ok != (tt.wantCalls > 1) {
				t.Errorf("err = %v: *RetryError %v, want %v", err, ok, tt.wantCalls > 1)
			}
		})
	}
}

// TestRetryNotRetried covers the errors Retry never retries, whatever
// RetryOn and RetryIf say, on the first attempt and on a later one.
func TestRetryNotRetried(t *testing.T) {
	always := func(error) bool { return true }
	tests := []struct {
		name string
		err  error
	}{
		{"context.Canceled", context.Canceled},
		{"wrapped context.Canceled", fmt.Errorf("query: %w", context.Canceled)},
		{"ErrCircuitOpen", fmt.Errorf("embedding_api: %w", middleware.ErrCircuitOpen)},
		{"ErrRateLimited", fmt.Errorf("limiter: %w", middleware.ErrRateLimited)},
		{"ErrBulkheadFull", fmt.Errorf("pool: %w", middleware.ErrBulkheadFull)},
		{"abandon cap (ErrBulkheadFull)", fmt.Errorf("timeout: %w", middleware.ErrBulkheadFull)},
	}
	for _, tt := range tests {
		cfg := middleware.RetryConfig{
			MaxAttempts: 5,
			NoDelay:     true,
			RetryOn:     []error{errRetryConn, tt.err, context.Canceled, middleware.ErrCircuitOpen, middleware.ErrRateLimited, middleware.ErrBulkheadFull},
			RetryIf:     always,
			Observer:    retryQuiet,
		}
		t.Run(tt.name+" first", func(t *testing.T) {
			script := endpointtest.New(endpointtest.Err(tt.err), endpointtest.OK("ok"))
			_, err := middleware.Retry(cfg)(script.Endpoint())(t.Context(), nil)
			if got := script.Calls(); got != 1 {
				t.Errorf("calls = %d, want 1", got)
			}
			if err != tt.err {
				t.Errorf("err = %v, want the endpoint's error itself", err)
			}
		})
		t.Run(tt.name+" later", func(t *testing.T) {
			script := endpointtest.New(endpointtest.Err(errRetryConn), endpointtest.Err(tt.err), endpointtest.OK("ok"))
			_, err := middleware.Retry(cfg)(script.Endpoint())(t.Context(), nil)
			if got := script.Calls(); got != 2 {
				t.Errorf("calls = %d, want 2", got)
			}
			re, ok := errors.AsType[*middleware.RetryError](err)
			if !ok {
				t.Fatalf("err = %v, want a *RetryError", err)
			}
			if re.Attempts != 2 || re.Err != tt.err || re.Cause != nil {
				t.Errorf("RetryError = %+v, want {Attempts: 2, Err: %v, Cause: nil}", re, tt.err)
			}
			if errors.Is(err, errRetryConn) {
				t.Errorf("err = %v matches the first attempt's error, want only the last", err)
			}
		})
	}
}

func TestRetryCancelDuringWait(t *testing.T) {
	tests := []struct {
		name      string
		delay     time.Duration
		cancelAt  time.Duration
		wantCalls int
	}{
		{"during the first wait", 10 * time.Second, 1500 * time.Millisecond, 1},
		{"at the start of the first wait", 10 * time.Second, time.Nanosecond, 1},
		{"during the second wait", time.Second, 2 * time.Second, 2},
		{"just before the second attempt", time.Second, 3*time.Second - time.Nanosecond, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				events := &retryEventLog{}
				script := endpointtest.Script("err")
				ep := middleware.Retry(middleware.RetryConfig{
					MaxAttempts:   5,
					Delay:         tt.delay,
					DisableJitter: true,
					Observer:      events,
				})(script.Endpoint())
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				time.AfterFunc(tt.cancelAt, cancel)
				start := time.Now()

				_, err := ep(ctx, nil)

				if got := time.Since(start); got != tt.cancelAt {
					t.Errorf("elapsed = %v, want %v", got, tt.cancelAt)
				}
				if got := script.Calls(); got != tt.wantCalls {
					t.Errorf("calls = %d, want %d", got, tt.wantCalls)
				}
				if !errors.Is(err, context.Canceled) || !errors.Is(err, endpointtest.ErrScripted) {
					t.Errorf("err = %v, want it to match context.Canceled and ErrScripted", err)
				}
				re, ok := errors.AsType[*middleware.RetryError](err)
				if !ok {
					t.Fatalf("err = %v, want a *RetryError", err)
				}
				if re.Attempts != tt.wantCalls || re.Cause != context.Canceled {
					t.Errorf("RetryError = %+v, want {Attempts: %d, Cause: context.Canceled}", re, tt.wantCalls)
				}
				all := events.Events()
				if last := all[len(all)-1]; !givesUp(last) || last.Attempt != tt.wantCalls {
					t.Errorf("last event = %+v, want Retry giving up (EventRetry with a *RetryError) after %d attempts", last, tt.wantCalls)
				}
			})
		})
	}
}

// TestRetryDeadline checks that Retry never starts a wait that would reach
// the context's deadline. With delays 1s, 2s, 4s, attempts start at 0s, 1s,
// 3s and 7s.
func TestRetryDeadline(t *testing.T) {
	tests := []struct {
		name         string
		timeout      time.Duration
		wantCalls    int
		wantElapsed  time.Duration
		wantRetries  int
		wantDeadline bool // whether the result matches context.DeadlineExceeded
	}{
		{"shorter than the first delay", 500 * time.Millisecond, 1, 0, 0, true},
		{"equal to the first delay", time.Second, 1, 0, 0, true},
		{"just past the first delay", time.Second + 1, 2, time.Second, 1, true},
		{"shorter than the third delay", 5 * time.Second, 3, 3 * time.Second, 2, true},
		{"ends exactly when the third wait would", 7 * time.Second, 3, 3 * time.Second, 2, true},
		{"just past the third wait", 7*time.Second + 1, 4, 7 * time.Second, 3, false},
		{"long", time.Hour, 4, 7 * time.Second, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				events := &retryEventLog{}
				retries := &retryCallLog{}
				script := endpointtest.Script("err")
				ep := middleware.Retry(middleware.RetryConfig{
					MaxAttempts:   4,
					Delay:         time.Second,
					DisableJitter: true,
					OnRetry:       retries.record,
					Observer:      events,
				})(script.Endpoint())
				ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
				defer cancel()
				start := time.Now()

				_, err := ep(ctx, nil)

				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("elapsed = %v, want %v", got, tt.wantElapsed)
				}
				if got := script.Calls(); got != tt.wantCalls {
					t.Errorf("calls = %d, want %d", got, tt.wantCalls)
				}
				if got := len(retries.all()); got != tt.wantRetries {
					t.Errorf("OnRetry calls = %d, want %d", got, tt.wantRetries)
				}
				if !errors.Is(err, endpointtest.ErrScripted) {
					t.Errorf("err = %v, want it to match ErrScripted", err)
				}
				if got := errors.Is(err, context.DeadlineExceeded); got != tt.wantDeadline {
					t.Errorf("errors.Is(%v, context.DeadlineExceeded) = %v, want %v", err, got, tt.wantDeadline)
				}
				re, ok := errors.AsType[*middleware.RetryError](err)
				if !ok {
					t.Fatalf("err = %v, want a *RetryError", err)
				}
				if re.Attempts != tt.wantCalls {
					t.Errorf("Attempts = %d, want %d", re.Attempts, tt.wantCalls)
				}
				if tt.wantDeadline && re.Cause != context.DeadlineExceeded {
					t.Errorf("Cause = %v, want context.DeadlineExceeded", re.Cause)
				}
				var kinds []middleware.EventKind
				all := events.Events()
				for _, e := range all {
					kinds = append(kinds, e.Kind)
				}
				if n := len(all); n != tt.wantRetries+1 || !givesUp(all[n-1]) {
					t.Errorf("events = %v, want %d retries then giving up (an EventRetry with a *RetryError)", kinds, tt.wantRetries)
				}
			})
		})
	}
}

// retryHangFor returns an endpoint that gives each attempt its own timeout d, as
// an inner Timeout layer would, and hangs until the attempt's context ends.
func retryHangFor(d time.Duration) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		<-ctx.Done()
		return nil, ctx.Err()
	}
}

func TestRetryAttemptDeadline(t *testing.T) {
	tests := []struct {
		name        string
		callerLimit time.Duration // 0: no caller deadline
		attemptLim  time.Duration
		wantCalls   int
		wantElapsed time.Duration
		wantRetry   bool // whether the result is a *RetryError
	}{
		// 100ms + 1s + 100ms + 2s + 100ms.
		{"attempt timeout retried while the caller waits", 0, 100 * time.Millisecond, 3, 3300 * time.Millisecond, true},
		{"caller deadline first: not retried", 50 * time.Millisecond, time.Minute, 1, 50 * time.Millisecond, false},
		// 100ms + 1s, then the second attempt runs into the caller's 1.5s.
		{"caller deadline during a later attempt", 1500 * time.Millisecond, 100 * time.Millisecond, 2, 1200 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				counter := endpointtest.Count(retryHangFor(tt.attemptLim))
				ep := middleware.Retry(middleware.RetryConfig{
					Delay:         time.Second,
					DisableJitter: true,
					Observer:      retryQuiet,
				})(counter.Endpoint())
				ctx := t.Context()
				if tt.callerLimit > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.callerLimit)
					defer cancel()
				}
				start := time.Now()

				_, err := ep(ctx, nil)

				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("elapsed = %v, want %v", got, tt.wantElapsed)
				}
				if got := counter.Calls(); got != tt.wantCalls {
					t.Errorf("calls = %d, want %d", got, tt.wantCalls)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want it to match context.DeadlineExceeded", err)
				}
				re, ok := errors.AsType[*middleware.RetryError](err)
				if ok != tt.wantRetry {
					t.Fatalf("err = %v: *RetryError %v, want %v", err, ok, tt.wantRetry)
				}
				if ok && re.Attempts != tt.wantCalls {
					t.Errorf("Attempts = %d, want %d", re.Attempts, tt.wantCalls)
				}
			})
		})
	}
}

// TestRetryCallerDeadlineLater checks that an attempt ending after the
// caller's deadline passed stops retrying, with both errors matchable.
func TestRetryCallerDeadlineLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Attempt 1 fails at once; attempt 2 stalls past the caller's
		// deadline, ignoring ctx, then fails.
		calls := 0
		ep := middleware.Retry(middleware.RetryConfig{
			Delay:         time.Second,
			DisableJitter: true,
			Observer:      retryQuiet,
		})(func(ctx context.Context, _ any) (any, error) {
			calls++
			if calls == 2 {
				time.Sleep(5 * time.Second)
			}
			return nil, errRetryConn
		})
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		start := time.Now()

		_, err := ep(ctx, nil)

		if got, want := time.Since(start), 6*time.Second; got != want {
			t.Errorf("elapsed = %v, want %v", got, want)
		}
		if calls != 2 {
			t.Errorf("calls = %d, want 2", calls)
		}
		re, ok := errors.AsType[*middleware.RetryError](err)
		if !ok {
			t.Fatalf("err = %v, want a *RetryError", err)
		}
		if re.Attempts != 2 || re.Err != errRetryConn || re.Cause != context.DeadlineExceeded {
			t.Errorf("RetryError = %+v, want {Attempts: 2, Err: errRetryConn, Cause: context.DeadlineExceeded}", re)
		}
	})
}

func TestRetryOnRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errA, errB, errC := errors.New("a"), errors.New("b"), errors.New("c")
		retries := &retryCallLog{}
		script := endpointtest.New(endpointtest.Err(errA), endpointtest.Err(errB), endpointtest.Err(errC))
		ep := middleware.Retry(middleware.RetryConfig{
			OnRetry:  retries.record,
			Observer: retryQuiet,
		})(script.Endpoint())

		_, err := ep(t.Context(), nil)

		want := []retryCall{{errA, 1}, {errB, 2}}
		got := retries.all()
		if len(got) != len(want) {
			t.Fatalf("OnRetry calls = %v, want %v", got, want)
		}
		for i := range want {
			if got[i].err != want[i].err || got[i].attempt != want[i].attempt {
				t.Errorf("OnRetry call %d = (%v, %d), want (%v, %d)", i, got[i].err, got[i].attempt, want[i].err, want[i].attempt)
			}
		}
		if !errors.Is(err, errC) {
			t.Errorf("err = %v, want it to match the last error", err)
		}
	})
}

func TestRetryEvents(t *testing.T) {
	errA, errB, errC := errors.New("a"), errors.New("b"), errors.New("c")
	tests := []struct {
		name   string
		script []endpointtest.Step
		want   []middleware.Event
	}{
		{
			name:   "exhausted",
			script: []endpointtest.Step{endpointtest.Err(errA), endpointtest.Err(errB), endpointtest.Err(errC)},
			want: []middleware.Event{
				{Kind: middleware.EventRetry, Attempt: 1, Wait: time.Second, Err: errA},
				{Kind: middleware.EventRetry, Attempt: 2, Wait: 2 * time.Second, Err: errB},
				{Kind: middleware.EventRetry, Attempt: 3, Err: errC}, // gives up: Err a *RetryError of errC
			},
		},
		{
			name:   "success after a retry",
			script: []endpointtest.Step{endpointtest.Err(errA), endpointtest.OK("ok")},
			want: []middleware.Event{
				{Kind: middleware.EventRetry, Attempt: 1, Wait: time.Second, Err: errA},
			},
		},
		{
			name:   "later attempt not retryable",
			script: []endpointtest.Step{endpointtest.Err(errA), endpointtest.Err(middleware.ErrCircuitOpen)},
			want: []middleware.Event{
				{Kind: middleware.EventRetry, Attempt: 1, Wait: time.Second, Err: errA},
				{Kind: middleware.EventRetry, Attempt: 2, Err: middleware.ErrCircuitOpen}, // gives up
			},
		},
		{"success", []endpointtest.Step{endpointtest.OK("ok")}, nil},
		{"first attempt not retryable", []endpointtest.Step{endpointtest.Err(context.Canceled)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				events := &retryEventLog{}
				ep := middleware.Retry(middleware.RetryConfig{
					Name:          "embedding_api",
					DisableJitter: true,
					Observer:      events,
				})(endpointtest.New(tt.script...).Endpoint())

				_, _ = ep(t.Context(), nil)

				got := events.Events()
				if len(got) != len(tt.want) {
					t.Fatalf("events = %+v, want %+v", got, tt.want)
				}
				for i, want := range tt.want {
					want.Layer, want.Name = "retry", "embedding_api"
					g := got[i]
					if want.Wait == 0 { // giving up: Err is a *RetryError of the attempts and the last error
						re, ok := errors.AsType[*middleware.RetryError](g.Err)
						if !ok || re.Attempts != want.Attempt || re.Err != want.Err {
							t.Errorf("event %d: Err = %v, want a *RetryError of %d attempts, last error %v", i, g.Err, want.Attempt, want.Err)
						}
						g.Err = want.Err
					}
					if g != want {
						t.Errorf("event %d = %+v, want %+v", i, got[i], want)
					}
				}
			})
		})
	}
}

// retryLogLines decodes the JSON log lines in buf.
func retryLogLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestRetryLogger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		ep := middleware.Retry(middleware.RetryConfig{
			Name:     "embedding_api",
			NoDelay:  true,
			Observer: middleware.LogObserver(slog.New(slog.NewJSONHandler(&buf, nil))),
		})(endpointtest.Script("err").Endpoint())

		_, _ = ep(t.Context(), nil)

		lines := retryLogLines(t, &buf)
		want := []struct {
			level, event string
			attempt      float64
		}{{"WARN", "retry", 1}, {"WARN", "retry", 2}, {"ERROR", "retry", 3}} // the last: giving up
		if len(lines) != len(want) {
			t.Fatalf("log lines = %v, want %d", lines, len(want))
		}
		for i, w := range want {
			l := lines[i]
			if l["level"] != w.level || l["event"] != w.event || l["attempt"] != w.attempt || l["layer"] != "retry" || l["name"] != "embedding_api" {
				t.Errorf("log line %d = %v, want level %s, event %s, attempt %v", i, l, w.level, w.event, w.attempt)
			}
		}
	})
}

// TestRetryZeroConfig checks that RetryConfig{} works with the guide's
// defaults: three attempts, jittered waits around 1s and 2s, and logging to
// slog.Default.
func TestRetryZeroConfig(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	synctest.Test(t, func(t *testing.T) {
		script := endpointtest.Script("err", "err", "ok")
		ep := middleware.Retry(middleware.RetryConfig{})(script.Endpoint())
		start := time.Now()

		resp, err := ep(t.Context(), nil)

		if err != nil || resp != "ok" {
			t.Errorf("Retry() = %v, %v, want ok, nil", resp, err)
		}
		if got := script.Calls(); got != 3 {
			t.Errorf("calls = %d, want 3", got)
		}
		// Waits in [0.5s, 1.5s) and [1s, 3s).
		if got := time.Since(start); got < 1500*time.Millisecond || got >= 4500*time.Millisecond {
			t.Errorf("elapsed = %v, want in [1.5s, 4.5s)", got)
		}
	})
	if got := len(retryLogLines(t, &buf)); got != 2 {
		t.Errorf("log lines = %d, want 2", got)
	}
}

func TestRetryConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.RetryConfig
		want []string // paths, each "retry.<path>"
	}{
		{"negative max attempts", middleware.RetryConfig{MaxAttempts: -1}, []string{"max_attempts"}},
		{"negative delay", middleware.RetryConfig{Delay: -time.Second}, []string{"delay"}},
		{"no delay with a delay", middleware.RetryConfig{NoDelay: true, Delay: time.Second}, []string{"delay"}},
		{"backoff below 1", middleware.RetryConfig{Backoff: 0.5}, []string{"backoff"}},
		{"negative backoff", middleware.RetryConfig{Backoff: -2}, []string{"backoff"}},
		{"NaN backoff", middleware.RetryConfig{Backoff: math.NaN()}, []string{"backoff"}},
		{"+Inf backoff", middleware.RetryConfig{Backoff: math.Inf(1)}, []string{"backoff"}},
		{"-Inf backoff", middleware.RetryConfig{Backoff: math.Inf(-1)}, []string{"backoff"}},
		{"negative max delay", middleware.RetryConfig{MaxDelay: -time.Second}, []string{"max_delay"}},
		{"max delay below delay", middleware.RetryConfig{Delay: 2 * time.Second, MaxDelay: time.Second}, []string{"max_delay"}},
		{"max delay below the default delay", middleware.RetryConfig{MaxDelay: 500 * time.Millisecond}, []string{"max_delay"}},
		{"nil RetryOn entry", middleware.RetryConfig{RetryOn: []error{errRetryConn, nil}}, []string{"retry_on[1]"}},
		{
			"every problem at once",
			middleware.RetryConfig{MaxAttempts: -3, Delay: -1, Backoff: 0.1, MaxDelay: -1, RetryOn: []error{nil}},
			[]string{"max_attempts", "delay", "backoff", "max_delay", "retry_on[0]"},
		},
	}
	fields := map[string]string{
		"max_attempts": "MaxAttempts", "delay": "Delay", "backoff": "Backoff",
		"max_delay": "MaxDelay", "retry_on[0]": "RetryOn[0]", "retry_on[1]": "RetryOn[1]",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want an error matching ErrInvalidConfig", err)
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("Validate() = %T, want an errors.Join", err)
			}
			var got []string
			for _, e := range joined.Unwrap() {
				ce, ok := errors.AsType[*middleware.ConfigError](e)
				if !ok {
					t.Fatalf("problem %v is a %T, want a *ConfigError", e, e)
				}
				got = append(got, ce.Path)
				path := strings.TrimPrefix(ce.Path, "retry.")
				if wantField := "RetryConfig." + fields[path]; ce.Field != wantField {
					t.Errorf("Field = %q, want %q", ce.Field, wantField)
				}
				if msg := ce.Error(); !strings.Contains(msg, ce.Path) || !strings.Contains(msg, ce.Field) {
					t.Errorf("message %q does not name %s and %s", msg, ce.Path, ce.Field)
				}
			}
			var want []string
			for _, p := range tt.want {
				want = append(want, "retry."+p)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("paths = %v, want %v", got, want)
			}
		})
	}
}

func TestRetryConfigValidateOK(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.RetryConfig
	}{
		{"zero", middleware.RetryConfig{}},
		{"guide", middleware.RetryConfig{MaxAttempts: 3, Delay: time.Second, Backoff: 2}},
		{"no delay", middleware.RetryConfig{NoDelay: true}},
		{"no delay with a max delay", middleware.RetryConfig{NoDelay: true, MaxDelay: time.Millisecond}},
		{"constant", middleware.RetryConfig{Backoff: 1}},
		{"one attempt", middleware.RetryConfig{MaxAttempts: 1}},
		{"delay beyond the default cap", middleware.RetryConfig{Delay: 2 * time.Minute}},
		{"max delay equal to delay", middleware.RetryConfig{Delay: time.Second, MaxDelay: time.Second}},
		{"max delay equal to the default delay", middleware.RetryConfig{MaxDelay: time.Second}},
		{"filters", middleware.RetryConfig{RetryOn: []error{errRetryConn}, RetryIf: func(error) bool { return true }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestRetryPanicsOnInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.RetryConfig
	}{
		{"negative max attempts", middleware.RetryConfig{MaxAttempts: -1}},
		{"backoff below 1", middleware.RetryConfig{Backoff: 0.9}},
		{"max delay below delay", middleware.RetryConfig{Delay: time.Minute, MaxDelay: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				err, ok := recover().(error)
				if !ok || !errors.Is(err, middleware.ErrInvalidConfig) {
					t.Errorf("Retry panicked with %v, want an error matching ErrInvalidConfig", err)
				}
			}()
			middleware.Retry(tt.cfg)
			t.Error("Retry did not panic")
		})
	}
}

func TestRetryNilEndpointPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Retry(cfg)(nil) did not panic")
		}
	}()
	middleware.Retry(middleware.RetryConfig{})(nil)
}

func TestRetryPanicPropagates(t *testing.T) {
	tests := []struct {
		name      string
		script    []string
		wantCalls int
	}{
		{"first attempt", []string{"panic:boom"}, 1},
		{"second attempt", []string{"err", "panic:boom"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := endpointtest.Script(tt.script...)
			ep := middleware.Retry(middleware.RetryConfig{NoDelay: true, Observer: retryQuiet})(script.Endpoint())
			func() {
				defer func() {
					if got := recover(); got != "boom" {
						t.Errorf("recovered %v, want boom", got)
					}
				}()
				_, _ = ep(t.Context(), nil)
			}()
			if got := script.Calls(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestRetryResponse checks that the response is passed through with the
// error, from the last attempt.
func TestRetryResponse(t *testing.T) {
	tests := []struct {
		name    string
		steps   []endpointtest.Step
		wantErr error
		want    any
	}{
		{"success", []endpointtest.Step{{Kind: endpointtest.KindErr, Response: "r1", Err: errRetryConn}, endpointtest.OK("r2")}, nil, "r2"},
		{"exhausted", []endpointtest.Step{{Kind: endpointtest.KindErr, Response: "r1", Err: errRetryConn}, {Kind: endpointtest.KindErr, Response: "r2", Err: errRetryConn}}, errRetryConn, "r2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Scripted drops the response of an error step: play it here.
			calls := 0
			ep := middleware.Retry(middleware.RetryConfig{MaxAttempts: 2, NoDelay: true, Observer: retryQuiet})(
				func(context.Context, any) (any, error) {
					st := tt.steps[calls]
					calls++
					return st.Response, st.Err
				})
			resp, err := ep(t.Context(), nil)
			if resp != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Retry() = %v, %v, want %v, %v", resp, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRetryConcurrent(t *testing.T) {
	counter := endpointtest.Count(endpointtest.Script("err", "ok", "err", "ok").Endpoint())
	ep := middleware.Retry(middleware.RetryConfig{MaxAttempts: 10, NoDelay: true, Observer: retryQuiet})(counter.Endpoint())
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := ep(t.Context(), nil); err != nil {
				t.Errorf("err = %v, want nil", err)
			}
		})
	}
	wg.Wait()
	if got := counter.Calls(); got < 50 {
		t.Errorf("calls = %d, want at least 50", got)
	}
}

func TestRetrySuccessAllocs(t *testing.T) {
	ep := middleware.Retry(middleware.RetryConfig{})(endpoint.Nop)
	ctx := t.Context()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := ep(ctx, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocs per call = %v, want 0", allocs)
	}
}

// TestRetryOnClasses: error classes (errclass.Set.Match, as the file
// format's retry_on names them) given as RetryIf choose what is retried.
func TestRetryOnClasses(t *testing.T) {
	tests := []struct {
		name      string
		classes   []string
		err       error
		wantCalls int
	}{
		{"timeout class retries a deadline", []string{"timeout"}, context.DeadlineExceeded, 3},
		{"timeout class does not retry other errors", []string{"timeout"}, errors.New("boom"), 1},
		{"either class", []string{"connection", "timeout"}, io.ErrUnexpectedEOF, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := endpointtest.New(endpointtest.Err(tt.err))
			var classes errclass.Set
			retryIf, err := classes.Match(tt.classes...)
			if err != nil {
				t.Fatal(err)
			}
			retry := middleware.Retry(middleware.RetryConfig{NoDelay: true, RetryIf: retryIf, Observer: discard})(ep.Endpoint())
			if _, err := retry(context.Background(), nil); !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			if got := ep.Calls(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestRetryAfterHintPastMaxDelay: a Retry-After hint longer than MaxDelay
// stops retrying. After a first attempt, that returns the attempt's own
// error unchanged (no *RetryError, no giving-up event), as Retry's and
// RetryError's docs say of a first attempt that is not retried; after later
// attempts, a *RetryError of the attempts made.
func TestRetryAfterHintPastMaxDelay(t *testing.T) {
	tests := []struct {
		name         string
		failFirst    int // attempts with a short hint before the long one
		wantAttempts int // 0: the error comes back unchanged
		wantCalls    int
	}{
		{name: "first attempt", failFirst: 0, wantAttempts: 0, wantCalls: 1},
		{name: "second attempt", failFirst: 1, wantAttempts: 2, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				long := &hintError{after: time.Hour}
				short := &hintError{after: time.Second}
				calls := 0
				var rec recorder
				e := middleware.Retry(middleware.RetryConfig{MaxAttempts: 5, Delay: time.Second, MaxDelay: time.Minute, Observer: &rec})(
					func(context.Context, any) (any, error) {
						calls++
						if calls <= tt.failFirst {
							return nil, short
						}
						return nil, long
					})
				_, err := e(t.Context(), nil)
				if calls != tt.wantCalls {
					t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
				}
				re, isRetry := errors.AsType[*middleware.RetryError](err)
				switch {
				case tt.wantAttempts == 0:
					if err != error(long) {
						t.Errorf("err = %v, want the attempt's own error unchanged", err)
					}
					for _, ev := range rec.Events() {
						if givesUp(ev) {
							t.Errorf("event %+v, want no giving up", ev)
						}
					}
				case !isRetry || re.Attempts != tt.wantAttempts || !errors.Is(err, long):
					t.Errorf("err = %v, want a *RetryError of %d attempts matching the last error", err, tt.wantAttempts)
				}
			})
		})
	}
}
