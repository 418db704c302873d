package http_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
	resiliencehttp "github.com/resiliencekit/resilience/transport/http"
)

// discard is an Observer that drops every event.
var discard = middleware.ObserverFunc(func(context.Context, middleware.Event) {})

// recorder is an Observer that keeps every event it is given.
type recorder = endpointtest.Recorder

func TestDecodeHTTPError(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		body       string
		wantNil    bool
		wantDelay  time.Duration // lower bound for dates
		wantClass  func(error) bool
	}{
		{name: "ok is no error", status: 200, wantNil: true},
		{name: "redirect is no error", status: 304, wantNil: true},
		{name: "503 with seconds", status: 503, retryAfter: "7", body: "down", wantDelay: 7 * time.Second, wantClass: errclass.HTTP5xx},
		{name: "429 with a date", status: 429, retryAfter: date, wantDelay: 80 * time.Second, wantClass: errclass.HTTP429},
		{name: "500 without header", status: 500, wantClass: errclass.HTTP5xx},
		{name: "malformed header is no delay", status: 503, retryAfter: "soon", wantClass: errclass.HTTP5xx},
		{name: "negative seconds is no delay", status: 503, retryAfter: "-3", wantClass: errclass.HTTP5xx},
		{name: "long body is cut", status: 400, body: strings.Repeat("x", 2000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tt.body))}
			if tt.retryAfter != "" {
				r.Header.Set("Retry-After", tt.retryAfter)
			}
			err := resiliencehttp.DecodeHTTPError(r)
			if tt.wantNil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			he, ok := errors.AsType[*resiliencehttp.HTTPError](err)
			if !ok {
				t.Fatalf("err = %v, want *HTTPError", err)
			}
			if he.Status != tt.status {
				t.Errorf("Status = %d, want %d", he.Status, tt.status)
			}
			if tt.wantDelay == 0 && he.RetryAfter() != 0 {
				t.Errorf("RetryAfter = %v, want 0", he.RetryAfter())
			}
			if tt.wantDelay != 0 && (he.RetryAfter() < tt.wantDelay || he.RetryAfter() > tt.wantDelay+15*time.Second) {
				t.Errorf("RetryAfter = %v, want about %v", he.RetryAfter(), tt.wantDelay)
			}
			if len(he.Body) > 512 {
				t.Errorf("Body has %d bytes, want at most 512", len(he.Body))
			}
			if tt.wantClass != nil && !tt.wantClass(err) {
				t.Errorf("error class does not match %v", err)
			}
		})
	}
}

func TestEncodeHTTPError(t *testing.T) {
	openErr := func() error {
		reg := registry.New(registry.Config{})
		ep := middleware.CircuitBreaker("enc", middleware.BreakerConfig{FailureThreshold: 1, ResetTimeout: 90 * time.Second, Registry: reg, Observer: discard})(endpointtest.Script("err").Endpoint())
		ep(context.Background(), nil)
		_, err := ep(context.Background(), nil)
		return err
	}
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantRetry  string
	}{
		{"open circuit", openErr(), 503, "90"},
		{"rate limited", &middleware.RateLimitError{Delay: 1500 * time.Millisecond}, 429, "2"},
		{"bulkhead full", fmt.Errorf("x: %w", middleware.ErrBulkheadFull), 503, ""},
		{"adaptive limit", fmt.Errorf("x: %w", middleware.ErrLimited), 503, ""},
		{"throttled", fmt.Errorf("x: %w", middleware.ErrThrottled), 503, ""},
		{"too many keys", fmt.Errorf("%w: %w", middleware.ErrKeyRejected, registry.ErrTooManyKeys), 503, ""},
		{"invalid key", fmt.Errorf("%w: %w", middleware.ErrKeyRejected, registry.ErrInvalidName), 400, ""},
		{"timeout", fmt.Errorf("x: %w", middleware.ErrTimeout), 504, ""},
		{"upstream status", &resiliencehttp.HTTPError{Status: 502}, 502, ""},
		{"upstream 429 with delay", &resiliencehttp.HTTPError{Status: 429, Delay: 3 * time.Second}, 429, "3"},
		{"anything else", errors.New("boom"), 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			resiliencehttp.EncodeHTTPError(context.Background(), tt.err, rec)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
		})
	}
}

// TestRetryHonoursRetryAfter: the retry layer waits at least what the error
// asks for, gives up at once when that is more than MaxDelay or would pass the
// deadline.
func TestRetryHonoursRetryAfter(t *testing.T) {
	tests := []struct {
		name        string
		hint        time.Duration
		deadline    time.Duration
		wantCalls   int
		wantElapsed time.Duration
		wantCause   error
	}{
		{name: "waits the hint", hint: 5 * time.Second, wantCalls: 2, wantElapsed: 5 * time.Second},
		{name: "a shorter hint keeps the backoff", hint: 10 * time.Millisecond, wantCalls: 2, wantElapsed: time.Second},
		{name: "beyond MaxDelay gives up", hint: time.Hour, wantCalls: 1},
		{name: "beyond the deadline gives up", hint: 5 * time.Second, deadline: 3 * time.Second, wantCalls: 1, wantCause: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				upstream := &resiliencehttp.HTTPError{Status: 503, Delay: tt.hint}
				ep := endpointtest.New(endpointtest.Err(upstream), endpointtest.OK("ok"))
				retry := middleware.Retry(middleware.RetryConfig{MaxAttempts: 2, DisableJitter: true, MaxDelay: time.Minute, Observer: discard})(ep.Endpoint())
				ctx := context.Background()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				_, err := retry(ctx, nil)
				if got := ep.Calls(); got != tt.wantCalls {
					t.Errorf("calls = %d, want %d", got, tt.wantCalls)
				}
				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("elapsed = %v, want %v", got, tt.wantElapsed)
				}
				if tt.wantCalls == 1 && !errors.Is(err, upstream) {
					t.Errorf("err = %v, want the upstream error", err)
				}
				if tt.wantCause != nil && !errors.Is(err, tt.wantCause) {
					t.Errorf("err = %v, want it to match %v", err, tt.wantCause)
				}
			})
		})
	}
}

// failed is a go-kit business response (endpoint.Failer).
type failed struct{ err error }

func (f failed) Failed() error { return f.err }

var errBusiness = errors.New("insufficient funds")

// TestBusinessErrors: go-kit Failer responses are successes to the breaker
// and never retried, unless the config switch says otherwise; either way the
// response reaches the caller unchanged with a nil error.
func TestBusinessErrors(t *testing.T) {
	business := endpointtest.OK(failed{errBusiness})
	t.Run("retry default: not retried", func(t *testing.T) {
		ep := endpointtest.New(business)
		resp, err := middleware.Retry(middleware.RetryConfig{NoDelay: true})(ep.Endpoint())(context.Background(), nil)
		if err != nil || ep.Calls() != 1 || resp != (failed{errBusiness}) {
			t.Errorf("resp, err, calls = %v, %v, %d; want the response, nil, 1", resp, err, ep.Calls())
		}
	})
	t.Run("retry switch: retried, then the response", func(t *testing.T) {
		var events recorder
		ep := endpointtest.New(business)
		resp, err := middleware.Retry(middleware.RetryConfig{NoDelay: true, RetryBusinessErrors: true, Observer: &events})(ep.Endpoint())(context.Background(), nil)
		if err != nil || ep.Calls() != 3 || resp != (failed{errBusiness}) {
			t.Errorf("resp, err, calls = %v, %v, %d; want the response, nil, 3", resp, err, ep.Calls())
		}
		if n := len(events.Events()); n != 3 { // two retries and the give-up
			t.Errorf("events = %d, want 3", n)
		}
	})
	t.Run("retry switch: recovers", func(t *testing.T) {
		ep := endpointtest.New(business, endpointtest.OK("paid"))
		resp, err := middleware.Retry(middleware.RetryConfig{NoDelay: true, RetryBusinessErrors: true, Observer: discard})(ep.Endpoint())(context.Background(), nil)
		if err != nil || resp != "paid" || ep.Calls() != 2 {
			t.Errorf("resp, err, calls = %v, %v, %d; want paid, nil, 2", resp, err, ep.Calls())
		}
	})
	for _, count := range []bool{false, true} {
		t.Run(fmt.Sprintf("breaker CountBusinessErrors=%t", count), func(t *testing.T) {
			reg := registry.New(registry.Config{})
			ep := middleware.CircuitBreaker("biz", middleware.BreakerConfig{FailureThreshold: 2, Registry: reg, CountBusinessErrors: count, Observer: discard})(endpointtest.New(business).Endpoint())
			for range 2 {
				if resp, err := ep(context.Background(), nil); err != nil || resp != (failed{errBusiness}) {
					t.Fatalf("resp, err = %v, %v; want the response and nil", resp, err)
				}
			}
			b, _ := reg.Get("biz")
			want := registry.StateClosed
			if count {
				want = registry.StateOpen
			}
			if got := b.State(); got != want {
				t.Errorf("state = %s, want %s", got, want)
			}
		})
	}
}
