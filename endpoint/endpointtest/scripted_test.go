package endpointtest_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
)

var (
	errA = errors.New("a")
	errB = errors.New("b")
)

// outcome is what one call returned.
type outcome struct {
	resp any
	err  error
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

func TestScriptedPlaysInOrderThenRepeatsLast(t *testing.T) {
	tests := []struct {
		name  string
		steps []endpointtest.Step
		want  []outcome
	}{
		{
			name:  "single step repeats",
			steps: []endpointtest.Step{endpointtest.OK(1)},
			want:  []outcome{{resp: 1}, {resp: 1}, {resp: 1}},
		},
		{
			name:  "in order then last ok repeats",
			steps: []endpointtest.Step{endpointtest.OK("a"), endpointtest.Err(errA), endpointtest.OK("b")},
			want:  []outcome{{resp: "a"}, {err: errA}, {resp: "b"}, {resp: "b"}, {resp: "b"}},
		},
		{
			name:  "last error repeats",
			steps: []endpointtest.Step{endpointtest.OK("a"), endpointtest.Err(errA), endpointtest.Err(errB)},
			want:  []outcome{{resp: "a"}, {err: errA}, {err: errB}, {err: errB}, {err: errB}},
		},
		{
			name:  "fewer calls than steps",
			steps: []endpointtest.Step{endpointtest.Err(errA), endpointtest.Err(errB), endpointtest.OK("c")},
			want:  []outcome{{err: errA}, {err: errB}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := endpointtest.New(tt.steps...)
			e := s.Endpoint()
			for i, want := range tt.want {
				resp, err := e(t.Context(), i)
				if resp != want.resp {
					t.Errorf("call %d: resp = %#v, want %#v", i, resp, want.resp)
				}
				if !errors.Is(err, want.err) || (want.err == nil) != (err == nil) {
					t.Errorf("call %d: err = %v, want %v", i, err, want.err)
				}
			}
			if got, want := s.Calls(), len(tt.want); got != want {
				t.Errorf("calls = %d, want %d", got, want)
			}
		})
	}
}

func TestScript(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		calls int
		want  []any // a response, or an error the call's error must match
	}{
		{name: "err err ok", specs: []string{"err", "err", "ok"}, want: []any{endpointtest.ErrScripted, endpointtest.ErrScripted, "ok", "ok"}},
		{name: "values", specs: []string{"ok:one", "ok:two"}, want: []any{"one", "two", "two"}},
		{name: "failure messages", specs: []string{"ok", "err:down"}, want: []any{"ok", endpointtest.ErrScripted, endpointtest.ErrScripted}},
		{name: "zero delays", specs: []string{"slow:0s", "stall:0s", "ok:x"}, want: []any{"ok", "ok", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := endpointtest.Script(tt.specs...)
			for i, want := range tt.want {
				resp, err := s.Call(t.Context(), nil)
				if wantErr, isErr := want.(error); isErr {
					if !errors.Is(err, wantErr) {
						t.Errorf("call %d: err = %v, want %v", i, err, wantErr)
					}
					if resp != nil {
						t.Errorf("call %d: resp = %#v, want nil", i, resp)
					}
					continue
				}
				if err != nil || resp != want {
					t.Errorf("call %d: = %#v, %v; want %#v, nil", i, resp, err, want)
				}
			}
			if got, want := s.Calls(), len(tt.want); got != want {
				t.Errorf("calls = %d, want %d", got, want)
			}
		})
	}
}

func TestScriptPanicsOnBadSpec(t *testing.T) {
	v := mustPanic(t, func() { endpointtest.Script("ok", "slow:later", "ok") })
	err, ok := v.(error)
	if !ok {
		t.Fatalf("panic value = %#v, want an error", v)
	}
	// The error must name the bad spec.
	if !strings.Contains(err.Error(), `"slow:later"`) {
		t.Errorf("panic = %q, want it to name \"slow:later\"", err)
	}
}

func TestZeroScriptedSucceeds(t *testing.T) {
	tests := []struct {
		name string
		s    *endpointtest.Scripted
	}{
		{name: "zero value", s: new(endpointtest.Scripted)},
		{name: "New with no steps", s: endpointtest.New()},
		{name: "Script with no specs", s: endpointtest.Script()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 3 {
				resp, err := tt.s.Call(t.Context(), i)
				if err != nil || resp != "ok" {
					t.Errorf("call %d = %#v, %v; want \"ok\", nil", i, resp, err)
				}
			}
			if got, want := tt.s.Calls(), 3; got != want {
				t.Errorf("calls = %d, want %d", got, want)
			}
		})
	}
}

// TestTimedSteps checks, in fake time, how long each timed step takes and
// what it returns, with and without the context ending first.
func TestTimedSteps(t *testing.T) {
	const never = time.Duration(0)
	tests := []struct {
		name string
		step endpointtest.Step
		// timeout is the context's deadline from the call; cancelAfter
		// cancels it (negative: before the call). never means not at all.
		timeout, cancelAfter time.Duration
		wantElapsed          time.Duration
		wantResp             any
		wantErr              error
	}{
		{name: "slow finishes", step: endpointtest.Slow(2*time.Second, "r"),
			wantElapsed: 2 * time.Second, wantResp: "r"},
		{name: "slow finishes before deadline", step: endpointtest.Slow(2*time.Second, "r"), timeout: 3 * time.Second,
			wantElapsed: 2 * time.Second, wantResp: "r"},
		{name: "slow returns at deadline", step: endpointtest.Slow(2*time.Second, "r"), timeout: 500 * time.Millisecond,
			wantElapsed: 500 * time.Millisecond, wantErr: context.DeadlineExceeded},
		{name: "slow returns at cancel", step: endpointtest.Slow(2*time.Second, "r"), cancelAfter: 1500 * time.Millisecond,
			wantElapsed: 1500 * time.Millisecond, wantErr: context.Canceled},
		{name: "slow with cancelled context", step: endpointtest.Slow(2*time.Second, "r"), cancelAfter: -1,
			wantElapsed: 0, wantErr: context.Canceled},
		{name: "stall finishes", step: endpointtest.Stall(2*time.Second, "r"),
			wantElapsed: 2 * time.Second, wantResp: "r"},
		{name: "stall ignores deadline", step: endpointtest.Stall(2*time.Second, "r"), timeout: 500 * time.Millisecond,
			wantElapsed: 2 * time.Second, wantResp: "r"},
		{name: "stall ignores cancel", step: endpointtest.Stall(2*time.Second, "r"), cancelAfter: time.Second,
			wantElapsed: 2 * time.Second, wantResp: "r"},
		{name: "stall ignores cancelled context", step: endpointtest.Stall(2*time.Second, "r"), cancelAfter: -1,
			wantElapsed: 2 * time.Second, wantResp: "r"},
		{name: "hang returns at deadline", step: endpointtest.Hang(), timeout: 3 * time.Second,
			wantElapsed: 3 * time.Second, wantErr: context.DeadlineExceeded},
		{name: "hang returns at cancel", step: endpointtest.Hang(), cancelAfter: time.Minute,
			wantElapsed: time.Minute, wantErr: context.Canceled},
		{name: "hang with cancelled context", step: endpointtest.Hang(), cancelAfter: -1,
			wantElapsed: 0, wantErr: context.Canceled},
		{name: "ok takes no time", step: endpointtest.OK("r"), timeout: time.Second,
			wantElapsed: 0, wantResp: "r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.timeout != never {
					var cancelT context.CancelFunc
					ctx, cancelT = context.WithTimeout(ctx, tt.timeout)
					defer cancelT()
				}
				switch {
				case tt.cancelAfter < 0:
					cancel()
				case tt.cancelAfter > 0:
					time.AfterFunc(tt.cancelAfter, cancel)
				}
				s := endpointtest.New(tt.step)

				start := time.Now()
				resp, err := s.Call(ctx, nil)
				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("elapsed = %v, want %v", got, tt.wantElapsed)
				}
				if resp != tt.wantResp {
					t.Errorf("resp = %#v, want %#v", resp, tt.wantResp)
				}
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
			})
		})
	}
}

// TestParsedTimedSteps checks the text forms wait exactly their duration.
func TestParsedTimedSteps(t *testing.T) {
	tests := []struct {
		name        string
		spec        string
		wantElapsed time.Duration
	}{
		{name: "slow", spec: "slow:1500ms", wantElapsed: 1500 * time.Millisecond},
		{name: "stall", spec: "stall:2m", wantElapsed: 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				resp, err := endpointtest.Script(tt.spec).Call(t.Context(), nil)
				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("elapsed = %v, want %v", got, tt.wantElapsed)
				}
				if err != nil || resp != "ok" {
					t.Errorf("= %#v, %v; want \"ok\", nil", resp, err)
				}
			})
		})
	}
}

func TestPanicStep(t *testing.T) {
	tests := []struct {
		name string
		s    *endpointtest.Scripted
		want any
	}{
		{name: "string", s: endpointtest.New(endpointtest.Panic("boom")), want: "boom"},
		{name: "error", s: endpointtest.New(endpointtest.Panic(errA)), want: errA},
		{name: "int", s: endpointtest.New(endpointtest.Panic(42)), want: 42},
		{name: "parsed default", s: endpointtest.Script("panic"), want: "endpointtest: scripted panic"},
		{name: "parsed message", s: endpointtest.Script("panic:oops"), want: "oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 2 {
				v := mustPanic(t, func() { _, _ = tt.s.Call(t.Context(), nil) })
				if v != tt.want {
					t.Errorf("call %d: panic = %#v, want %#v", i, v, tt.want)
				}
			}
			if got, want := tt.s.Calls(), 2; got != want {
				t.Errorf("calls = %d, want %d", got, want)
			}
		})
	}
}

// TestScriptedConcurrent checks concurrent calls take successive steps: each
// step before the last is played exactly once, and Calls counts every call.
func TestScriptedConcurrent(t *testing.T) {
	const (
		goroutines = 64
		perG       = 500
		nSteps     = 10
	)
	steps := make([]endpointtest.Step, nSteps)
	for i := range steps {
		steps[i] = endpointtest.OK(i)
	}
	s := endpointtest.New(steps...)

	var (
		mu     sync.Mutex
		played = make(map[any]int)
		wg     sync.WaitGroup
	)
	for range goroutines {
		wg.Go(func() {
			local := make(map[any]int)
			for range perG {
				resp, err := s.Call(context.Background(), nil)
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				local[resp]++
			}
			mu.Lock()
			defer mu.Unlock()
			for k, n := range local {
				played[k] += n
			}
		})
	}
	wg.Wait()

	total := goroutines * perG
	if got := s.Calls(); got != total {
		t.Errorf("calls = %d, want %d", got, total)
	}
	for i := range nSteps {
		want := 1
		if i == nSteps-1 {
			want = total - (nSteps - 1)
		}
		if got := played[i]; got != want {
			t.Errorf("step %d played %d times, want %d", i, got, want)
		}
	}
	if len(played) != nSteps {
		t.Errorf("responses = %v, want only steps 0..%d", played, nSteps-1)
	}
}

// TestEndpointIsCall checks Endpoint and Call share one script and counter.
func TestEndpointIsCall(t *testing.T) {
	s := endpointtest.Script("ok:1", "ok:2", "ok:3")
	e := s.Endpoint()
	got := []any{}
	for _, call := range []func(context.Context, any) (any, error){e, s.Call, e} {
		resp, err := call(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, resp)
	}
	if want := []any{"1", "2", "3"}; !slices.Equal(got, want) {
		t.Errorf("responses = %q, want %q", got, want)
	}
	if n := s.Calls(); n != 3 {
		t.Errorf("calls = %d, want 3", n)
	}
}
