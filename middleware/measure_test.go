package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

func TestMeasure(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		ep      func(ctx context.Context, cancel context.CancelFunc) (any, error)
		outcome middleware.Outcome
		wantErr error
	}{
		{"success", func(context.Context, context.CancelFunc) (any, error) {
			time.Sleep(3 * time.Millisecond)
			return "ok", nil
		}, middleware.OutcomeSuccess, nil},
		{"failure", func(context.Context, context.CancelFunc) (any, error) {
			time.Sleep(3 * time.Millisecond)
			return nil, errBoom
		}, middleware.OutcomeFailure, errBoom},
		{"rejected by rate limit", func(context.Context, context.CancelFunc) (any, error) {
			time.Sleep(3 * time.Millisecond)
			return nil, fmt.Errorf("wrapped: %w", middleware.ErrRateLimited)
		}, middleware.OutcomeRejected, middleware.ErrRateLimited},
		{"rejected by breaker", func(context.Context, context.CancelFunc) (any, error) {
			time.Sleep(3 * time.Millisecond)
			return nil, &middleware.CircuitOpenError{Service: "api", State: registry.StateOpen}
		}, middleware.OutcomeRejected, middleware.ErrCircuitOpen},
		{"caller canceled", func(ctx context.Context, cancel context.CancelFunc) (any, error) {
			time.Sleep(3 * time.Millisecond)
			cancel()
			return nil, ctx.Err()
		}, middleware.OutcomeCanceled, context.Canceled},
		{"own deadline is a failure", func(context.Context, context.CancelFunc) (any, error) {
			time.Sleep(3 * time.Millisecond)
			return nil, context.DeadlineExceeded
		}, middleware.OutcomeFailure, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				ep := middleware.Measure(middleware.MeasureConfig{Name: "api", Observer: rec})(func(ctx context.Context, _ any) (any, error) {
					return tt.ep(ctx, cancel)
				})
				_, err := ep(ctx, nil)
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				events := rec.Events()
				if got, want := len(events), 1; got != want {
					t.Fatalf("events = %d, want %d", got, want)
				}
				e := events[0]
				if e.Kind != middleware.EventCall || e.Layer != "measure" || e.Name != "api" {
					t.Errorf("event = %v/%q/%q, want call/measure/api", e.Kind, e.Layer, e.Name)
				}
				if got, want := e.Outcome, tt.outcome; got != want {
					t.Errorf("outcome = %q, want %q", got, want)
				}
				if got, want := e.Latency, 3*time.Millisecond; got != want {
					t.Errorf("latency = %v, want %v", got, want)
				}
				if e.Err != err {
					t.Errorf("event err = %v, want the call's error %v", e.Err, err)
				}
			})
		})
	}
}

// TestMeasureRejectionOutcomes: Measure counts every layer's rejection as
// OutcomeRejected (the abandon cap's rejection matches ErrBulkheadFull), and a
// timeout or a plain error as OutcomeFailure. (It replaces the test of the
// removed RejectedBy.)
func TestMeasureRejectionOutcomes(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want middleware.Outcome
	}{
		{"nil", nil, middleware.OutcomeSuccess},
		{"plain", errors.New("x"), middleware.OutcomeFailure},
		{"breaker", &middleware.CircuitOpenError{Service: "api", State: registry.StateHalfOpen}, middleware.OutcomeRejected},
		{"rate limit", middleware.ErrRateLimited, middleware.OutcomeRejected},
		{"bulkhead", fmt.Errorf("w: %w", middleware.ErrBulkheadFull), middleware.OutcomeRejected},
		{"abandoned", middleware.ErrBulkheadFull, middleware.OutcomeRejected},
		{"timeout is no rejection", middleware.ErrTimeout, middleware.OutcomeFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			ep := middleware.Measure(middleware.MeasureConfig{Name: "api", Observer: rec})(func(context.Context, any) (any, error) {
				return nil, tt.err
			})
			_, _ = ep(t.Context(), nil)
			if ev := rec.Events(); len(ev) != 1 || ev[0].Outcome != tt.want {
				t.Errorf("events = %+v, want one with outcome %v", ev, tt.want)
			}
		})
	}
}

// LogObserver logs a measured success at Debug and a failure at Info, never
// at Warn: the layers inside already warned.
func TestLogObserverCallLevels(t *testing.T) {
	tests := []struct {
		name    string
		outcome middleware.Outcome
		level   string
	}{
		{"success", middleware.OutcomeSuccess, "DEBUG"},
		{"canceled", middleware.OutcomeCanceled, "DEBUG"},
		{"failure", middleware.OutcomeFailure, "INFO"},
		{"rejected", middleware.OutcomeRejected, "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			middleware.LogObserver(l).Observe(context.Background(), middleware.Event{Kind: middleware.EventCall, Layer: "measure", Name: "api", Outcome: tt.outcome, Latency: time.Millisecond})
			out := buf.String()
			if !strings.Contains(out, "level="+tt.level+" ") {
				t.Errorf("log = %q, want level %s", out, tt.level)
			}
			if !strings.Contains(out, "outcome="+tt.outcome.String()) || !strings.Contains(out, "latency=1ms") {
				t.Errorf("log = %q, want outcome and latency keys", out)
			}
		})
	}
}

// Observers returns a comparable value, so a breaker shared by name and
// built twice with the same composed observer reports each change once.
func TestObserversSubscribeOnce(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	obs := middleware.Observers(a, b)
	reg := registry.New(registry.Config{})
	cfg := middleware.BreakerConfig{FailureThreshold: 1, Registry: reg, Observer: obs}
	ep1 := middleware.CircuitBreaker("api", cfg)(func(context.Context, any) (any, error) { return nil, errors.New("down") })
	_ = middleware.CircuitBreaker("api", cfg)(func(context.Context, any) (any, error) { return nil, nil })
	_, _ = ep1(context.Background(), nil)
	for i, r := range []*recorder{a, b} {
		if got, want := len(r.Events()), 1; got != want {
			t.Errorf("observer %d: events = %d, want %d", i, got, want)
		}
	}
}
