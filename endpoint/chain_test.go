package endpoint_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	kitendpoint "github.com/go-kit/kit/endpoint"

	"github.com/resiliencekit/resilience/endpoint"
)

// recorder collects "name pre" / "name post" lines from the middlewares it
// builds. It is safe for concurrent use (the go-kit transport test runs the
// server side in another goroutine).
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

// mw returns a middleware that records "name pre" before calling next and
// "name post" after it returns.
func (r *recorder) mw(name string) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			r.add(name + " pre")
			defer r.add(name + " post")
			return next(ctx, req)
		}
	}
}

// innermost returns an endpoint that records "endpoint" and echoes req.
func (r *recorder) innermost() endpoint.Endpoint {
	return func(_ context.Context, req any) (any, error) {
		r.add("endpoint")
		return req, nil
	}
}

// nesting returns the lines a chain of names must record: pre in order, the
// endpoint, post in reverse.
func nesting(names ...string) []string {
	var want []string
	for _, n := range names {
		want = append(want, n+" pre")
	}
	want = append(want, "endpoint")
	for _, n := range slices.Backward(names) {
		want = append(want, n+" post")
	}
	return want
}

// mustPanic runs f and returns the value it panics with; it fails the test if
// f returns normally.
func mustPanic(t *testing.T, f func()) (v any) {
	t.Helper()
	defer func() { v = recover() }()
	f()
	t.Fatal("did not panic")
	return nil
}

func TestChainOrder(t *testing.T) {
	tests := []struct {
		name  string
		names []string
	}{
		{name: "one", names: []string{"a"}},
		{name: "two", names: []string{"a", "b"}},
		{name: "three", names: []string{"first", "second", "third"}},
		{name: "five", names: []string{"a", "b", "c", "d", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			mws := make([]endpoint.Middleware, len(tt.names))
			for i, n := range tt.names {
				mws[i] = rec.mw(n)
			}
			e := endpoint.Chain(mws[0], mws[1:]...)(rec.innermost())

			resp, err := e(t.Context(), "req")
			if err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if resp != "req" {
				t.Errorf("resp = %v, want req", resp)
			}
			if got, want := rec.got(), nesting(tt.names...); !slices.Equal(got, want) {
				t.Errorf("lines = %q, want %q", got, want)
			}
		})
	}
}

// TestChainMatchesGoKit checks our Chain nests exactly like go-kit's
// endpoint.Chain, given the same middlewares.
func TestChainMatchesGoKit(t *testing.T) {
	var ours, theirs recorder
	names := []string{"a", "b", "c", "d"}
	build := func(r *recorder) []endpoint.Middleware {
		var mws []endpoint.Middleware
		for _, n := range names {
			mws = append(mws, r.mw(n))
		}
		return mws
	}
	o, k := build(&ours), build(&theirs)
	if _, err := endpoint.Chain(o[0], o[1:]...)(ours.innermost())(t.Context(), nil); err != nil {
		t.Fatalf("ours: err = %v", err)
	}
	if _, err := kitendpoint.Chain(k[0], k[1:]...)(theirs.innermost())(t.Context(), nil); err != nil {
		t.Fatalf("go-kit: err = %v", err)
	}
	if got, want := ours.got(), theirs.got(); !slices.Equal(got, want) {
		t.Errorf("our lines = %q, want go-kit's %q", got, want)
	}
}

// TestChainReusable checks a chain can wrap several endpoints, each call
// running the full chain once, and that wrapping one does not disturb the other.
func TestChainReusable(t *testing.T) {
	var rec recorder
	chain := endpoint.Chain(rec.mw("a"), rec.mw("b"))
	e1 := chain(rec.innermost())
	e2 := chain(func(context.Context, any) (any, error) {
		rec.add("endpoint")
		return "two", nil
	})
	for range 2 {
		if resp, _ := e1(t.Context(), "one"); resp != "one" {
			t.Errorf("e1 resp = %v, want one", resp)
		}
		if resp, _ := e2(t.Context(), "one"); resp != "two" {
			t.Errorf("e2 resp = %v, want two", resp)
		}
	}
	var want []string
	for range 4 {
		want = append(want, nesting("a", "b")...)
	}
	if got := rec.got(); !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

func TestChainNilMiddlewarePanics(t *testing.T) {
	var rec recorder
	ok := rec.mw("ok")
	tests := []struct {
		name    string
		outer   endpoint.Middleware
		others  []endpoint.Middleware
		wantIdx int
	}{
		{name: "outer only", outer: nil, wantIdx: 0},
		{name: "outer with others", outer: nil, others: []endpoint.Middleware{ok}, wantIdx: 0},
		{name: "second", outer: ok, others: []endpoint.Middleware{nil}, wantIdx: 1},
		{name: "third", outer: ok, others: []endpoint.Middleware{ok, nil, ok}, wantIdx: 2},
		{name: "last of five", outer: ok, others: []endpoint.Middleware{ok, ok, ok, nil}, wantIdx: 4},
		{name: "first nil wins", outer: ok, others: []endpoint.Middleware{ok, nil, nil}, wantIdx: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustPanic(t, func() { endpoint.Chain(tt.outer, tt.others...) })
			msg, isString := v.(string)
			if !isString {
				t.Fatalf("panic value = %#v (%T), want a string", v, v)
			}
			// The message must name the index of the nil middleware.
			if want := fmt.Sprintf("middleware %d is nil", tt.wantIdx); !strings.Contains(msg, want) {
				t.Errorf("panic = %q, want it to contain %q", msg, want)
			}
		})
	}
	if got := rec.got(); len(got) != 0 {
		t.Errorf("lines = %q, want none: nothing may run at construction", got)
	}
}

func TestNop(t *testing.T) {
	tests := []struct {
		name string
		req  any
	}{
		{name: "nil request", req: nil},
		{name: "string request", req: "hello"},
		{name: "struct request", req: struct{ A int }{A: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := endpoint.Nop(t.Context(), tt.req)
			if err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			if resp != (struct{}{}) {
				t.Errorf("resp = %#v, want struct{}{}", resp)
			}
		})
	}
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := endpoint.Nop(ctx, nil); err != nil {
			t.Errorf("err = %v, want nil: Nop ignores the context", err)
		}
	})
	t.Run("is an Endpoint", func(t *testing.T) {
		var e endpoint.Endpoint = endpoint.Nop
		var rec recorder
		if _, err := endpoint.Chain(rec.mw("a"))(e)(t.Context(), nil); err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		if got, want := rec.got(), []string{"a pre", "a post"}; !slices.Equal(got, want) {
			t.Errorf("lines = %q, want %q", got, want)
		}
	})
}
