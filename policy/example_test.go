package policy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
	"github.com/resiliencekit/resilience/registry"
)

func ExampleParse() {
	set, err := policy.Parse([]byte(`
embedding_api:
  fallback: {value: []}
  circuit_breaker: {failure_threshold: 5, reset_timeout: 2m}
  retry: {max_attempts: 3, delay: 1s, retry_on: [connection, timeout]}
  timeout: {timeout: 10s}
search_api:
  retry: {max_attempts: 2, delay: 0.5}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(set.Names())

	_, err = policy.Parse([]byte("api:\n  retry: {max_atempts: 3, backoff: 0.5}\n"))
	fmt.Println(errors.Is(err, middleware.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// [embedding_api search_api]
	// true
	// policy: stack "api": middleware: invalid config: retry.max_atempts: unknown key
}

func ExampleSet_Stack() {
	set, err := policy.Parse([]byte("search_api:\n  retry: {max_attempts: 2, delay: 0.5}\n  timeout: {timeout: 2s}\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := set.Stack("search_api")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)
	fmt.Println(s.Retry.Delay)

	_, err = set.Stack("serch_api")
	fmt.Println(errors.Is(err, policy.ErrUnknownStack))
	fmt.Println(err)
	// Output:
	// retry(2 attempts) → timeout(2s) → endpoint
	// 500ms
	// true
	// policy: unknown stack "serch_api" (known: search_api)
}

func ExampleStackFor() {
	set, err := policy.Parse([]byte("embedding_api:\n  fallback: {value: []}\n  retry: {max_attempts: 2, no_delay: true}\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := policy.StackFor[[]float32](set, "embedding_api")
	if err != nil {
		fmt.Println(err)
		return
	}
	s.Observer = middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	embed := func(context.Context, any) (any, error) { return nil, errors.New("model server down") }
	ep, err := s.Apply(embed)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := ep(context.Background(), "text")
	vec := resp.([]float32) // the endpoint's own type, not []any
	fmt.Printf("%#v %v\n", vec, err)

	_, err = policy.StackFor[map[string]string](set, "embedding_api")
	fmt.Println(err)
	// Output:
	// []float32{} <nil>
	// policy: stack "embedding_api": middleware: invalid config: fallback.value: does not fit map[string]string: cannot unmarshal array into Go value of type map[string]string
}

func ExampleReloader() {
	dir, err := os.MkdirTemp("", "policy")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "policies.yaml")
	write := func(s string) { os.WriteFile(path, []byte(s), 0o600) }
	write("api:\n  circuit_breaker: {failure_threshold: 2, reset_timeout: 1m}\n")

	set, err := policy.Load(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := registry.New(registry.Config{})
	r := policy.NewReloader(set, func(_ string, s middleware.Stack) middleware.Stack {
		s.Registry = reg // what a file cannot hold
		s.Observer = middleware.ObserverFunc(func(context.Context, middleware.Event) {})
		return s
	})
	ep, err := r.Endpoint("api", func(context.Context, any) (any, error) { return nil, errors.New("down") })
	if err != nil {
		fmt.Println(err)
		return
	}
	ep(context.Background(), nil) // one failure of two
	b, _ := reg.Get("api")

	// In a service: go policy.Watch(ctx, path, ...) calls this at every
	// change of the file.
	update := func(set *policy.Set, err error) {
		if err == nil {
			err = r.Update(set)
		}
		if ce, ok := errors.AsType[*middleware.ConfigError](err); ok {
			fmt.Println("kept the old policies:", ce)
		}
	}
	write("api:\n  circuit_breaker: {failure_threshold: 3, reset_timeout: 1m}\n")
	update(policy.Load(path))
	fmt.Println(b.Settings().FailureThreshold, b.Snapshot().ConsecutiveFailures, b.State())

	write("api:\n  circuit_breaker: {failure_threshold: 0.5}\n")
	update(policy.Load(path))

	ep(context.Background(), nil)
	ep(context.Background(), nil) // the third failure in a row
	fmt.Println(b.State())
	// Output:
	// 3 1 closed
	// kept the old policies: middleware: invalid config: circuit_breaker.failure_threshold: must be of type integer, not a number 0.5
	// open
}
