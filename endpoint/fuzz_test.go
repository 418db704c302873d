package endpoint_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/resiliencekit/resilience/endpoint"
)

// fuzzValue picks one of several dynamic types for the bridges to receive,
// built from the fuzzer's inputs.
func fuzzValue(kind uint8, s string, n int64) any {
	switch kind % 16 {
	case 0:
		return nil
	case 1:
		return s
	case 2:
		return int(n)
	case 3:
		return n
	case 4:
		return []byte(s)
	case 5:
		return point{X: int(n), Y: len(s)}
	case 6:
		return &point{X: int(n), Y: len(s)}
	case 7:
		return (*point)(nil)
	case 8:
		return errors.New(s)
	case 9:
		return stringer(s)
	case 10:
		return map[string]int64{s: n}
	case 11:
		return float64(n)
	case 12:
		return []string{s}
	case 13:
		return n%2 == 0
	case 14:
		return struct{}{}
	default:
		return other{X: int(n)}
	}
}

// accepts reports whether a bridge expecting want must accept v: v's dynamic
// type is want (or implements it, for an interface), or v is nil and want's
// zero value is a nil.
func accepts(want reflect.Type, v any) bool {
	if v == nil {
		switch want.Kind() {
		case reflect.Interface, reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func:
			return true
		}
		return false
	}
	if want.Kind() == reflect.Interface {
		return reflect.TypeOf(v).Implements(want)
	}
	return reflect.TypeOf(v) == want
}

// FuzzTypedBridge feeds values of arbitrary dynamic types through FromTyped
// and Typed for many static types: the bridges must never panic, and must
// return either the value itself or a *TypeError describing it.
func FuzzTypedBridge(f *testing.F) {
	f.Fuzz(func(t *testing.T, kind uint8, s string, n int64) {
		v := fuzzValue(kind, s, n)
		checkBridge[string](t, v)
		checkBridge[int](t, v)
		checkBridge[int64](t, v)
		checkBridge[[]byte](t, v)
		checkBridge[point](t, v)
		checkBridge[*point](t, v)
		checkBridge[error](t, v)
		checkBridge[fmt.Stringer](t, v)
		checkBridge[any](t, v)
		checkBridge[map[string]int64](t, v)
		checkBridge[float64](t, v)
		checkBridge[bool](t, v)
		checkBridge[struct{}](t, v)
		checkBridge[chan int](t, v)
		checkBridge[func()](t, v)
	})
}

func checkBridge[T any](t *testing.T, v any) {
	t.Helper()
	want := reflect.TypeFor[T]()
	ok := accepts(want, v)
	// What an accepted value comes back as: itself, or the zero T for nil.
	wantBack := v
	if v == nil {
		var zero T
		wantBack = zero
	}
	ctx := context.Background()

	// FromTyped: v as the request.
	called := false
	e := endpoint.FromTyped(func(_ context.Context, req T) (T, error) {
		called = true
		return req, nil
	})
	resp, err := e(ctx, v)
	if ok {
		if err != nil || !called || !reflect.DeepEqual(resp, wantBack) {
			t.Fatalf("FromTyped[%v](%#v) = %#v, %v (called %v), want the value back", want, v, resp, err, called)
		}
	} else {
		checkFuzzTypeError(t, err, "request", want, v)
		if called || resp != nil {
			t.Fatalf("FromTyped[%v](%#v) = %#v (called %v), want nil without calling", want, v, resp, called)
		}
	}

	// Typed: v as the response.
	out, err := endpoint.Typed[int, T](func(context.Context, any) (any, error) { return v, nil })(ctx, 0)
	if ok {
		if err != nil || !reflect.DeepEqual(any(out), wantBack) {
			t.Fatalf("Typed[%v] of %#v = %#v, %v, want the value back", want, v, out, err)
		}
	} else {
		checkFuzzTypeError(t, err, "response", want, v)
		var zero T
		if !reflect.DeepEqual(any(out), any(zero)) {
			t.Fatalf("Typed[%v] of %#v = %#v, want the zero value with a type error", want, v, out)
		}
	}

	// Typed: v as the response alongside an error; the error wins.
	errBoom := errors.New("boom")
	out, err = endpoint.Typed[int, T](func(context.Context, any) (any, error) { return v, errBoom })(ctx, 0)
	var zero T
	if err != errBoom || !reflect.DeepEqual(any(out), any(zero)) {
		t.Fatalf("Typed[%v] of %#v with an error = %#v, %v, want the zero value and %v", want, v, out, err, errBoom)
	}
}

func checkFuzzTypeError(t *testing.T, err error, role string, want reflect.Type, v any) {
	t.Helper()
	te, ok := errors.AsType[*endpoint.TypeError](err)
	if !ok || !errors.Is(err, endpoint.ErrType) {
		t.Fatalf("%s %#v for %v: err = %v, want a *TypeError", role, v, want, err)
	}
	if te.Role != role || te.Want != want || te.Got != reflect.TypeOf(v) {
		t.Fatalf("TypeError = {%q %v %v}, want {%q %v %v}", te.Role, te.Want, te.Got, role, want, reflect.TypeOf(v))
	}
	_ = te.Error() // must not panic
}
