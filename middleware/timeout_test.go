package middleware_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

const timeoutD = 100 * time.Millisecond

// count returns how many of r's events are of kind k.
func count(r *timeoutEvents, k middleware.EventKind) int {
	n := 0
	for _, e := range r.Events() {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// sleepThen returns an endpoint that ignores its context, sleeps d and then
// returns (resp, err).
func sleepThen(d time.Duration, resp any, err error) endpoint.Endpoint {
	return func(context.Context, any) (any, error) {
		time.Sleep(d)
		return resp, err
	}
}

func checkErrs(t *testing.T, err error, want, notWant []error) {
	t.Helper()
	if len(want) == 0 && err != nil {
		t.Errorf("err = %v, want nil", err)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("errors.Is(%v, %v) = false, want true", err, w)
		}
	}
	for _, w := range notWant {
		if errors.Is(err, w) {
			t.Errorf("errors.Is(%v, %v) = true, want false", err, w)
		}
	}
}

func TestTimeoutCooperative(t *testing.T) {
	d := timeoutD
	tests := []struct {
		name         string
		ep           endpoint.Endpoint
		wantResp     any
		wantErrs     []error
		notErrs      []error
		wantElapsed  time.Duration
		wantTimeouts int
	}{
		{
			name:         "hang ends at the deadline",
			ep:           endpointtest.New(endpointtest.Hang()).Endpoint(),
			wantErrs:     []error{middleware.ErrTimeout, context.DeadlineExceeded},
			wantElapsed:  d,
			wantTimeouts: 1,
		},
		{
			name:         "slow call ends at the deadline",
			ep:           endpointtest.New(endpointtest.Slow(3*d, "late")).Endpoint(),
			wantErrs:     []error{middleware.ErrTimeout, context.DeadlineExceeded},
			wantElapsed:  d,
			wantTimeouts: 1,
		},
		{
			name:        "fast call passes through",
			ep:          endpointtest.New(endpointtest.Slow(d/2, "fast")).Endpoint(),
			wantResp:    "fast",
			wantElapsed: d / 2,
		},
		{
			name:     "immediate success",
			ep:       endpointtest.New(endpointtest.OK("ok")).Endpoint(),
			wantResp: "ok",
		},
		{
			name:     "error before the deadline passes through",
			ep:       endpointtest.New(endpointtest.Err(endpointtest.ErrScripted)).Endpoint(),
			wantErrs: []error{endpointtest.ErrScripted},
			notErrs:  []error{middleware.ErrTimeout, context.DeadlineExceeded},
		},
		{
			name:        "success after the deadline is returned",
			ep:          endpointtest.New(endpointtest.Stall(2*d, "late")).Endpoint(),
			wantResp:    "late",
			wantElapsed: 2 * d,
		},
		{
			name:         "error after the deadline is a timeout wrapping it",
			ep:           sleepThen(2*d, nil, endpointtest.ErrScripted),
			wantErrs:     []error{middleware.ErrTimeout, context.DeadlineExceeded, endpointtest.ErrScripted},
			wantElapsed:  2 * d,
			wantTimeouts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &timeoutEvents{}
				ep := middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: d, Observer: rec})(tt.ep)
				start := time.Now()
				resp, err := ep(t.Context(), "req")
				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("elapsed = %v, want %v", got, tt.wantElapsed)
				}
				if resp != tt.wantResp {
					t.Errorf("resp = %v, want %v", resp, tt.wantResp)
				}
				checkErrs(t, err, tt.wantErrs, tt.notErrs)
				if got := count(rec, middleware.EventTimeout); got != tt.wantTimeouts {
					t.Errorf("timeout events = %d, want %d", got, tt.wantTimeouts)
				}
				if got := len(rec.Events()); got != tt.wantTimeouts {
					t.Errorf("events = %d, want %d", got, tt.wantTimeouts)
				}
			})
		})
	}
}

func TestTimeoutAbandon(t *testing.T) {
	d := timeoutD
	tests := []struct {
		name         string
		steps        []endpointtest.Step
		wantResp     any
		wantErrs     []error
		notErrs      []error
		wantElapsed  time.Duration
		wantInFlight int // calls still running when the layer returns
		wantTimeouts int
	}{
		{
			name:         "stalled call is abandoned at the deadline",
			steps:        []endpointtest.Step{endpointtest.Stall(10*d, "late")},
			wantErrs:     []error{middleware.ErrTimeout, context.DeadlineExceeded},
			wantElapsed:  d,
			wantInFlight: 1,
			wantTimeouts: 1,
		},
		{
			name:         "hang ends at the deadline",
			steps:        []endpointtest.Step{endpointtest.Hang()},
			wantErrs:     []error{middleware.ErrTimeout, context.DeadlineExceeded},
			wantElapsed:  d,
			wantTimeouts: 1,
		},
		{
			name:        "fast call passes through",
			steps:       []endpointtest.Step{endpointtest.Slow(d/2, "fast")},
			wantResp:    "fast",
			wantElapsed: d / 2,
		},
		{
			name:     "immediate success",
			steps:    []endpointtest.Step{endpointtest.OK("ok")},
			wantResp: "ok",
		},
		{
			name:     "error before the deadline passes through",
			steps:    []endpointtest.Step{endpointtest.Err(endpointtest.ErrScripted)},
			wantErrs: []error{endpointtest.ErrScripted},
			notErrs:  []error{middleware.ErrTimeout, context.DeadlineExceeded},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &timeoutEvents{}
				counter := endpointtest.Count(endpointtest.New(tt.steps...).Endpoint())
				ep := middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: d, Abandon: true, Observer: rec})(counter.Endpoint())
				start := time.Now()
				resp, err := ep(t.Context(), "req")
				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("elapsed = %v, want %v", got, tt.wantElapsed)
				}
				synctest.Wait() // let a worker that is about to finish finish
				if got := counter.InFlight(); got != tt.wantInFlight {
					t.Errorf("in flight after return = %d, want %d", got, tt.wantInFlight)
				}
				if resp != tt.wantResp {
					t.Errorf("resp = %v, want %v", resp, tt.wantResp)
				}
				checkErrs(t, err, tt.wantErrs, tt.notErrs)

				time.Sleep(10 * d) // every abandoned worker finishes
				synctest.Wait()
				if got := counter.InFlight(); got != 0 {
					t.Errorf("in flight at the end = %d, want 0", got)
				}
				if got := counter.Calls(); got != 1 {
					t.Errorf("calls = %d, want 1", got)
				}
				if got := count(rec, middleware.EventTimeout); got != tt.wantTimeouts {
					t.Errorf("timeout events = %d, want %d", got, tt.wantTimeouts)
				}
				if got := len(rec.Events()); got != tt.wantTimeouts {
					t.Errorf("events = %d, want %d", got, tt.wantTimeouts)
				}
			})
		})
	}
}

func TestTimeoutCallerContext(t *testing.T) {
	d := timeoutD
	tests := []struct {
		name        string
		ctx         func(t *testing.T) context.Context
		step        endpointtest.Step
		wantErr     error
		wantElapsed time.Duration
	}{
		{
			name: "caller deadline earlier",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), d/2)
				t.Cleanup(cancel)
				return ctx
			},
			step:        endpointtest.Hang(),
			wantErr:     context.DeadlineExceeded,
			wantElapsed: d / 2,
		},
		{
			name: "caller cancels",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(d/4, cancel)
				t.Cleanup(cancel)
				return ctx
			},
			step:        endpointtest.Hang(),
			wantErr:     context.Canceled,
			wantElapsed: d / 4,
		},
		{
			name: "caller cancels a call that ignores ctx",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(d/4, cancel)
				t.Cleanup(cancel)
				return ctx
			},
			step:    endpointtest.Stall(2*d, "late"),
			wantErr: context.Canceled,
			// Cooperative waits for the success and returns it; abandon
			// returns at once: see the loop below.
			wantElapsed: d / 4,
		},
	}
	for _, abandon := range []bool{false, true} {
		for _, returnDefault := range []bool{false, true} {
			for _, tt := range tests {
				name := "cooperative/"
				if abandon {
					name = "abandon/"
				}
				if returnDefault {
					name += "return_default/"
				}
				t.Run(name+tt.name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						rec := &timeoutEvents{}
						cfg := middleware.TimeoutConfig{Timeout: d, Abandon: abandon, Observer: rec}
						if returnDefault {
							cfg.ReturnDefault, cfg.Default = true, "default"
						}
						ep := middleware.TimeoutWith(cfg)(endpointtest.New(tt.step).Endpoint())
						ctx := tt.ctx(t)
						start := time.Now()
						resp, err := ep(ctx, "req")
						elapsed := time.Since(start)
						if !abandon && tt.step.Kind == endpointtest.KindStall {
							// The caller's cancel cannot stop a cooperative
							// call that ignores ctx; its success comes back.
							if resp != "late" || err != nil {
								t.Errorf("resp, err = %v, %v, want late, nil", resp, err)
							}
							if elapsed != 2*d {
								t.Errorf("elapsed = %v, want %v", elapsed, 2*d)
							}
						} else {
							if elapsed != tt.wantElapsed {
								t.Errorf("elapsed = %v, want %v", elapsed, tt.wantElapsed)
							}
							if resp != nil {
								t.Errorf("resp = %v, want nil", resp)
							}
							if err != ctx.Err() {
								t.Errorf("err = %v, want the caller's ctx.Err() %v unchanged", err, ctx.Err())
							}
							checkErrs(t, err, []error{tt.wantErr}, []error{middleware.ErrTimeout})
						}
						if got := len(rec.Events()); got != 0 {
							t.Errorf("events = %d, want 0", got)
						}
						time.Sleep(2 * d) // abandoned workers finish
					})
				})
			}
		}
	}
}

// TestTimeoutCooperativeCallerCancelsLate checks that a caller who gives up
// after the layer's deadline passed, but before the endpoint returned, gets
// the endpoint's outcome unchanged: the caller's context ended first as far as
// the result is concerned.
func TestTimeoutCooperativeCallerCancelsLate(t *testing.T) {
	d := timeoutD
	for _, returnDefault := range []bool{false, true} {
		t.Run(map[bool]string{false: "raise", true: "return_default"}[returnDefault], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &timeoutEvents{}
				cfg := middleware.TimeoutConfig{Timeout: d, Observer: rec}
				if returnDefault {
					cfg.ReturnDefault, cfg.Default = true, "default"
				}
				ep := middleware.TimeoutWith(cfg)(sleepThen(2*d, nil, endpointtest.ErrScripted))
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				time.AfterFunc(3*d/2, cancel)
				resp, err := ep(ctx, "req")
				if resp != nil {
					t.Errorf("resp = %v, want nil", resp)
				}
				checkErrs(t, err, []error{endpointtest.ErrScripted}, []error{middleware.ErrTimeout, context.DeadlineExceeded})
				if got := len(rec.Events()); got != 0 {
					t.Errorf("events = %d, want 0", got)
				}
			})
		})
	}
}

func TestTimeoutAbandonCallerContextAlreadyDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		counter := endpointtest.Count(endpointtest.New(endpointtest.OK("ok")).Endpoint())
		ep := middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: timeoutD, Abandon: true})(counter.Endpoint())
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := ep(ctx, "req")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if got := counter.Calls(); got != 0 {
			t.Errorf("calls = %d, want 0", got)
		}
	})
}

func TestTimeoutReturnDefault(t *testing.T) {
	d := timeoutD
	tests := []struct {
		name    string
		abandon bool
		step    endpointtest.Step
		def     any
	}{
		{name: "cooperative", step: endpointtest.Hang(), def: "default"},
		{name: "cooperative nil default", step: endpointtest.Hang(), def: nil},
		{name: "abandon", abandon: true, step: endpointtest.Stall(10*d, "late"), def: []string{}},
		{name: "abandon nil default", abandon: true, step: endpointtest.Stall(10*d, "late"), def: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &timeoutEvents{}
				ep := middleware.TimeoutWith(middleware.TimeoutConfig{
					Timeout: d, Abandon: tt.abandon, Default: tt.def, ReturnDefault: true, Observer: rec,
				})(endpointtest.New(tt.step).Endpoint())
				start := time.Now()
				resp, err := ep(t.Context(), "req")
				if got := time.Since(start); got != d {
					t.Errorf("elapsed = %v, want %v", got, d)
				}
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				switch want := tt.def.(type) {
				case []string:
					if got, ok := resp.([]string); !ok || got == nil || len(got) != len(want) {
						t.Errorf("resp = %#v, want %#v", resp, want)
					}
				default:
					if resp != tt.def {
						t.Errorf("resp = %v, want %v", resp, tt.def)
					}
				}
				events := rec.Events()
				if len(events) != 1 {
					t.Fatalf("events = %d, want 1", len(events))
				}
				if e := events[0]; e.Kind != middleware.EventTimeout || !errors.Is(e.Err, middleware.ErrTimeout) {
					t.Errorf("event = %v with err %v, want timeout with ErrTimeout", e.Kind, e.Err)
				}
				time.Sleep(10 * d)
			})
		})
	}
}

func TestTimeoutEvents(t *testing.T) {
	d := timeoutD
	for _, abandon := range []bool{false, true} {
		t.Run(map[bool]string{false: "cooperative", true: "abandon"}[abandon], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &timeoutEvents{}
				ep := middleware.TimeoutWith(middleware.TimeoutConfig{
					Timeout: d, Abandon: abandon, Name: "embed", Observer: rec,
				})(endpointtest.New(endpointtest.Slow(5*d, "late")).Endpoint())
				const calls = 3
				for range calls {
					if _, err := ep(t.Context(), "req"); !errors.Is(err, middleware.ErrTimeout) {
						t.Errorf("err = %v, want ErrTimeout", err)
					}
				}
				events := rec.Events()
				if len(events) != calls {
					t.Fatalf("events = %d, want %d (one per timeout)", len(events), calls)
				}
				for _, e := range events {
					if e.Kind != middleware.EventTimeout {
						t.Errorf("kind = %v, want %v", e.Kind, middleware.EventTimeout)
					}
					if e.Layer != "timeout" {
						t.Errorf("layer = %q, want %q", e.Layer, "timeout")
					}
					if e.Name != "embed" {
						t.Errorf("name = %q, want %q", e.Name, "embed")
					}
					if e.Latency != d {
						t.Errorf("latency = %v, want %v", e.Latency, d)
					}
					if !errors.Is(e.Err, middleware.ErrTimeout) {
						t.Errorf("event err = %v, want ErrTimeout", e.Err)
					}
				}
				synctest.Wait()
			})
		})
	}
}

// timeoutHandler is a slog.Handler that records what it is given.
type timeoutHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *timeoutHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *timeoutHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *timeoutHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *timeoutHandler) WithGroup(string) slog.Handler      { return h }

func TestTimeoutLogger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &timeoutHandler{}
		ep := middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: timeoutD, Observer: middleware.LogObserver(slog.New(h))})(
			endpointtest.New(endpointtest.Hang()).Endpoint())
		if _, err := ep(t.Context(), "req"); !errors.Is(err, middleware.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.records) != 1 {
			t.Fatalf("records = %d, want 1", len(h.records))
		}
		r := h.records[0]
		if r.Level != slog.LevelWarn {
			t.Errorf("level = %v, want %v", r.Level, slog.LevelWarn)
		}
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
		if got := attrs["event"].String(); got != "timeout" {
			t.Errorf("event = %q, want %q", got, "timeout")
		}
		if got := attrs["latency"].Duration(); got != timeoutD {
			t.Errorf("latency = %v, want %v", got, timeoutD)
		}
	})
}

// timeoutRecover calls ep and returns what it panicked with.
func timeoutRecover(ctx context.Context, ep endpoint.Endpoint) (v any, panicked bool) {
	defer func() {
		if panicked {
			v = recover()
		}
	}()
	panicked = true
	_, _ = ep(ctx, "req")
	return nil, false
}

func TestTimeoutPanic(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		abandon bool
		value   any
	}{
		{name: "cooperative string", value: "boom"},
		{name: "cooperative error", value: errBoom},
		{name: "abandon string", abandon: true, value: "boom"},
		{name: "abandon error", abandon: true, value: errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &timeoutEvents{}
				counter := endpointtest.Count(endpointtest.New(endpointtest.Panic(tt.value)).Endpoint())
				ep := middleware.TimeoutWith(middleware.TimeoutConfig{
					Timeout: timeoutD, Abandon: tt.abandon, Observer: rec,
				})(counter.Endpoint())
				v, panicked := timeoutRecover(t.Context(), ep)
				if !panicked {
					t.Fatal("no panic reached the caller")
				}
				if v != tt.value {
					t.Errorf("recovered %#v, want the original %#v", v, tt.value)
				}
				if got := counter.Panics(); got != 1 {
					t.Errorf("panics = %d, want 1", got)
				}
				if !tt.abandon {
					// Cooperative mode does not touch panics: they unwind
					// through the layer.
					if got := len(rec.Events()); got != 0 {
						t.Errorf("events = %d, want 0", got)
					}
					return
				}
				events := rec.Events()
				if len(events) != 1 || events[0].Kind != middleware.EventPanic {
					t.Fatalf("events = %v, want one panic event", events)
				}
				pe, ok := errors.AsType[*middleware.PanicError](events[0].Err)
				if !ok {
					t.Fatalf("event err = %T, want *PanicError", events[0].Err)
				}
				if pe.Value != tt.value {
					t.Errorf("PanicError.Value = %#v, want %#v", pe.Value, tt.value)
				}
				// The stack is the worker's, where the endpoint panicked.
				if !strings.Contains(string(pe.Stack), "endpointtest") {
					t.Errorf("PanicError.Stack does not show the endpoint:\n%s", pe.Stack)
				}
			})
		})
	}
}

func TestTimeoutAbandonLatePanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := timeoutD
		rec := &timeoutEvents{}
		ep := middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: d, Abandon: true, MaxAbandoned: 1, Observer: rec})(
			func(context.Context, any) (any, error) {
				time.Sleep(2 * d)
				panic("late")
			})
		if _, err := ep(t.Context(), "req"); !errors.Is(err, middleware.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		time.Sleep(2 * d)
		synctest.Wait()
		if got := count(rec, middleware.EventPanic); got != 1 {
			t.Fatalf("panic events = %d, want 1", got)
		}
		for _, e := range rec.Events() {
			if e.Kind != middleware.EventPanic {
				continue
			}
			if pe, ok := errors.AsType[*middleware.PanicError](e.Err); !ok || pe.Value != "late" {
				t.Errorf("panic event err = %v, want a *PanicError of %q", e.Err, "late")
			}
		}
		// The panicked worker was uncounted: a new call is admitted.
		if _, err := ep(t.Context(), "req"); errors.Is(err, middleware.ErrBulkheadFull) {
			t.Errorf("err = %v, want the call admitted", err)
		}
		time.Sleep(2 * d)
	})
}

func TestTimeoutAbandonGoexit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep := middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: timeoutD, Abandon: true})(
			func(context.Context, any) (any, error) {
				runtime.Goexit()
				return nil, nil
			})
		returned := false
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			_, _ = ep(t.Context(), "req")
			returned = true
		}()
		<-exited
		if returned {
			t.Error("the caller returned, want its goroutine to exit as the endpoint's did")
		}
	})
}

func TestTimeoutMaxAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := timeoutD
		rec := &timeoutEvents{}
		counter := endpointtest.Count(endpointtest.New(
			endpointtest.Stall(10*d, "late"),
			endpointtest.Stall(10*d, "late"),
			endpointtest.OK("fresh"),
		).Endpoint())
		ep := middleware.TimeoutWith(middleware.TimeoutConfig{
			Timeout: d, Abandon: true, MaxAbandoned: 2, Observer: rec,
		})(counter.Endpoint())

		for i := range 2 {
			start := time.Now()
			if _, err := ep(t.Context(), "req"); !errors.Is(err, middleware.ErrTimeout) {
				t.Errorf("call %d: err = %v, want ErrTimeout", i+1, err)
			}
			if got := time.Since(start); got != d {
				t.Errorf("call %d: elapsed = %v, want %v", i+1, got, d)
			}
		}

		start := time.Now()
		_, err := ep(t.Context(), "req")
		if !errors.Is(err, middleware.ErrBulkheadFull) {
			t.Errorf("err = %v, want ErrBulkheadFull (the abandon cap)", err)
		}
		if errors.Is(err, middleware.ErrTimeout) {
			t.Errorf("err = %v matches ErrTimeout, want a rejection only", err)
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("rejection elapsed = %v, want 0", got)
		}
		if got := counter.Calls(); got != 2 {
			t.Errorf("calls = %d, want 2 (the rejected call must not reach the endpoint)", got)
		}
		if got := count(rec, middleware.EventRejected); got != 1 {
			t.Errorf("rejected events = %d, want 1", got)
		}
		for _, e := range rec.Events() {
			if e.Kind == middleware.EventRejected && (e.Layer != "timeout" || !errors.Is(e.Err, middleware.ErrBulkheadFull)) {
				t.Errorf("rejected event = %+v, want layer timeout, ErrBulkheadFull", e)
			}
		}

		// One stalled worker finishes: one call is admitted again.
		time.Sleep(10*d - 2*d + d/2) // the first worker finishes at 10d
		synctest.Wait()
		if got := counter.InFlight(); got != 1 {
			t.Fatalf("in flight = %d, want 1", got)
		}
		resp, err := ep(t.Context(), "req")
		if resp != "fresh" || err != nil {
			t.Errorf("resp, err = %v, %v, want fresh, nil", resp, err)
		}
		time.Sleep(d) // the second worker finishes at 11d
		synctest.Wait()
		if got := counter.InFlight(); got != 0 {
			t.Errorf("in flight = %d, want 0", got)
		}
		if got := count(rec, middleware.EventTimeout); got != 2 {
			t.Errorf("timeout events = %d, want 2", got)
		}
	})
}

// TestTimeoutAbandonRace races many workers that finish at the very instant
// of the deadline against their callers. Either outcome is legal for each
// call, and every abandoned worker must be counted once and uncounted once.
func TestTimeoutAbandonRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := timeoutD
		const n = 200
		steps := make([]endpointtest.Step, 0, n+1)
		for range n {
			steps = append(steps, endpointtest.Stall(d, "ok"))
		}
		// Repeated from here on: long enough to outlast n sequential calls.
		long := 2 * n * d
		steps = append(steps, endpointtest.Stall(long, "late"))
		rec := &timeoutEvents{}
		counter := endpointtest.Count(endpointtest.New(steps...).Endpoint())
		ep := middleware.TimeoutWith(middleware.TimeoutConfig{
			Timeout: d, Abandon: true, MaxAbandoned: n, Observer: rec,
		})(counter.Endpoint())

		var wg sync.WaitGroup
		var mu sync.Mutex
		var won, timedOut int
		for range n {
			wg.Go(func() {
				resp, err := ep(t.Context(), "req")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && resp == "ok":
					won++
				case errors.Is(err, middleware.ErrTimeout):
					timedOut++
				default:
					t.Errorf("resp, err = %v, %v, want ok or ErrTimeout", resp, err)
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		t.Logf("worker won %d, timed out %d", won, timedOut)
		if got := count(rec, middleware.EventTimeout); got != timedOut {
			t.Errorf("timeout events = %d, want %d", got, timedOut)
		}
		if got := counter.InFlight(); got != 0 {
			t.Fatalf("in flight = %d, want 0", got)
		}

		// The count of abandoned calls is back to 0: exactly n more stalled
		// calls are abandoned before the next is rejected.
		for i := range n {
			if _, err := ep(t.Context(), "req"); !errors.Is(err, middleware.ErrTimeout) {
				t.Fatalf("call %d: err = %v, want ErrTimeout (count left above 0)", i+1, err)
			}
		}
		if _, err := ep(t.Context(), "req"); !errors.Is(err, middleware.ErrBulkheadFull) {
			t.Errorf("err = %v, want ErrBulkheadFull (the abandon cap) (count left below 0)", err)
		}
		time.Sleep(long)
	})
}

// timeoutConfigErrors returns the *ConfigErrors joined in err.
func timeoutConfigErrors(err error) []*middleware.ConfigError {
	var out []*middleware.ConfigError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, timeoutConfigErrors(e)...)
		}
		return out
	}
	if ce, ok := errors.AsType[*middleware.ConfigError](err); ok {
		out = append(out, ce)
	}
	return out
}

func TestTimeoutConfigValidate(t *testing.T) {
	tests := []struct {
		name      string
		cfg       middleware.TimeoutConfig
		wantPaths []string
	}{
		{name: "timeout only", cfg: middleware.TimeoutConfig{Timeout: time.Second}},
		{name: "abandon with cap", cfg: middleware.TimeoutConfig{Timeout: time.Second, Abandon: true, MaxAbandoned: 5}},
		{name: "default with return_default", cfg: middleware.TimeoutConfig{Timeout: time.Second, Default: 0, ReturnDefault: true}},
		{name: "nil default with return_default", cfg: middleware.TimeoutConfig{Timeout: time.Second, ReturnDefault: true}},
		{name: "zero value", cfg: middleware.TimeoutConfig{}, wantPaths: []string{"timeout.timeout"}},
		{name: "negative timeout", cfg: middleware.TimeoutConfig{Timeout: -time.Second}, wantPaths: []string{"timeout.timeout"}},
		{
			name:      "negative max_abandoned",
			cfg:       middleware.TimeoutConfig{Timeout: time.Second, Abandon: true, MaxAbandoned: -1},
			wantPaths: []string{"timeout.max_abandoned"},
		},
		{
			name:      "default without return_default",
			cfg:       middleware.TimeoutConfig{Timeout: time.Second, Default: "cached"},
			wantPaths: []string{"timeout.default"},
		},
		{
			name:      "every problem at once",
			cfg:       middleware.TimeoutConfig{Timeout: 0, MaxAbandoned: -3, Default: []string{}},
			wantPaths: []string{"timeout.timeout", "timeout.max_abandoned", "timeout.default"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if !checkValidate(t, err, tt.wantPaths) {
				return
			}
			ces := timeoutConfigErrors(err)
			if len(ces) != len(tt.wantPaths) {
				t.Fatalf("problems = %d, want %d: %v", len(ces), len(tt.wantPaths), err)
			}
			for i, ce := range ces {
				if ce.Path != tt.wantPaths[i] {
					t.Errorf("problem %d path = %q, want %q", i, ce.Path, tt.wantPaths[i])
				}
				if !strings.HasPrefix(ce.Field, "TimeoutConfig.") {
					t.Errorf("problem %d field = %q, want TimeoutConfig.*", i, ce.Field)
				}
				if !strings.Contains(ce.Error(), tt.wantPaths[i]) {
					t.Errorf("message %q does not name %q", ce.Error(), tt.wantPaths[i])
				}
			}
		})
	}
}

func TestTimeoutConstructorPanics(t *testing.T) {
	tests := []struct {
		name  string
		build func()
	}{
		{name: "Timeout(0)", build: func() { middleware.Timeout(0) }},
		{name: "Timeout(-1s)", build: func() { middleware.Timeout(-time.Second) }},
		{name: "TimeoutWith bad config", build: func() {
			middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: time.Second, MaxAbandoned: -1})
		}},
		{name: "nil endpoint", build: func() { middleware.Timeout(time.Second)(nil) }},
		{name: "nil endpoint abandon", build: func() {
			middleware.TimeoutWith(middleware.TimeoutConfig{Timeout: time.Second, Abandon: true})(nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				err, ok := v.(error)
				if !ok || !errors.Is(err, middleware.ErrInvalidConfig) {
					t.Errorf("panic value = %#v, want an error matching ErrInvalidConfig", v)
				}
			}()
			tt.build()
		})
	}
}

// TestTimeoutCooperativeAllocs checks that the cooperative success path
// allocates no more than a bare context.WithTimeoutCause and its cancel.
func TestTimeoutCooperativeAllocs(t *testing.T) {
	ctx := context.Background()
	var next endpoint.Endpoint = endpoint.Nop
	baseline := testing.AllocsPerRun(100, func() {
		ctx2, cancel := context.WithTimeoutCause(ctx, time.Second, middleware.ErrTimeout)
		_, _ = next(ctx2, nil)
		cancel()
	})
	ep := middleware.Timeout(time.Second)(endpoint.Nop)
	got := testing.AllocsPerRun(100, func() { _, _ = ep(ctx, nil) })
	if got > baseline {
		t.Errorf("allocs = %v, want at most %v (bare WithTimeoutCause)", got, baseline)
	}
}
