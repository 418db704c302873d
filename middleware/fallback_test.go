package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

var (
	errPrimary  = errors.New("primary failed")
	errFallback = errors.New("fallback failed")
	errOther    = errors.New("other failure")
)

// withResp returns an endpoint that fails with err and a non-nil response, to
// check that a failure passed through keeps its response.
func withResp(resp any, err error) endpoint.Endpoint {
	return func(context.Context, any) (any, error) { return resp, err }
}

func TestFallbackCalledOncePerFailedCall(t *testing.T) {
	tests := []struct {
		name         string
		script       []string
		wantResp     []any
		wantFallback int
	}{
		{name: "all succeed", script: []string{"ok:a", "ok:b", "ok:c"}, wantResp: []any{"a", "b", "c"}, wantFallback: 0},
		{name: "all fail", script: []string{"err", "err", "err"}, wantResp: []any{"cache", "cache", "cache"}, wantFallback: 3},
		{name: "mixed", script: []string{"err", "ok:b", "err:boom", "ok:d"}, wantResp: []any{"cache", "b", "cache", "d"}, wantFallback: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := endpointtest.Count(endpointtest.Script(tt.script...).Endpoint())
			fb := endpointtest.Count(endpointtest.New(endpointtest.OK("cache")).Endpoint())
			rec := &recorder{}
			ep := middleware.FallbackWith(middleware.FallbackConfig{
				Endpoint: fb.Endpoint(),
				Name:     "embeddings",
				Observer: rec,
			})(primary.Endpoint())

			for i, want := range tt.wantResp {
				resp, err := ep(t.Context(), i)
				if err != nil {
					t.Fatalf("call %d: err = %v, want nil", i, err)
				}
				if resp != want {
					t.Errorf("call %d: resp = %v, want %v", i, resp, want)
				}
			}
			if got, want := primary.Calls(), len(tt.script); got != want {
				t.Errorf("primary calls = %d, want %d", got, want)
			}
			if got, want := fb.Calls(), tt.wantFallback; got != want {
				t.Errorf("fallback calls = %d, want %d", got, want)
			}
			events := rec.Events()
			if got, want := len(events), tt.wantFallback; got != want {
				t.Fatalf("events = %d, want %d", got, want)
			}
			for i, e := range events {
				if e.Kind != middleware.EventFallback || e.Layer != "fallback" || e.Name != "embeddings" {
					t.Errorf("event %d = %+v, want kind fallback, layer fallback, name embeddings", i, e)
				}
				if !errors.Is(e.Err, endpointtest.ErrScripted) {
					t.Errorf("event %d: Err = %v, want the replaced error (ErrScripted)", i, e.Err)
				}
			}
		})
	}
}

func TestFallbackPassesRequestAndContext(t *testing.T) {
	type key struct{}
	var gotReq, gotCtx any
	var gotErr error
	tests := []struct {
		name    string
		mw      endpoint.Middleware
		wantErr error // the error the fallback is given; nil for an endpoint
	}{
		{name: "Fallback", mw: middleware.Fallback(func(ctx context.Context, req any) (any, error) {
			gotReq, gotCtx = req, ctx.Value(key{})
			return "fb", nil
		})},
		{name: "FallbackFunc", mw: middleware.FallbackFunc(func(ctx context.Context, req any, err error) (any, error) {
			gotReq, gotCtx, gotErr = req, ctx.Value(key{}), err
			return "fb", nil
		}), wantErr: errPrimary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotReq, gotCtx, gotErr = nil, nil, nil
			ctx := context.WithValue(t.Context(), key{}, "v")
			resp, err := tt.mw(endpointtest.New(endpointtest.Err(errPrimary)).Endpoint())(ctx, "req")
			if err != nil || resp != "fb" {
				t.Errorf("resp, err = %v, %v, want fb, nil", resp, err)
			}
			if gotReq != "req" {
				t.Errorf("fallback req = %v, want req", gotReq)
			}
			if gotCtx != "v" {
				t.Errorf("fallback ctx value = %v, want v", gotCtx)
			}
			if gotErr != tt.wantErr {
				t.Errorf("fallback err = %v, want %v", gotErr, tt.wantErr)
			}
		})
	}
}

func TestFallbackNeverAfterCallerGone(t *testing.T) {
	tests := []struct {
		name        string
		ctx         func(context.Context) (context.Context, context.CancelFunc)
		callee      endpointtest.Step
		wantErr     error
		wantElapsed time.Duration
	}{
		{
			name: "cancelled before the call",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(parent)
				cancel()
				return ctx, cancel
			},
			callee:  endpointtest.Hang(),
			wantErr: context.Canceled,
		},
		{
			name: "cancelled, callee returns its own error",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(parent)
				cancel()
				return ctx, cancel
			},
			callee:  endpointtest.Err(errPrimary),
			wantErr: errPrimary,
		},
		{
			name: "deadline passed during the call",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(parent, time.Second)
			},
			callee:      endpointtest.Hang(),
			wantErr:     context.DeadlineExceeded,
			wantElapsed: time.Second,
		},
		{
			name: "deadline passed before the call",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				return context.WithDeadline(parent, time.Now().Add(-time.Second))
			},
			callee:  endpointtest.Hang(),
			wantErr: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				primary := endpointtest.Count(endpointtest.New(tt.callee).Endpoint())
				fb := endpointtest.Count(endpointtest.New(endpointtest.OK("cache")).Endpoint())
				rec := &recorder{}
				ep := middleware.FallbackWith(middleware.FallbackConfig{Endpoint: fb.Endpoint(), Observer: rec})(primary.Endpoint())

				ctx, cancel := tt.ctx(t.Context())
				defer cancel()
				start := time.Now()
				resp, err := ep(ctx, nil)
				if got, want := time.Since(start), tt.wantElapsed; got != want {
					t.Errorf("elapsed = %v, want %v", got, want)
				}
				if err != tt.wantErr {
					t.Errorf("err = %v, want %v unchanged", err, tt.wantErr)
				}
				if resp != nil {
					t.Errorf("resp = %v, want nil", resp)
				}
				if got, want := primary.Calls(), 1; got != want {
					t.Errorf("primary calls = %d, want %d", got, want)
				}
				if got, want := fb.Calls(), 0; got != want {
					t.Errorf("fallback calls = %d, want %d", got, want)
				}
				if got, want := len(rec.Events()), 0; got != want {
					t.Errorf("events = %d, want %d", got, want)
				}
			})
		})
	}
}

func TestFallbackFilter(t *testing.T) {
	isOther := func(err error) bool { return errors.Is(err, errOther) }
	tests := []struct {
		name         string
		on           []error
		onIf         func(error) bool
		err          error
		wantFallback bool
	}{
		{name: "no filter, any error", err: errPrimary, wantFallback: true},
		{name: "on, match", on: []error{errPrimary}, err: errPrimary, wantFallback: true},
		{name: "on, wrapped match", on: []error{errPrimary}, err: fmt.Errorf("call: %w", errPrimary), wantFallback: true},
		{name: "on, second entry", on: []error{errOther, errPrimary}, err: errPrimary, wantFallback: true},
		{name: "on, no match", on: []error{errPrimary}, err: errOther, wantFallback: false},
		{name: "if, match", onIf: isOther, err: errOther, wantFallback: true},
		{name: "if, no match", onIf: isOther, err: errPrimary, wantFallback: false},
		{name: "on and if, on matches", on: []error{errPrimary}, onIf: isOther, err: errPrimary, wantFallback: true},
		{name: "on and if, if matches", on: []error{errPrimary}, onIf: isOther, err: errOther, wantFallback: true},
		{name: "on and if, neither", on: []error{errPrimary}, onIf: isOther, err: errFallback, wantFallback: false},
		{name: "on, context error while ctx live", on: []error{context.DeadlineExceeded}, err: context.DeadlineExceeded, wantFallback: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := endpointtest.Count(endpointtest.New(endpointtest.OK("cache")).Endpoint())
			rec := &recorder{}
			ep := middleware.FallbackWith(middleware.FallbackConfig{
				Endpoint:   fb.Endpoint(),
				FallbackOn: tt.on,
				FallbackIf: tt.onIf,
				Observer:   rec,
			})(withResp("partial", tt.err))

			resp, err := ep(t.Context(), nil)
			want, wantCalls := 0, 0
			if tt.wantFallback {
				want, wantCalls = 1, 1
				if err != nil || resp != "cache" {
					t.Errorf("resp, err = %v, %v, want cache, nil", resp, err)
				}
			} else {
				if err != tt.err {
					t.Errorf("err = %v, want %v unchanged", err, tt.err)
				}
				if resp != "partial" {
					t.Errorf("resp = %v, want the endpoint's response partial", resp)
				}
			}
			if got := fb.Calls(); got != wantCalls {
				t.Errorf("fallback calls = %d, want %d", got, wantCalls)
			}
			if got := len(rec.Events()); got != want {
				t.Errorf("events = %d, want %d", got, want)
			}
		})
	}
}

func TestFallbackFilterCopied(t *testing.T) {
	on := []error{errPrimary}
	ep := middleware.FallbackWith(middleware.FallbackConfig{
		Value:      "cache",
		FallbackOn: on,
		Observer:   &recorder{},
	})(withResp(nil, errPrimary))
	on[0] = errOther // the layer must not see this

	resp, err := ep(t.Context(), nil)
	if err != nil || resp != "cache" {
		t.Errorf("resp, err = %v, %v, want cache, nil", resp, err)
	}
}

func TestFallbackFailureJoinsBothErrors(t *testing.T) {
	wrappedFB := fmt.Errorf("cache miss: %w", errFallback)
	tests := []struct {
		name  string
		cfg   func(fb endpoint.Endpoint) middleware.FallbackConfig
		fbErr error
	}{
		{
			name:  "endpoint",
			cfg:   func(fb endpoint.Endpoint) middleware.FallbackConfig { return middleware.FallbackConfig{Endpoint: fb} },
			fbErr: errFallback,
		},
		{
			name:  "endpoint, wrapped error",
			cfg:   func(fb endpoint.Endpoint) middleware.FallbackConfig { return middleware.FallbackConfig{Endpoint: fb} },
			fbErr: wrappedFB,
		},
		{
			name: "func",
			cfg: func(fb endpoint.Endpoint) middleware.FallbackConfig {
				return middleware.FallbackConfig{Func: func(ctx context.Context, req any, _ error) (any, error) { return fb(ctx, req) }}
			},
			fbErr: errFallback,
		},
		{
			name: "func wrapping the original",
			cfg: func(fb endpoint.Endpoint) middleware.FallbackConfig {
				return middleware.FallbackConfig{Func: func(ctx context.Context, req any, err error) (any, error) {
					_, fbErr := fb(ctx, req)
					return nil, fmt.Errorf("%w after %w", fbErr, err)
				}}
			},
			fbErr: errFallback,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := endpointtest.Count(withResp("stale", tt.fbErr))
			rec := &recorder{}
			cfg := tt.cfg(fb.Endpoint())
			cfg.Observer = rec
			ep := middleware.FallbackWith(cfg)(withResp(nil, errPrimary))

			resp, err := ep(t.Context(), nil)
			if resp != nil {
				t.Errorf("resp = %v, want nil", resp)
			}
			if !errors.Is(err, errPrimary) {
				t.Errorf("errors.Is(err, errPrimary) = false for %v", err)
			}
			if !errors.Is(err, errFallback) {
				t.Errorf("errors.Is(err, errFallback) = false for %v", err)
			}
			if got, want := fb.Calls(), 1; got != want {
				t.Errorf("fallback calls = %d, want %d", got, want)
			}
			events := rec.Events()
			if got, want := len(events), 1; got != want {
				t.Fatalf("events = %d, want %d", got, want)
			}
			if events[0].Err != err {
				t.Errorf("event Err = %v, want the returned error %v", events[0].Err, err)
			}
		})
	}
}

func TestFallbackFuncDeclines(t *testing.T) {
	tests := []struct {
		name         string
		err          error
		wantDeclined bool
	}{
		{name: "sentinel returned as is", err: errPrimary, wantDeclined: true},
		{name: "wrapped", err: fmt.Errorf("call: %w", errPrimary), wantDeclined: true},
		// An error of an incomparable type cannot be recognised as the same
		// value; it must not make the layer panic either.
		{name: "incomparable error type", err: sliceError{"a", "b"}, wantDeclined: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			calls := 0
			ep := middleware.FallbackWith(middleware.FallbackConfig{
				Func: func(_ context.Context, _ any, err error) (any, error) {
					calls++
					return "ignored", err
				},
				Observer: rec,
			})(withResp("partial", tt.err))

			resp, err := ep(t.Context(), nil)
			if got, want := calls, 1; got != want {
				t.Errorf("func calls = %d, want %d", got, want)
			}
			wantEvents := 0
			if tt.wantDeclined {
				if !sameErr(err, tt.err) {
					t.Errorf("err = %v, want %v unchanged", err, tt.err)
				}
				if resp != "partial" {
					t.Errorf("resp = %v, want partial", resp)
				}
			} else {
				wantEvents = 1
				if err == nil || sameErr(err, tt.err) || !strings.HasPrefix(err.Error(), "middleware: fallback failed: ") {
					t.Errorf("err = %v, want a failed fallback's error (not %v itself)", err, tt.err)
				}
			}
			if got := len(rec.Events()); got != wantEvents {
				t.Errorf("events = %d, want %d", got, wantEvents)
			}
		})
	}
}

// sameErr reports whether a and b are the same comparable error value.
func sameErr(a, b error) bool {
	return reflect.TypeOf(a) == reflect.TypeOf(b) && reflect.TypeOf(a).Comparable() && a == b
}

// sliceError is an error of an incomparable dynamic type: comparing two of
// them with == panics.
type sliceError []string

func (e sliceError) Error() string { return strings.Join(e, ", ") }

func TestFallbackValue(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{name: "nil", v: nil},
		{name: "empty slice", v: []string{}},
		{name: "map", v: map[string]string{"status": "unknown"}},
		{name: "int", v: 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := endpointtest.Count(endpointtest.Script("err", "ok:live").Endpoint())
			ep := middleware.FallbackValue(tt.v)(primary.Endpoint())

			resp, err := ep(t.Context(), nil)
			if err != nil {
				t.Fatalf("failed call: err = %v, want nil", err)
			}
			if !reflect.DeepEqual(resp, tt.v) {
				t.Errorf("failed call: resp = %#v, want %#v", resp, tt.v)
			}
			resp, err = ep(t.Context(), nil)
			if err != nil || resp != "live" {
				t.Errorf("successful call: resp, err = %v, %v, want live, nil", resp, err)
			}
			if got, want := primary.Calls(), 2; got != want {
				t.Errorf("primary calls = %d, want %d", got, want)
			}
		})
	}
}

func TestFallbackZeroConfigServesNil(t *testing.T) {
	rec := &recorder{}
	ep := middleware.FallbackWith(middleware.FallbackConfig{Observer: rec})(withResp("partial", errPrimary))
	resp, err := ep(t.Context(), nil)
	if resp != nil || err != nil {
		t.Errorf("resp, err = %v, %v, want nil, nil", resp, err)
	}
	if got, want := len(rec.Events()), 1; got != want {
		t.Errorf("events = %d, want %d", got, want)
	}
}

func TestFallbackPanicsPropagate(t *testing.T) {
	panicErr := errors.New("panic value")
	tests := []struct {
		name  string
		value any
		cfg   func(fb endpoint.Endpoint) middleware.FallbackConfig
	}{
		{
			name:  "endpoint",
			value: "boom",
			cfg:   func(fb endpoint.Endpoint) middleware.FallbackConfig { return middleware.FallbackConfig{Endpoint: fb} },
		},
		{
			name:  "func",
			value: panicErr,
			cfg: func(fb endpoint.Endpoint) middleware.FallbackConfig {
				return middleware.FallbackConfig{Func: func(ctx context.Context, req any, _ error) (any, error) { return fb(ctx, req) }}
			},
		},
		{
			name:  "value, filter matching everything",
			value: 7,
			cfg: func(endpoint.Endpoint) middleware.FallbackConfig {
				return middleware.FallbackConfig{Value: "v", FallbackIf: func(error) bool { return true }}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := endpointtest.Count(endpointtest.New(endpointtest.Panic(tt.value)).Endpoint())
			fb := endpointtest.Count(endpointtest.New(endpointtest.OK("cache")).Endpoint())
			rec := &recorder{}
			cfg := tt.cfg(fb.Endpoint())
			cfg.Observer = rec
			ep := middleware.FallbackWith(cfg)(primary.Endpoint())

			got, returned := callRecovering(t.Context(), ep)
			if returned {
				t.Fatalf("call returned normally, want a panic")
			}
			if got != tt.value {
				t.Errorf("panic value = %v, want %v", got, tt.value)
			}
			if got, want := primary.Panics(), 1; got != want {
				t.Errorf("primary panics = %d, want %d", got, want)
			}
			if got, want := fb.Calls(), 0; got != want {
				t.Errorf("fallback calls = %d, want %d", got, want)
			}
			if got, want := len(rec.Events()), 0; got != want {
				t.Errorf("events = %d, want %d", got, want)
			}
		})
	}
}

// callRecovering calls ep and returns the value it panicked with, and whether
// it returned normally instead.
func callRecovering(ctx context.Context, ep endpoint.Endpoint) (v any, returned bool) {
	defer func() {
		if !returned {
			v = recover()
		}
	}()
	_, _ = ep(ctx, nil)
	return nil, true
}

func TestFallbackConfigValidate(t *testing.T) {
	ep := endpoint.Nop
	fn := func(context.Context, any, error) (any, error) { return nil, nil }
	tests := []struct {
		name      string
		cfg       middleware.FallbackConfig
		wantPaths []string
	}{
		{name: "zero", cfg: middleware.FallbackConfig{}},
		{name: "value", cfg: middleware.FallbackConfig{Value: []string{}}},
		{name: "endpoint", cfg: middleware.FallbackConfig{Endpoint: ep}},
		{name: "func", cfg: middleware.FallbackConfig{Func: fn}},
		{name: "filters", cfg: middleware.FallbackConfig{FallbackOn: []error{errPrimary}, FallbackIf: func(error) bool { return true }}},
		{name: "endpoint and func", cfg: middleware.FallbackConfig{Endpoint: ep, Func: fn}, wantPaths: []string{"fallback.func"}},
		{name: "value and endpoint", cfg: middleware.FallbackConfig{Value: 1, Endpoint: ep}, wantPaths: []string{"fallback.value"}},
		{name: "value and func", cfg: middleware.FallbackConfig{Value: 1, Func: fn}, wantPaths: []string{"fallback.value"}},
		{name: "nil in fallback_on", cfg: middleware.FallbackConfig{FallbackOn: []error{errPrimary, nil}}, wantPaths: []string{"fallback.fallback_on[1]"}},
		{
			name:      "every problem at once",
			cfg:       middleware.FallbackConfig{Value: 1, Endpoint: ep, Func: fn, FallbackOn: []error{nil}},
			wantPaths: []string{"fallback.func", "fallback.value", "fallback.fallback_on[0]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, tt.cfg.Validate(), tt.wantPaths)
		})
	}
}

func TestFallbackConstructorsPanicOnBadConfig(t *testing.T) {
	tests := []struct {
		name      string
		construct func()
		wantPath  string
		wantField string
	}{
		{name: "Fallback(nil)", construct: func() { middleware.Fallback(nil) }, wantPath: "fallback.endpoint", wantField: "Endpoint"},
		{name: "FallbackFunc(nil)", construct: func() { middleware.FallbackFunc(nil) }, wantPath: "fallback.func", wantField: "Func"},
		{
			name: "FallbackWith, endpoint and func",
			construct: func() {
				middleware.FallbackWith(middleware.FallbackConfig{
					Endpoint: endpoint.Nop,
					Func:     func(context.Context, any, error) (any, error) { return nil, nil },
				})
			},
			wantPath:  "fallback.func",
			wantField: "Func",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := func() (v any) {
				defer func() { v = recover() }()
				tt.construct()
				return nil
			}()
			err, ok := v.(error)
			if !ok {
				t.Fatalf("panic value = %v (%T), want an error", v, v)
			}
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Errorf("panic error = %v, want ErrInvalidConfig", err)
			}
			if got, want := configPaths(err), []string{tt.wantPath}; !reflect.DeepEqual(got, want) {
				t.Errorf("problem paths = %q, want %q", got, want)
			}
			if !strings.Contains(err.Error(), tt.wantField) {
				t.Errorf("panic error %q does not name the field %s", err, tt.wantField)
			}
		})
	}
}

func TestFallbackSuccessAllocatesNothing(t *testing.T) {
	tests := []struct {
		name string
		mw   endpoint.Middleware
	}{
		{name: "FallbackValue", mw: middleware.FallbackValue([]string{})},
		{name: "Fallback", mw: middleware.Fallback(endpoint.Nop)},
		{name: "FallbackWith, filtered", mw: middleware.FallbackWith(middleware.FallbackConfig{FallbackOn: []error{errPrimary}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := tt.mw(endpoint.Nop)
			ctx := t.Context()
			if got := testing.AllocsPerRun(100, func() { _, _ = ep(ctx, nil) }); got != 0 {
				t.Errorf("allocs per successful call = %v, want 0", got)
			}
		})
	}
}
