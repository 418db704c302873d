package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
)

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
		cfg         middleware.ChaosConfig
		wantErr     error // nil: success
		wantPanic   any
		wantElapsed time.Duration
		wantCalls   int
		wantEvents  int
	}{
		{name: "zero config passes through", wantCalls: 1},
		{name: "error every call, default error", cfg: middleware.ChaosConfig{ErrorRate: 1}, wantErr: middleware.ErrInjected, wantEvents: 1},
		{name: "error every call, own error", cfg: middleware.ChaosConfig{ErrorRate: 1, Error: errReset}, wantErr: errReset, wantEvents: 1},
		{name: "latency every call", cfg: middleware.ChaosConfig{LatencyRate: 1, Latency: 3 * time.Second}, wantElapsed: 3 * time.Second, wantCalls: 1, wantEvents: 1},
		{name: "default latency is 30s", cfg: middleware.ChaosConfig{LatencyRate: 1}, wantElapsed: 30 * time.Second, wantCalls: 1, wantEvents: 1},
		{name: "latency then error", cfg: middleware.ChaosConfig{LatencyRate: 1, Latency: time.Second, ErrorRate: 1}, wantErr: middleware.ErrInjected, wantElapsed: time.Second, wantEvents: 2},
		{name: "panic, default value", cfg: middleware.ChaosConfig{PanicRate: 1}, wantPanic: middleware.ErrInjected, wantEvents: 1},
		{name: "panic, own value", cfg: middleware.ChaosConfig{PanicRate: 1, PanicValue: "boom", ErrorRate: 1}, wantPanic: "boom", wantEvents: 1},
		{name: "rand above the rate injects nothing", cfg: middleware.ChaosConfig{ErrorRate: 0.5, Rand: func() float64 { return 0.5 }}, wantCalls: 1},
		{name: "rand below the rate injects", cfg: middleware.ChaosConfig{ErrorRate: 0.5, Rand: func() float64 { return 0.49 }}, wantErr: middleware.ErrInjected, wantEvents: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				tt.cfg.Observer = rec
				next := &okEndpoint{}
				ep := middleware.NewChaos(tt.cfg).Middleware()(next.call)
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
	c := middleware.NewChaos(middleware.ChaosConfig{Name: "upstream", PanicRate: 1, PanicValue: "boom", Observer: rec})
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
		ep := middleware.NewChaos(middleware.ChaosConfig{LatencyRate: 1, Latency: time.Minute, Observer: quiet}).Middleware()(next.call)
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
	c := middleware.NewChaos(middleware.ChaosConfig{ErrorRate: 1, Observer: quiet})
	ep := c.Middleware()(endpoint.Nop)
	steps := []struct {
		name    string
		do      func()
		wantErr error
		enabled bool
	}{
		{name: "new chaos is on", do: func() {}, wantErr: middleware.ErrInjected, enabled: true},
		{name: "disable", do: c.Disable, enabled: false},
		{name: "enable", do: c.Enable, wantErr: middleware.ErrInjected, enabled: true},
		{name: "set rate 0", do: func() { mustSet(t, c, middleware.ChaosConfig{Observer: quiet}) }, enabled: true},
		{name: "set rate 1", do: func() { mustSet(t, c, middleware.ChaosConfig{ErrorRate: 1, Observer: quiet}) }, wantErr: middleware.ErrInjected, enabled: true},
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
	if err := c.Set(middleware.ChaosConfig{ErrorRate: 2}); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Set(bad) = %v, want ErrInvalidConfig", err)
	}
	if got := c.Config().ErrorRate; got != 1 {
		t.Errorf("after a bad Set, ErrorRate = %v, want 1", got)
	}
}

func mustSet(t *testing.T, c *middleware.Chaos, cfg middleware.ChaosConfig) {
	t.Helper()
	if err := c.Set(cfg); err != nil {
		t.Fatal(err)
	}
}

// TestChaosSeedRepeats checks that a seeded chaos injects the same faults on
// every run, that Set restarts the sequence, and that the rate holds.
func TestChaosSeedRepeats(t *testing.T) {
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	cfg := middleware.ChaosConfig{ErrorRate: 0.3, Seed: 42, Observer: quiet}
	pattern := func(c *middleware.Chaos, n int) []bool {
		ep := c.Middleware()(endpoint.Nop)
		out := make([]bool, n)
		for i := range out {
			_, err := ep(context.Background(), nil)
			out[i] = err != nil
		}
		return out
	}
	const n = 2000
	a := pattern(middleware.NewChaos(cfg), n)
	c := middleware.NewChaos(cfg)
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
	other := pattern(middleware.NewChaos(middleware.ChaosConfig{ErrorRate: 0.3, Seed: 43, Observer: quiet}), n)
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
	c := middleware.NewChaos(middleware.ChaosConfig{ErrorRate: 0.5, Seed: 7, Observer: quiet})
	ep := c.Middleware()(endpoint.Nop)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				if (i+j)%50 == 0 {
					_ = c.Set(middleware.ChaosConfig{ErrorRate: float64(j%3) / 2, Seed: 7, Observer: quiet})
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
		cfg       middleware.ChaosConfig
		wantPaths []string
	}{
		{name: "zero", cfg: middleware.ChaosConfig{}},
		{name: "full", cfg: middleware.ChaosConfig{ErrorRate: 1, LatencyRate: 0.5, Latency: time.Second, PanicRate: 0.01, Seed: 1}},
		{name: "rates out of range", cfg: middleware.ChaosConfig{ErrorRate: -0.1, LatencyRate: 1.5, PanicRate: math.NaN()},
			wantPaths: []string{"chaos.error_rate", "chaos.latency_rate", "chaos.panic_rate"}},
		{name: "negative latency", cfg: middleware.ChaosConfig{Latency: -time.Second}, wantPaths: []string{"chaos.latency"}},
		{name: "seed and rand", cfg: middleware.ChaosConfig{Seed: 1, Rand: func() float64 { return 0 }}, wantPaths: []string{"chaos.seed"}},
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
					t.Errorf("NewChaos panic = %v, want ErrInvalidConfig", r)
				}
			}()
			middleware.NewChaos(tt.cfg)
		})
	}
}

// The chaos layer's faults drive the layers above it: here an injected
// connection failure is retried and a retry that gives up falls back.
func TestChaosUnderRetry(t *testing.T) {
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	chaos := middleware.NewChaos(middleware.ChaosConfig{ErrorRate: 1, Error: io.ErrUnexpectedEOF, Observer: quiet})
	next := &okEndpoint{}
	ep := endpoint.Chain(
		middleware.FallbackWith(middleware.FallbackConfig{Value: "fallback", Observer: quiet}),
		middleware.Retry(middleware.RetryConfig{NoDelay: true, RetryIf: middleware.IsConnection, Observer: quiet}),
		chaos.Middleware(),
	)(next.call)
	resp, err := ep(context.Background(), nil)
	if resp != "fallback" || err != nil {
		t.Errorf("outage: resp, err = %v, %v, want fallback, nil", resp, err)
	}
	chaos.Disable()
	resp, err = ep(context.Background(), nil)
	if resp != "ok" || err != nil {
		t.Errorf("recovered: resp, err = %v, %v, want ok, nil", resp, err)
	}
	if got := next.Calls(); got != 1 {
		t.Errorf("calls = %d, want 1", got)
	}
}

func TestChaosConfigJSON(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     middleware.ChaosConfig
		wantPath string // of the *ConfigError, when decoding fails
	}{
		{name: "string latency", in: `{"error_rate": 0.2, "latency_rate": 0.5, "latency": "2s", "seed": 7, "name": "api"}`,
			want: middleware.ChaosConfig{ErrorRate: 0.2, LatencyRate: 0.5, Latency: 2 * time.Second, Seed: 7, Name: "api"}},
		{name: "latency in seconds", in: `{"latency_rate": 1, "latency": 0.25}`,
			want: middleware.ChaosConfig{LatencyRate: 1, Latency: 250 * time.Millisecond}},
		{name: "bad latency", in: `{"latency": "soon"}`, wantPath: "chaos.latency"},
		{name: "unknown key", in: `{"eror_rate": 1}`, wantPath: "chaos.eror_rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got middleware.ChaosConfig
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantPath != "" {
				ce, ok := errors.AsType[*middleware.ConfigError](err)
				if !ok || !errors.Is(err, middleware.ErrInvalidConfig) {
					t.Fatalf("err = %v, want a *ConfigError", err)
				}
				if ce.Path != tt.wantPath {
					t.Errorf("path = %q, want %q", ce.Path, tt.wantPath)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ErrorRate != tt.want.ErrorRate || got.LatencyRate != tt.want.LatencyRate || got.Latency != tt.want.Latency ||
				got.Seed != tt.want.Seed || got.Name != tt.want.Name {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
			// And back: the latency is written as a string.
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var again middleware.ChaosConfig
			if err := json.Unmarshal(b, &again); err != nil || again.Latency != got.Latency {
				t.Errorf("round trip %s: latency %v, %v; want %v", b, again.Latency, err, got.Latency)
			}
		})
	}
}
