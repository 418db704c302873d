package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

// panicker is an endpoint that panics with v, from a method whose name the
// recovered stack must show.
type panicker struct{ v any }

func (p panicker) explode(context.Context, any) (any, error) { panic(p.v) }

func TestRecoverConvertsPanics(t *testing.T) {
	errBoom := errors.New("boom")
	inner := &middleware.PanicError{Value: "inner", Stack: []byte("inner stack")}
	tests := []struct {
		name      string
		value     any
		wantValue func(t *testing.T, v any)
		wantIs    error // matched with errors.Is when not nil
		wantStack string
		wantSame  *middleware.PanicError // the very error to return, when set
	}{
		{
			name:      "string",
			value:     "boom",
			wantValue: func(t *testing.T, v any) { equal(t, v, "boom") },
			wantStack: "panicker.explode",
		},
		{
			name:      "error",
			value:     errBoom,
			wantValue: func(t *testing.T, v any) { equal(t, v, errBoom) },
			wantIs:    errBoom,
			wantStack: "panicker.explode",
		},
		{
			name:  "wrapped error",
			value: fmt.Errorf("decode: %w", errBoom),
			wantValue: func(t *testing.T, v any) {
				if _, ok := v.(error); !ok {
					t.Errorf("Value = %v (%T), want the error", v, v)
				}
			},
			wantIs:    errBoom,
			wantStack: "panicker.explode",
		},
		{
			name:  "nil",
			value: nil,
			wantValue: func(t *testing.T, v any) {
				if _, ok := v.(*runtime.PanicNilError); !ok {
					t.Errorf("Value = %v (%T), want *runtime.PanicNilError", v, v)
				}
			},
			wantStack: "panicker.explode",
		},
		{
			name:      "re-panicked PanicError",
			value:     inner,
			wantValue: func(t *testing.T, v any) { equal(t, v, "inner") },
			wantStack: "inner stack",
			wantSame:  inner,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			primary := endpointtest.Count(panicker{tt.value}.explode)
			ep := recoverWith("api", rec)(primary.Endpoint())

			resp, err := ep(t.Context(), nil)
			if resp != nil {
				t.Errorf("resp = %v, want nil", resp)
			}
			pe, ok := errors.AsType[*middleware.PanicError](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *middleware.PanicError", err, err)
			}
			tt.wantValue(t, pe.Value)
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(err, %v) = false for %v", tt.wantIs, err)
			}
			if !bytes.Contains(pe.Stack, []byte(tt.wantStack)) {
				t.Errorf("Stack does not contain %q:\n%s", tt.wantStack, pe.Stack)
			}
			if tt.wantSame != nil && pe != tt.wantSame {
				t.Errorf("err = %p, want the re-panicked *PanicError %p as is", pe, tt.wantSame)
			}
			if got, want := primary.Panics(), 1; got != want {
				t.Errorf("primary panics = %d, want %d", got, want)
			}
			events := rec.Events()
			if got, want := len(events), 1; got != want {
				t.Fatalf("events = %d, want %d", got, want)
			}
			e := events[0]
			if e.Kind != middleware.EventPanic || e.Layer != "recover" || e.Name != "api" {
				t.Errorf("event = %+v, want kind panic, layer recover, name api", e)
			}
			if e.Err != err {
				t.Errorf("event Err = %v, want the returned error", e.Err)
			}
		})
	}
}

func equal(t *testing.T, got, want any) {
	t.Helper()
	if got != want {
		t.Errorf("Value = %v, want %v", got, want)
	}
}

func TestRecoverPassesThrough(t *testing.T) {
	tests := []struct {
		name     string
		step     endpointtest.Step
		wantResp any
		wantErr  error
	}{
		{name: "success", step: endpointtest.OK("ok"), wantResp: "ok"},
		{name: "error", step: endpointtest.Err(errPrimary), wantErr: errPrimary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			ep := recoverWith("", rec)(endpointtest.New(tt.step).Endpoint())
			resp, err := ep(t.Context(), nil)
			if resp != tt.wantResp || err != tt.wantErr {
				t.Errorf("resp, err = %v, %v, want %v, %v", resp, err, tt.wantResp, tt.wantErr)
			}
			if got, want := len(rec.Events()), 0; got != want {
				t.Errorf("events = %d, want %d", got, want)
			}
		})
	}
}

func TestRecoverNested(t *testing.T) {
	outer, inner := &recorder{}, &recorder{}
	ep := endpoint.Chain(
		recoverWith("", outer),
		recoverWith("", inner),
	)(endpointtest.New(endpointtest.Panic("boom")).Endpoint())

	_, err := ep(t.Context(), nil)
	if _, ok := errors.AsType[*middleware.PanicError](err); !ok {
		t.Errorf("err = %v, want *middleware.PanicError", err)
	}
	if got, want := len(inner.Events()), 1; got != want {
		t.Errorf("inner events = %d, want %d", got, want)
	}
	if got, want := len(outer.Events()), 0; got != want {
		t.Errorf("outer events = %d, want %d", got, want)
	}
}

func TestRecoverLetsGoexitThrough(t *testing.T) {
	rec := &recorder{}
	ep := recoverWith("", rec)(func(context.Context, any) (any, error) {
		runtime.Goexit()
		return nil, nil
	})
	returned := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = ep(context.Background(), nil)
		returned = true
	}()
	<-done
	if returned {
		t.Errorf("call returned after runtime.Goexit, want the goroutine to exit")
	}
	if got, want := len(rec.Events()), 0; got != want {
		t.Errorf("events = %d, want %d", got, want)
	}
}

func TestFallbackOverRecover(t *testing.T) {
	rec := &recorder{}
	ep := endpoint.Chain(
		middleware.FallbackWith(middleware.FallbackConfig{Value: "cache", Observer: rec}),
		recoverWith("", rec),
	)(endpointtest.New(endpointtest.Panic("boom")).Endpoint())

	resp, err := ep(t.Context(), nil)
	if err != nil || resp != "cache" {
		t.Errorf("resp, err = %v, %v, want cache, nil", resp, err)
	}
	events := rec.Events()
	if got, want := len(events), 2; got != want {
		t.Fatalf("events = %d, want %d", got, want)
	}
	if events[0].Kind != middleware.EventPanic || events[1].Kind != middleware.EventFallback {
		t.Errorf("event kinds = %v, %v, want panic, fallback", events[0].Kind, events[1].Kind)
	}
	if _, ok := errors.AsType[*middleware.PanicError](events[1].Err); !ok {
		t.Errorf("fallback event Err = %v, want the *PanicError it replaced", events[1].Err)
	}
}

func TestRecoverSuccessAllocatesNothing(t *testing.T) {
	ep := middleware.Recover()(endpoint.Nop)
	ctx := t.Context()
	if got := testing.AllocsPerRun(100, func() { _, _ = ep(ctx, nil) }); got != 0 {
		t.Errorf("allocs per successful call = %v, want 0", got)
	}
}
