package endpointtest_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
)

// The realistic failure steps are what a policy file's retry_on classes
// retry: a stack loaded from YAML with retry_on [connection, timeout,
// http-5xx, http-429] recovers from each, waits out a Retry-After hint, and
// never retries a plain scripted error or a 404.
func TestRealisticStepsAreRetriedByClass(t *testing.T) {
	const policyFile = `
api:
  retry: {max_attempts: 2, delay: 10ms, max_delay: 1m, retry_on: [connection, timeout, http-5xx, http-429]}
`
	tests := []struct {
		name      string
		first     string
		wantCalls int
		wantErr   bool
		wantWait  time.Duration // fake time the call took, at least
	}{
		{name: "connection refused", first: "refused", wantCalls: 2},
		{name: "timeout", first: "timeout", wantCalls: 2},
		{name: "503", first: "http:503", wantCalls: 2},
		{name: "503 with Retry-After", first: "http:503:3s", wantCalls: 2, wantWait: 3 * time.Second},
		{name: "429 with Retry-After", first: "http:429:2s", wantCalls: 2, wantWait: 2 * time.Second},
		{name: "404", first: "http:404", wantCalls: 1, wantErr: true},
		{name: "plain scripted error", first: "err", wantCalls: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				set, err := policy.Parse([]byte(policyFile))
				if err != nil {
					t.Fatal(err)
				}
				stack, err := set.Stack("api")
				if err != nil {
					t.Fatal(err)
				}
				stack.Observer = middleware.Discard
				script := endpointtest.Script(tt.first, "ok")
				ep, err := stack.Apply(script.Endpoint())
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				_, err = ep(t.Context(), nil)
				if gotErr := err != nil; gotErr != tt.wantErr {
					t.Errorf("err = %v, want error %v", err, tt.wantErr)
				}
				if tt.wantErr && !errors.Is(err, endpointtest.ErrScripted) {
					t.Errorf("err = %v, want it to match ErrScripted", err)
				}
				if got := script.Calls(); got != tt.wantCalls {
					t.Errorf("calls = %d, want %d", got, tt.wantCalls)
				}
				if got := time.Since(start); got < tt.wantWait {
					t.Errorf("call took %v, want at least the Retry-After %v", got, tt.wantWait)
				}
			})
		})
	}
}
