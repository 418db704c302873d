package endpointtest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
)

func TestCounterCounts(t *testing.T) {
	ok := endpointtest.OK("ok")
	tests := []struct {
		name                   string
		steps                  []endpointtest.Step
		wantErrors, wantPanics int
		wantLast               error
	}{
		{name: "no calls", steps: nil},
		{name: "all ok", steps: []endpointtest.Step{ok, ok, ok}},
		{name: "errors", steps: []endpointtest.Step{endpointtest.Err(errA), ok, endpointtest.Err(errB), ok},
			wantErrors: 2, wantLast: errB},
		{name: "success keeps last error", steps: []endpointtest.Step{endpointtest.Err(errA), ok, ok},
			wantErrors: 1, wantLast: errA},
		{name: "panics", steps: []endpointtest.Step{endpointtest.Panic("x"), ok, endpointtest.Panic("y")},
			wantPanics: 2},
		{name: "panic is not an error", steps: []endpointtest.Step{endpointtest.Err(errA), endpointtest.Panic(errB)},
			wantErrors: 1, wantPanics: 1, wantLast: errA},
		{name: "mixed", steps: []endpointtest.Step{endpointtest.Err(errA), endpointtest.Panic("p"), ok, endpointtest.Err(errB), endpointtest.Panic("q")},
			wantErrors: 2, wantPanics: 2, wantLast: errB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := endpointtest.Count(endpointtest.New(tt.steps...).Endpoint())
			if err := c.LastErr(); err != nil {
				t.Errorf("LastErr before any call = %v, want nil", err)
			}
			for range tt.steps {
				func() {
					defer func() { _ = recover() }()
					_, _ = c.Call(t.Context(), nil)
				}()
			}
			if got, want := c.Calls(), len(tt.steps); got != want {
				t.Errorf("calls = %d, want %d", got, want)
			}
			if got := c.Errors(); got != tt.wantErrors {
				t.Errorf("errors = %d, want %d", got, tt.wantErrors)
			}
			if got := c.Panics(); got != tt.wantPanics {
				t.Errorf("panics = %d, want %d", got, tt.wantPanics)
			}
			if got := c.InFlight(); got != 0 {
				t.Errorf("in flight = %d, want 0", got)
			}
			wantMax := min(len(tt.steps), 1)
			if got := c.MaxInFlight(); got != wantMax {
				t.Errorf("max in flight = %d, want %d", got, wantMax)
			}
			last := c.LastErr()
			if tt.wantLast == nil {
				if last != nil {
					t.Errorf("LastErr = %v, want nil", last)
				}
			} else if last != tt.wantLast {
				t.Errorf("LastErr = %v, want %v", last, tt.wantLast)
			}
		})
	}
}

// TestCounterPassesThrough checks the counter hands the context and request
// to the wrapped endpoint and returns its response, error and panic unchanged.
func TestCounterPassesThrough(t *testing.T) {
	type key struct{}
	e := func(ctx context.Context, req any) (any, error) {
		switch req {
		case "panic":
			panic(errB)
		case "err":
			return "partial", errA
		}
		return []any{ctx.Value(key{}), req}, nil
	}
	c := endpointtest.Count(e)
	ctx := context.WithValue(t.Context(), key{}, "v")

	resp, err := c.Endpoint()(ctx, "req")
	if got, ok := resp.([]any); err != nil || !ok || len(got) != 2 || got[0] != "v" || got[1] != "req" {
		t.Errorf("= %#v, %v; want [v req], nil", resp, err)
	}
	resp, err = c.Call(ctx, "err")
	if resp != "partial" || err != errA {
		t.Errorf("= %#v, %v; want \"partial\", %v", resp, err, errA)
	}
	if v := mustPanic(t, func() { _, _ = c.Call(ctx, "panic") }); v != errB {
		t.Errorf("panic = %#v, want %v", v, errB)
	}
	if c.Calls() != 3 || c.Errors() != 1 || c.Panics() != 1 || c.InFlight() != 0 {
		t.Errorf("calls, errors, panics, in flight = %d, %d, %d, %d; want 3, 1, 1, 0",
			c.Calls(), c.Errors(), c.Panics(), c.InFlight())
	}
}

func TestCountNilPanics(t *testing.T) {
	mustPanic(t, func() { endpointtest.Count(nil) })
}

// TestCounterInFlight starts n calls, one every spacing, each taking d (fake
// time), and checks the in-flight counts exactly.
func TestCounterInFlight(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		spacing, d time.Duration
		wantMax    int
	}{
		{name: "64 at once", n: 64, d: time.Second, wantMax: 64},
		{name: "64 staggered, 3 overlap", n: 64, spacing: 100 * time.Millisecond, d: 250 * time.Millisecond, wantMax: 3},
		{name: "64 one after another", n: 64, spacing: 100 * time.Millisecond, d: 50 * time.Millisecond, wantMax: 1},
		{name: "one", n: 1, d: time.Second, wantMax: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := endpointtest.Count(endpointtest.New(endpointtest.Slow(tt.d, "ok")).Endpoint())
				var wg sync.WaitGroup
				for i := range tt.n {
					wg.Go(func() {
						time.Sleep(time.Duration(i) * tt.spacing)
						if _, err := c.Call(t.Context(), nil); err != nil {
							t.Errorf("err = %v, want nil", err)
						}
					})
				}
				if tt.spacing == 0 {
					synctest.Wait()
					if got := c.InFlight(); got != tt.n {
						t.Errorf("in flight = %d, want %d", got, tt.n)
					}
					if got := c.Calls(); got != tt.n {
						t.Errorf("calls = %d, want %d", got, tt.n)
					}
				}
				wg.Wait()
				if got := c.InFlight(); got != 0 {
					t.Errorf("in flight after = %d, want 0", got)
				}
				// A later lone call must not lower the maximum.
				if _, err := c.Call(t.Context(), nil); err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				if got := c.MaxInFlight(); got != tt.wantMax {
					t.Errorf("max in flight = %d, want %d", got, tt.wantMax)
				}
				if got, want := c.Calls(), tt.n+1; got != want {
					t.Errorf("calls = %d, want %d", got, want)
				}
			})
		})
	}
}

// TestCounterConcurrent hammers a counter from 64 goroutines with a mix of
// successes, errors and panics, and checks every count is exact (run with
// -race).
func TestCounterConcurrent(t *testing.T) {
	const (
		goroutines = 64
		perG       = 30
	)
	// Request i: i%3 == 0 fails, 1 panics, 2 succeeds.
	e := func(_ context.Context, req any) (any, error) {
		switch req.(int) % 3 {
		case 0:
			return nil, errA
		case 1:
			panic("p")
		}
		return "ok", nil
	}
	c := endpointtest.Count(e)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				func() {
					defer func() { _ = recover() }()
					_, _ = c.Call(context.Background(), g*perG+i)
				}()
				_ = c.InFlight()
				_ = c.LastErr()
			}
		})
	}
	wg.Wait()

	total := goroutines * perG
	if got := c.Calls(); got != total {
		t.Errorf("calls = %d, want %d", got, total)
	}
	if got, want := c.Errors(), total/3; got != want {
		t.Errorf("errors = %d, want %d", got, want)
	}
	if got, want := c.Panics(), total/3; got != want {
		t.Errorf("panics = %d, want %d", got, want)
	}
	if got := c.InFlight(); got != 0 {
		t.Errorf("in flight = %d, want 0", got)
	}
	if got := c.MaxInFlight(); got < 1 || got > goroutines {
		t.Errorf("max in flight = %d, want 1..%d", got, goroutines)
	}
	if err := c.LastErr(); !errors.Is(err, errA) {
		t.Errorf("LastErr = %v, want %v", err, errA)
	}
}
