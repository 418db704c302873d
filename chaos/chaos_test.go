package chaos_test

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/chaos"
	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
)

// recorder is an Observer that keeps every event it is given.
type recorder = endpointtest.Recorder

// ok is an endpoint that counts its calls and answers "ok".
type okEndpoint struct {
	mu    sync.Mutex
	calls int
}

func (o *okEndpoint) call(context.Context, any) (any, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	return "ok", nil
}

func (o *okEndpoint) Calls() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}

func TestChaosInjects(t *testing.T) {
	errReset := io.ErrUnexpectedEOF
	tests := []struct {
		name        string
		cfg         chaos.Config
		wantErr     error // nil: success
		wantPanic   any
		wantElapsed time.Duration
		wantCalls   int
		wantEvents  int
	}{
		{name: "zero config passes through", wantCalls: 1},
		{name: "error every call, default error", cfg: chaos.Config{ErrorRate: 1}, wantErr: chaos.ErrInjected, wantEvents: 1},
		{name: "error every call, own error", cfg: chaos.Config{ErrorRate: 1, Error: errReset}, wantErr: errReset, wantEvents: 1},
		{name: "latency every call", cfg: chaos.Config{LatencyRate: 1, Latency: 3 * time.Second}, wantElapsed: 3 * time.Second, wantCalls: 1, wantEvents: 1},
		{name: "default latency is 30s", cfg: chaos.Config{LatencyRate: 1}, wantElapsed: 30 * time.Second, wantCalls: 1, wantEvents: 1},
		{name: "latency then error", cfg: chaos.Config{LatencyRate: 1, Latency: time.Second, ErrorRate: 1}, wantErr: chaos.ErrInjected, wantElapsed: time.Second, wantEvents: 2},
		{name: "panic, default value", cfg: chaos.Config{PanicRate: 1}, wantPanic: chaos.ErrInjected, wantEvents: 1},
		{name: "panic, own value", cfg: chaos.Config{PanicRate: 1, PanicValue: "boom", ErrorRate: 1}, wantPanic: "boom", wantEvents: 1},
		{name: "rand above the rate injects nothing", cfg: chaos.Config{ErrorRate: 0.5, Rand: func() float64 { return 0.5 }}, wantCalls: 1},
		{name: "rand below the rate injects", cfg: chaos.Config{ErrorRate: 0.5, Rand: func() float64 { return 0.49 }}, wantErr: chaos.ErrInjected, wantEvents: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				tt.cfg.Observer = rec
				next := &okEndpoint{}
				ep := chaos.New(tt.cfg).Middleware()(next.call)
				start := time.Now()
				var (
					resp any
					err  error
				)
				recovered := func() (v any) {
					defer func() { v = recover() }()
					resp, err = ep(context.Background(), "req")
					return nil
				}()
				if recovered != tt.wantPanic {
					t.Errorf("panic = %v, want %v", recovered, tt.wantPanic)
				}
				if tt.wantPanic == nil {
					if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
						t.Errorf("err = %v, want %v", err, tt.wantErr)
					}
					if tt.wantErr == nil && resp != "ok" {
						t.Errorf("resp = %v, want ok", resp)
					}
				}
				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("elapsed = %v, want %v", got, tt.wantElapsed)
				}
				if got := next.Calls(); got != tt.wantCalls {
					t.Errorf("calls = %d, want %d", got, tt.wantCalls)
				}
				events := rec.Events()
				if got := len(events); got != tt.wantEvents {
					t.Errorf("events = %d, want %d", got, tt.wantEvents)
				}
				for _, e := range events {
					if e.Kind != middleware.EventChaos || e.Layer != "chaos" {
						t.Errorf("event = %v/%s, want chaos/chaos", e.Kind, e.Layer)
					}
				}
			})
		})
	}
}

func TestChaosEventFields(t *testing.T) {
	rec := &recorder{}
	c := chaos.New(chaos.Config{Name: "upstream", PanicRate: 1, PanicValue: "boom", Observer: rec})
	func() {
		defer func() { _ = recover() }()
		_, _ = c.Middleware()(endpoint.Nop)(context.Background(), nil)
	}()
	events := rec.Events()
	if len(events) != 1 {
		t.Fatalf("events = %d, want 1", len(events))
	}
	pe, ok := errors.AsType[*middleware.PanicError](events[0].Err)
	if !ok {
		t.Fatalf("event error = %v, want a *PanicError", events[0].Err)
	}
	if pe.Value != "boom" {
		t.Errorf("panic value = %v, want boom", pe.Value)
	}
	if events[0].Name != "upstream" {
		t.Errorf("name = %q, want upstream", events[0].Name)
	}
}

func TestChaosLatencyHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		next := &okEndpoint{}
		quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
		ep := chaos.New(chaos.Config{LatencyRate: 1, Latency: time.Minute, Observer: quiet}).Middleware()(next.call)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := ep(ctx, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		if got, want := time.Since(start), 2*time.Second; got != want {
			t.Errorf("elapsed = %v, want %v", got, want)
		}
		if got := next.Calls(); got != 0 {
			t.Errorf("calls = %d, want 0", got)
		}
	})
}

func TestChaosSwitchesAtRunTime(t *testing.T) {
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	c := chaos.New(chaos.Config{ErrorRate: 1, Observer: quiet})
	ep := c.Middleware()(endpoint.Nop)
	steps := []struct {
		name    string
		do      func()
		wantErr error
		enabled bool
	}{
		{name: "new chaos is on", do: func() {}, wantErr: chaos.ErrInjected, enabled: true},
		{name: "disable", do: c.Disable, enabled: false},
		{name: "enable", do: c.Enable, wantErr: chaos.ErrInjected, enabled: true},
		{name: "set rate 0", do: func() { mustSet(t, c, chaos.Config{Observer: quiet}) }, enabled: true},
		{name: "set rate 1", do: func() { mustSet(t, c, chaos.Config{ErrorRate: 1, Observer: quiet}) }, wantErr: chaos.ErrInjected, enabled: true},
	}
	for _, tt := range steps {
		tt.do()
		_, err := ep(context.Background(), nil)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
		}
		if got := c.Enabled(); got != tt.enabled {
			t.Errorf("%s: Enabled() = %t, want %t", tt.name, got, tt.enabled)
		}
	}
	if got := c.Config().ErrorRate; got != 1 {
		t.Errorf("Config().ErrorRate = %v, want 1", got)
	}
	// A bad configuration leaves the chaos as it was.
	if err := c.Set(chaos.Config{ErrorRate: 2}); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Set(bad) = %v, want ErrInvalidConfig", err)
	}
	if got := c.Config().ErrorRate; got != 1 {
		t.Errorf("after a bad Set, ErrorRate = %v, want 1", got)
	}
}

func mustSet(t *testing.T, c *chaos.Chaos, cfg chaos.Config) {
	t.Helper()
	if err := c.Set(cfg); err != nil {
		t.Fatal(err)
	}
}

// TestChaosSeedRepeats checks that a seeded chaos injects the same faults on
// every run, that Set restarts the sequence, and that the rate holds.
func TestChaosSeedRepeats(t *testing.T) {
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	cfg := chaos.Config{ErrorRate: 0.3, Seed: 42, Observer: quiet}
	pattern := func(c *chaos.Chaos, n int) []bool {
		ep := c.Middleware()(endpoint.Nop)
		out := make([]bool, n)
		for i := range out {
			_, err := ep(context.Background(), nil)
			out[i] = err != nil
		}
		return out
	}
	const n = 2000
	a := pattern(chaos.New(cfg), n)
	c := chaos.New(cfg)
	b := pattern(c, n)
	mustSet(t, c, cfg)
	again := pattern(c, n)
	failed := 0
	for i := range a {
		if a[i] != b[i] || a[i] != again[i] {
			t.Fatalf("draw %d differs between runs of the same seed", i)
		}
		if a[i] {
			failed++
		}
	}
	if got := float64(failed) / n; math.Abs(got-0.3) > 0.05 {
		t.Errorf("error fraction = %.3f, want about 0.3", got)
	}
	other := pattern(chaos.New(chaos.Config{ErrorRate: 0.3, Seed: 43, Observer: quiet}), n)
	same := 0
	for i := range a {
		if a[i] == other[i] {
			same++
		}
	}
	if same == n {
		t.Errorf("seeds 42 and 43 give the same sequence")
	}
}

func TestChaosConcurrent(t *testing.T) {
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	c := chaos.New(chaos.Config{ErrorRate: 0.5, Seed: 7, Observer: quiet})
	ep := c.Middleware()(endpoint.Nop)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				if (i+j)%50 == 0 {
					_ = c.Set(chaos.Config{ErrorRate: float64(j%3) / 2, Seed: 7, Observer: quiet})
				}
				if j%70 == 0 {
					c.Disable()
					c.Enable()
				}
				_, _ = ep(context.Background(), nil)
			}
		})
	}
	wg.Wait()
}

func TestChaosConfigValidate(t *testing.T) {
	tests := []struct {
		name      string
		cfg       chaos.Config
		wantPaths []string
	}{
		{name: "zero", cfg: chaos.Config{}},
		{name: "full", cfg: chaos.Config{ErrorRate: 1, LatencyRate: 0.5, Latency: time.Second, PanicRate: 0.01, Seed: 1}},
		{name: "rates out of range", cfg: chaos.Config{ErrorRate: -0.1, LatencyRate: 1.5, PanicRate: math.NaN()},
			wantPaths: []string{"chaos.error_rate", "chaos.latency_rate", "chaos.panic_rate"}},
		{name: "negative latency", cfg: chaos.Config{Latency: -time.Second}, wantPaths: []string{"chaos.latency"}},
		{name: "seed and rand", cfg: chaos.Config{Seed: 1, Rand: func() float64 { return 0 }}, wantPaths: []string{"chaos.seed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wantPaths) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, middleware.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			var paths []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				ce, ok := errors.AsType[*middleware.ConfigError](e)
				if !ok {
					t.Fatalf("problem %v is not a *ConfigError", e)
				}
				paths = append(paths, ce.Path)
			}
			if len(paths) != len(tt.wantPaths) {
				t.Fatalf("paths = %v, want %v", paths, tt.wantPaths)
			}
			for i := range paths {
				if paths[i] != tt.wantPaths[i] {
					t.Errorf("paths[%d] = %q, want %q", i, paths[i], tt.wantPaths[i])
				}
			}
			defer func() {
				if r, _ := recover().(error); !errors.Is(r, middleware.ErrInvalidConfig) {
					t.Errorf("chaos.New panic = %v, want ErrInvalidConfig", r)
				}
			}()
			chaos.New(tt.cfg)
		})
	}
}

// The chaos layer's faults drive the layers above it: here an injected
// connection failure is retried and a retry that gives up falls back.
func TestChaosUnderRetry(t *testing.T) {
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	outage := chaos.New(chaos.Config{ErrorRate: 1, Error: io.ErrUnexpectedEOF, Observer: quiet})
	next := &okEndpoint{}
	ep := endpoint.Chain(
		middleware.FallbackWith(middleware.FallbackConfig{Value: "fallback", Observer: quiet}),
		middleware.Retry(middleware.RetryConfig{NoDelay: true, RetryIf: errclass.Connection, Observer: quiet}),
		outage.Middleware(),
	)(next.call)
	resp, err := ep(context.Background(), nil)
	if resp != "fallback" || err != nil {
		t.Errorf("outage: resp, err = %v, %v, want fallback, nil", resp, err)
	}
	outage.Disable()
	resp, err = ep(context.Background(), nil)
	if resp != "ok" || err != nil {
		t.Errorf("recovered: resp, err = %v, %v, want ok, nil", resp, err)
	}
	if got := next.Calls(); got != 1 {
		t.Errorf("calls = %d, want 1", got)
	}
}
