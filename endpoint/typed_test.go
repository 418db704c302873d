package endpoint_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
)

type point struct{ X, Y int }

type other struct{ X, Y int }

type stringer string

func (s stringer) String() string { return string(s) }

// bridgeResult is what a typed bridge call returned in the tables below, and
// whether the typed function ran.
type bridgeResult struct {
	resp   any
	err    error
	called bool
}

// fromTyped builds FromTyped[Req, Req] around an echo function and calls it
// with req.
func fromTyped[Req any](ctx context.Context, req any) bridgeResult {
	var r bridgeResult
	e := endpoint.FromTyped(func(_ context.Context, req Req) (Req, error) {
		r.called = true
		return req, nil
	})
	r.resp, r.err = e(ctx, req)
	return r
}

// checkTypeError checks err is a *TypeError with the given role and types,
// reached through errors.Is and errors.AsType.
func checkTypeError(t *testing.T, err error, role string, want, got reflect.Type) {
	t.Helper()
	if !errors.Is(err, endpoint.ErrType) {
		t.Fatalf("err = %v, want it to match ErrType", err)
	}
	te, ok := errors.AsType[*endpoint.TypeError](err)
	if !ok {
		t.Fatalf("err = %#v, want a *TypeError", err)
	}
	if te.Role != role {
		t.Errorf("Role = %q, want %q", te.Role, role)
	}
	if te.Want != want {
		t.Errorf("Want = %v, want %v", te.Want, want)
	}
	if te.Got != got {
		t.Errorf("Got = %v, want %v", te.Got, got)
	}
}

func TestFromTypedRequest(t *testing.T) {
	nilPoint := (*point)(nil)
	tests := []struct {
		name     string
		call     func(ctx context.Context) bridgeResult
		wantResp any
		// For a *TypeError: the expected Want and Got; wantType nil means
		// no error.
		wantType, gotType reflect.Type
	}{
		{name: "string ok", call: func(ctx context.Context) bridgeResult { return fromTyped[string](ctx, "s") }, wantResp: "s"},
		{name: "string gets int", call: func(ctx context.Context) bridgeResult { return fromTyped[string](ctx, 1) },
			wantType: reflect.TypeFor[string](), gotType: reflect.TypeFor[int]()},
		{name: "string gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[string](ctx, nil) },
			wantType: reflect.TypeFor[string]()},
		{name: "int gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[int](ctx, nil) },
			wantType: reflect.TypeFor[int]()},
		{name: "int gets int64", call: func(ctx context.Context) bridgeResult { return fromTyped[int](ctx, int64(1)) },
			wantType: reflect.TypeFor[int](), gotType: reflect.TypeFor[int64]()},
		{name: "struct ok", call: func(ctx context.Context) bridgeResult { return fromTyped[point](ctx, point{1, 2}) }, wantResp: point{1, 2}},
		{name: "struct gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[point](ctx, nil) },
			wantType: reflect.TypeFor[point]()},
		{name: "struct gets look-alike struct", call: func(ctx context.Context) bridgeResult { return fromTyped[point](ctx, other{1, 2}) },
			wantType: reflect.TypeFor[point](), gotType: reflect.TypeFor[other]()},
		{name: "struct gets pointer to it", call: func(ctx context.Context) bridgeResult { return fromTyped[point](ctx, &point{}) },
			wantType: reflect.TypeFor[point](), gotType: reflect.TypeFor[*point]()},
		{name: "pointer gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[*point](ctx, nil) }, wantResp: nilPoint},
		{name: "pointer gets typed nil", call: func(ctx context.Context) bridgeResult { return fromTyped[*point](ctx, nilPoint) }, wantResp: nilPoint},
		{name: "pointer gets other pointer", call: func(ctx context.Context) bridgeResult { return fromTyped[*point](ctx, &other{}) },
			wantType: reflect.TypeFor[*point](), gotType: reflect.TypeFor[*other]()},
		{name: "interface gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[fmt.Stringer](ctx, nil) }, wantResp: nil},
		{name: "interface gets implementation", call: func(ctx context.Context) bridgeResult { return fromTyped[fmt.Stringer](ctx, stringer("s")) }, wantResp: stringer("s")},
		{name: "interface gets non-implementation", call: func(ctx context.Context) bridgeResult { return fromTyped[fmt.Stringer](ctx, "s") },
			wantType: reflect.TypeFor[fmt.Stringer](), gotType: reflect.TypeFor[string]()},
		{name: "any gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[any](ctx, nil) }, wantResp: nil},
		{name: "any gets int", call: func(ctx context.Context) bridgeResult { return fromTyped[any](ctx, 7) }, wantResp: 7},
		{name: "map gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[map[string]int](ctx, nil) }, wantResp: map[string]int(nil)},
		{name: "slice gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[[]byte](ctx, nil) }, wantResp: []byte(nil)},
		{name: "slice gets string", call: func(ctx context.Context) bridgeResult { return fromTyped[[]byte](ctx, "s") },
			wantType: reflect.TypeFor[[]byte](), gotType: reflect.TypeFor[string]()},
		{name: "chan gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[chan int](ctx, nil) }, wantResp: chan int(nil)},
		{name: "func gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[func()](ctx, nil) }, wantResp: (func())(nil)},
		{name: "array gets nil", call: func(ctx context.Context) bridgeResult { return fromTyped[[2]int](ctx, nil) },
			wantType: reflect.TypeFor[[2]int]()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.call(t.Context())
			if tt.wantType != nil {
				checkTypeError(t, r.err, "request", tt.wantType, tt.gotType)
				if r.called {
					t.Error("typed function called, want it skipped on a type error")
				}
				if r.resp != nil {
					t.Errorf("resp = %#v, want nil", r.resp)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("err = %v, want nil", r.err)
			}
			if !r.called {
				t.Error("typed function not called")
			}
			if !reflect.DeepEqual(r.resp, tt.wantResp) || reflect.TypeOf(r.resp) != reflect.TypeOf(tt.wantResp) {
				t.Errorf("resp = %#v (%T), want %#v (%T)", r.resp, r.resp, tt.wantResp, tt.wantResp)
			}
		})
	}
}

func TestFromTypedPassesContextAndError(t *testing.T) {
	type key struct{}
	errBoom := errors.New("boom")
	e := endpoint.FromTyped(func(ctx context.Context, req string) (int, error) {
		if ctx.Value(key{}) != "v" {
			t.Error("context value lost")
		}
		return len(req), errBoom
	})
	ctx := context.WithValue(t.Context(), key{}, "v")
	resp, err := e(ctx, "four")
	if !errors.Is(err, errBoom) {
		t.Errorf("err = %v, want %v", err, errBoom)
	}
	if errors.Is(err, endpoint.ErrType) {
		t.Errorf("err = %v matches ErrType, want the function's own error", err)
	}
	if resp != 4 {
		t.Errorf("resp = %v, want 4 (the response travels with the error)", resp)
	}
}

// respond returns an endpoint that returns resp and err, and records the
// request it got.
func respond(resp any, err error, gotReq *any) endpoint.Endpoint {
	return func(_ context.Context, req any) (any, error) {
		if gotReq != nil {
			*gotReq = req
		}
		return resp, err
	}
}

func TestTypedResponse(t *testing.T) {
	errBoom := errors.New("boom")
	nilPoint := (*point)(nil)
	tests := []struct {
		name     string
		call     func(ctx context.Context) (any, error)
		wantResp any
		// wantErr is an error the result must match; wantType set means a
		// *TypeError with that Want and gotType.
		wantErr           error
		wantType, gotType reflect.Type
	}{
		{name: "string ok", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, string](respond("s", nil, nil))(ctx, 1)
		}, wantResp: "s"},
		{name: "string gets int", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, string](respond(1, nil, nil))(ctx, 1)
		}, wantResp: "", wantType: reflect.TypeFor[string](), gotType: reflect.TypeFor[int]()},
		{name: "string gets nil", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, string](respond(nil, nil, nil))(ctx, 1)
		}, wantResp: "", wantType: reflect.TypeFor[string]()},
		{name: "int gets nil", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, int](respond(nil, nil, nil))(ctx, 1)
		}, wantResp: 0, wantType: reflect.TypeFor[int]()},
		{name: "struct gets pointer", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, point](respond(&point{1, 2}, nil, nil))(ctx, 1)
		}, wantResp: point{}, wantType: reflect.TypeFor[point](), gotType: reflect.TypeFor[*point]()},
		{name: "pointer gets nil", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, *point](respond(nil, nil, nil))(ctx, 1)
		}, wantResp: nilPoint},
		{name: "interface gets nil", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, fmt.Stringer](respond(nil, nil, nil))(ctx, 1)
		}, wantResp: nil},
		{name: "interface gets non-implementation", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, fmt.Stringer](respond(3, nil, nil))(ctx, 1)
		}, wantResp: nil, wantType: reflect.TypeFor[fmt.Stringer](), gotType: reflect.TypeFor[int]()},
		{name: "error passes through", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, string](respond(nil, errBoom, nil))(ctx, 1)
		}, wantResp: "", wantErr: errBoom},
		{name: "error with wrong-type response is not a type error", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, string](respond(42, errBoom, nil))(ctx, 1)
		}, wantResp: "", wantErr: errBoom},
		{name: "error with nil response for int", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, int](respond(nil, errBoom, nil))(ctx, 1)
		}, wantResp: 0, wantErr: errBoom},
		{name: "wrapped error passes through", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, string](respond(nil, fmt.Errorf("call: %w", io.EOF), nil))(ctx, 1)
		}, wantResp: "", wantErr: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.call(t.Context())
			switch {
			case tt.wantType != nil:
				checkTypeError(t, err, "response", tt.wantType, tt.gotType)
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if errors.Is(err, endpoint.ErrType) {
					t.Errorf("err = %v matches ErrType, want the endpoint's own error", err)
				}
			default:
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
			}
			if !reflect.DeepEqual(resp, tt.wantResp) || reflect.TypeOf(resp) != reflect.TypeOf(tt.wantResp) {
				t.Errorf("resp = %#v (%T), want %#v (%T)", resp, resp, tt.wantResp, tt.wantResp)
			}
		})
	}
}

// TestTypedErrorReturnsZeroResponse is the regression test for Typed
// returning the endpoint's response alongside its error: Typed documents that
// on an error it returns the zero Resp, whatever the response.
func TestTypedErrorReturnsZeroResponse(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		call func(ctx context.Context) (any, error)
		want any
	}{
		{name: "string", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, string](respond("partial", errBoom, nil))(ctx, 1)
		}, want: ""},
		{name: "struct", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, point](respond(point{1, 2}, errBoom, nil))(ctx, 1)
		}, want: point{}},
		{name: "pointer", call: func(ctx context.Context) (any, error) {
			return endpoint.Typed[int, *point](respond(&point{1, 2}, errBoom, nil))(ctx, 1)
		}, want: (*point)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.call(t.Context())
			if !errors.Is(err, errBoom) {
				t.Errorf("err = %v, want %v", err, errBoom)
			}
			if !reflect.DeepEqual(resp, tt.want) {
				t.Errorf("resp = %#v, want the zero %#v", resp, tt.want)
			}
		})
	}
}

func TestTypedPassesRequestAndContext(t *testing.T) {
	type key struct{}
	var gotReq any
	var gotCtx context.Context
	e := func(ctx context.Context, req any) (any, error) {
		gotReq, gotCtx = req, ctx
		return "ok", nil
	}
	ctx := context.WithValue(t.Context(), key{}, "v")
	if _, err := endpoint.Typed[point, string](e)(ctx, point{3, 4}); err != nil {
		t.Fatalf("err = %v, want nil", err)
	}
	if gotReq != (point{3, 4}) {
		t.Errorf("request = %#v, want point{3, 4}", gotReq)
	}
	if gotCtx == nil || gotCtx.Value(key{}) != "v" {
		t.Error("context not passed through")
	}
}

// TestTypedRoundTrip checks Typed(FromTyped(f)) behaves like f.
func TestTypedRoundTrip(t *testing.T) {
	errNeg := errors.New("negative")
	f := func(_ context.Context, n int) (string, error) {
		if n < 0 {
			return "", errNeg
		}
		return strings.Repeat("x", n), nil
	}
	g := endpoint.Typed[int, string](endpoint.FromTyped(f))
	tests := []struct {
		name    string
		n       int
		want    string
		wantErr error
	}{
		{name: "zero", n: 0, want: ""},
		{name: "three", n: 3, want: "xxx"},
		{name: "negative", n: -1, wantErr: errNeg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := g(t.Context(), tt.n)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("resp = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTypeErrorMessage(t *testing.T) {
	tests := []struct {
		name  string
		err   *endpoint.TypeError
		parts []string
	}{
		{name: "request", err: &endpoint.TypeError{Role: "request", Want: reflect.TypeFor[string](), Got: reflect.TypeFor[int]()},
			parts: []string{"request", "string", "int"}},
		{name: "nil got", err: &endpoint.TypeError{Role: "response", Want: reflect.TypeFor[point]()},
			parts: []string{"response", "endpoint_test.point", "nil"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The message must name the role and both types.
			msg := tt.err.Error()
			for _, p := range tt.parts {
				if !strings.Contains(msg, p) {
					t.Errorf("Error() = %q, want it to name %q", msg, p)
				}
			}
			if !errors.Is(tt.err, endpoint.ErrType) {
				t.Error("TypeError does not match ErrType")
			}
			if errors.Is(tt.err, io.EOF) {
				t.Error("TypeError matches io.EOF, want only ErrType")
			}
		})
	}
}

func TestNilBridgePanics(t *testing.T) {
	var nilFunc func(context.Context, string) (string, error)
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{name: "FromTyped nil literal", f: func() { endpoint.FromTyped[string, string](nil) }, want: "FromTyped"},
		{name: "FromTyped nil variable", f: func() { endpoint.FromTyped(nilFunc) }, want: "FromTyped"},
		{name: "Typed nil literal", f: func() { endpoint.Typed[string, string](nil) }, want: "Typed"},
		{name: "Typed nil Endpoint", f: func() { endpoint.Typed[string, string](endpoint.Endpoint(nil)) }, want: "Typed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustPanic(t, tt.f)
			// The message must name the function that refused nil.
			if msg, _ := v.(string); !strings.Contains(msg, tt.want) {
				t.Errorf("panic = %#v, want a message naming %s", v, tt.want)
			}
		})
	}
}
