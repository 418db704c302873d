package policy_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
	"github.com/resiliencekit/resilience/registry"
)

func TestSetNames(t *testing.T) {
	set, err := policy.Parse([]byte("zeta: {}\nalpha: {}\nmid: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	names := set.Names()
	if want := []string{"alpha", "mid", "zeta"}; !slices.Equal(names, want) {
		t.Errorf("Names() = %v, want %v", names, want)
	}
	names[0] = "changed"
	if got := set.Names()[0]; got != "alpha" {
		t.Errorf("Names()[0] = %q after the caller changed its copy, want alpha", got)
	}
	empty, err := policy.Parse(nil)
	if err != nil || len(empty.Names()) != 0 {
		t.Errorf("Parse(nil) = %v, %v, want an empty set", empty.Names(), err)
	}
}

// TestUnknownStack: a misspelt name is an error listing the known ones, not
// a pass-through stack.
func TestUnknownStack(t *testing.T) {
	set, err := policy.Load("../testdata/policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, get := range []struct {
		name string
		fn   func() error
	}{
		{"Stack", func() error { _, err := set.Stack("embeding_api"); return err }},
		{"StackFor", func() error { _, err := policy.StackFor[[]float32](set, "embeding_api"); return err }},
	} {
		err := get.fn()
		if !errors.Is(err, policy.ErrUnknownStack) {
			t.Fatalf("%s: err = %v, want ErrUnknownStack", get.name, err)
		}
		for _, n := range set.Names() {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("%s: err = %v, want it to list %s", get.name, err, n)
			}
		}
	}
}

// always fails.
var errDown = errors.New("down")

func failing(context.Context, any) (any, error) { return nil, errDown }

// TestStackForFallbackValue: the guide's embedding_api serves its fallback
// as the endpoint's own type, []float32, to a caller that asserts it.
func TestStackForFallbackValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set, err := policy.Load("../testdata/policies.yaml")
		if err != nil {
			t.Fatal(err)
		}
		s, err := policy.StackFor[[]float32](set, "embedding_api")
		if err != nil {
			t.Fatal(err)
		}
		s.Registry, s.Observer = registry.New(registry.Config{}), quiet
		next := endpointtest.New(endpointtest.Err(io.ErrUnexpectedEOF)) // a connection error: retried
		ep, err := s.Apply(next.Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ep(context.Background(), "text")
		if err != nil {
			t.Fatalf("err = %v, want the fallback", err)
		}
		v, ok := resp.([]float32)
		if !ok || v == nil || len(v) != 0 {
			t.Errorf("resp = %#v, want []float32{}", resp)
		}
		if got := next.Calls(); got != 3 {
			t.Errorf("calls = %d, want 3 (the retry ran before the fallback)", got)
		}
		// Set.Stack keeps JSON's types.
		plain := mustStack(t, set, "embedding_api")
		if _, ok := plain.Fallback.Value.([]any); !ok {
			t.Errorf("Stack's fallback value = %T, want []any", plain.Fallback.Value)
		}
	})
}

type status struct {
	State string   `json:"state"`
	Items []string `json:"items"`
	Count int      `json:"count"`
}

func TestStackForStruct(t *testing.T) {
	set, err := policy.Parse([]byte(`
svc:
  fallback: {value: {state: unknown, items: [a, b], count: 2}}
  timeout: {timeout: 1s, return_default: true, default: {state: slow}}
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := policy.StackFor[status](set, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if want := (status{State: "unknown", Items: []string{"a", "b"}, Count: 2}); !reflect.DeepEqual(s.Fallback.Value, want) {
		t.Errorf("fallback value = %#v, want %#v", s.Fallback.Value, want)
	}
	if want := (status{State: "slow"}); !reflect.DeepEqual(s.Timeout.Default, want) {
		t.Errorf("timeout default = %#v, want %#v", s.Timeout.Default, want)
	}
	s.Observer = quiet
	ep, err := s.Apply(failing)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ep(context.Background(), nil)
	if got, ok := resp.(status); err != nil || !ok || got.State != "unknown" {
		t.Errorf("call = %#v, %v, want the fallback status", resp, err)
	}
	// A pointer type works too.
	sp, err := policy.StackFor[*status](set, "svc")
	if p, ok := sp.Fallback.Value.(*status); err != nil || !ok || p.State != "unknown" {
		t.Errorf("StackFor[*status]: fallback value = %#v, %v", sp.Fallback.Value, err)
	}
}

// TestStackForMisfit: a value that does not fit Resp is an error naming the
// stack and the field.
func TestStackForMisfit(t *testing.T) {
	tests := []struct {
		name string
		file string
		get  func(*policy.Set) error
		path string
	}{
		{"string for []float32", "svc:\n  fallback: {value: none}\n",
			func(s *policy.Set) error { _, err := policy.StackFor[[]float32](s, "svc"); return err }, "fallback.value"},
		{"unknown field of a struct", "svc:\n  fallback: {value: {state: x, colour: red}}\n",
			func(s *policy.Set) error { _, err := policy.StackFor[status](s, "svc"); return err }, "fallback.value"},
		{"list of strings for []float32", "svc:\n  fallback: {value: [a]}\n",
			func(s *policy.Set) error { _, err := policy.StackFor[[]float32](s, "svc"); return err }, "fallback.value"},
		{"timeout default", "svc:\n  timeout: {timeout: 1s, return_default: true, default: 5}\n",
			func(s *policy.Set) error { _, err := policy.StackFor[status](s, "svc"); return err }, "timeout.default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := policy.Parse([]byte(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			err = tt.get(set)
			if !errors.Is(err, middleware.ErrInvalidConfig) || !hasPath(err, tt.path) {
				t.Fatalf("err = %v; paths %q, want ErrInvalidConfig naming %s", err, paths(err), tt.path)
			}
			if !strings.Contains(err.Error(), `stack "svc"`) {
				t.Errorf("err = %v, want it to name the stack", err)
			}
		})
	}
	t.Run("both at once", func(t *testing.T) {
		set, err := policy.Parse([]byte("svc:\n  fallback: {value: x}\n  timeout: {timeout: 1s, return_default: true, default: y}\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = policy.StackFor[[]float32](set, "svc")
		for _, p := range []string{"fallback.value", "timeout.default"} {
			if !hasPath(err, p) {
				t.Errorf("err = %v, want it to name %s", err, p)
			}
		}
	})
}

// TestStackForTimeoutDefault: a timeout's default reaches the caller as its
// type when the attempt is cut.
func TestStackForTimeoutDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set, err := policy.Parse([]byte("svc:\n  timeout: {timeout: 1s, return_default: true, default: [0.5]}\n"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := policy.StackFor[[]float32](set, "svc")
		if err != nil {
			t.Fatal(err)
		}
		s.Observer = quiet
		ep, err := s.Apply(endpointtest.New(endpointtest.Slow(time.Hour, nil)).Endpoint())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := ep(context.Background(), nil)
		if got := time.Since(start); got != time.Second {
			t.Errorf("elapsed = %v, want 1s", got)
		}
		if v, ok := resp.([]float32); err != nil || !ok || len(v) != 1 || v[0] != 0.5 {
			t.Errorf("call = %#v, %v, want []float32{0.5}", resp, err)
		}
	})
}
