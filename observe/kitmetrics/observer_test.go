package kitmetrics_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/observe/kitmetrics"
	"github.com/resiliencekit/resilience/registry"
)

var quiet = slog.New(slog.DiscardHandler)

// guideStack builds the guide's stack by hand around ep, every layer named
// "embed" and reporting to obs, with Measure just inside the fallback:
//
//	Fallback → Measure → CircuitBreaker → Retry → ep
func guideStack(obs middleware.Observer, reg *registry.Registry, b middleware.BreakerConfig, attempts int, ep endpoint.Endpoint) endpoint.Endpoint {
	b.Registry, b.Observer = reg, obs
	return endpoint.Chain(
		middleware.FallbackWith(middleware.FallbackConfig{Name: "embed", Value: []float32{}, Observer: obs}),
		middleware.Measure(middleware.MeasureConfig{Name: "embed", Observer: obs}),
		middleware.CircuitBreaker("embed", b),
		middleware.Retry(middleware.RetryConfig{Name: "embed", MaxAttempts: attempts, NoDelay: true, Observer: obs}),
	)(ep)
}

// A scripted run of the guide's stack gives exact counts.
func TestScriptedRuns(t *testing.T) {
	tests := []struct {
		name     string
		script   []string
		breaker  middleware.BreakerConfig
		attempts int
		// actions: "call", or a duration to sleep
		actions      []string
		wantCounters map[string]float64
		wantState    string        // breaker state at the end, "" when never changed
		wantOpen     []float64     // open durations observed, seconds
		wantCalls    int           // endpoint calls
		wantElapsed  time.Duration // fake time
	}{
		{
			name:     "4 failures then success",
			script:   []string{"err", "err", "err", "err", "ok"},
			attempts: 3,
			actions:  []string{"call", "call"},
			wantCounters: map[string]float64{
				"calls_total{name=embed,outcome=failure}": 1,
				"calls_total{name=embed,outcome=success}": 1,
				"retries_total{name=embed}":               3,
				"retries_exhausted_total{name=embed}":     1,
				"fallbacks_total{name=embed}":             1,
			},
			wantCalls: 5,
		},
		{
			name:     "breaker opens, half-opens, closes",
			script:   []string{"err", "err", "err", "err", "ok"},
			breaker:  middleware.BreakerConfig{FailureThreshold: 2, SuccessThreshold: 2, ResetTimeout: time.Minute},
			attempts: 2,
			actions:  []string{"call", "call", "call", "60s", "call", "call", "call"},
			wantCounters: map[string]float64{
				"calls_total{name=embed,outcome=failure}":                        2,
				"calls_total{name=embed,outcome=rejected}":                       1,
				"calls_total{name=embed,outcome=success}":                        3,
				"retries_total{name=embed}":                                      2,
				"retries_exhausted_total{name=embed}":                            2,
				"fallbacks_total{name=embed}":                                    3,
				"rejections_total{name=embed,layer=circuit_breaker}":             1,
				"breaker_transitions_total{name=embed,from=closed,to=open}":      1,
				"breaker_transitions_total{name=embed,from=open,to=half-open}":   1,
				"breaker_transitions_total{name=embed,from=half-open,to=closed}": 1,
			},
			wantState:   "closed",
			wantOpen:    []float64{60},
			wantCalls:   7,
			wantElapsed: time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSpace()
				obs := kitmetrics.New(s.metrics())
				script := endpointtest.Script(tt.script...)
				ep := guideStack(obs, registry.New(registry.Config{}), tt.breaker, tt.attempts, script.Call)
				start := time.Now()
				for _, a := range tt.actions {
					if a != "call" {
						d, err := time.ParseDuration(a)
						if err != nil {
							t.Fatal(err)
						}
						time.Sleep(d)
						synctest.Wait() // let the breaker's timer half-open it
						continue
					}
					if _, err := ep(t.Context(), "text"); err != nil {
						t.Fatalf("call: %v (the fallback serves every failure)", err)
					}
				}
				synctest.Wait()
				if got, want := time.Since(start), tt.wantElapsed; got != want {
					t.Errorf("elapsed = %v, want %v", got, want)
				}
				if got, want := script.Calls(), tt.wantCalls; got != want {
					t.Errorf("endpoint calls = %d, want %d", got, want)
				}
				got := s.Counters()
				for _, k := range slices.Sorted(maps.Keys(got)) {
					if _, ok := tt.wantCounters[k]; !ok {
						t.Errorf("%s = %v, want no such series", k, got[k])
					}
				}
				for _, k := range slices.Sorted(maps.Keys(tt.wantCounters)) {
					if g, w := got[k], tt.wantCounters[k]; g != w {
						t.Errorf("%s = %v, want %v", k, g, w)
					}
				}
				calls := 0
				for _, o := range []string{"success", "failure", "rejected"} {
					calls += len(s.Observations("call_duration_seconds{name=embed,outcome=" + o + "}"))
				}
				if got, want := calls, int(tt.wantCounters["calls_total{name=embed,outcome=success}"]+tt.wantCounters["calls_total{name=embed,outcome=failure}"]+tt.wantCounters["calls_total{name=embed,outcome=rejected}"]); got != want {
					t.Errorf("latencies observed = %d, want %d", got, want)
				}
				for _, st := range []string{"closed", "open", "half-open"} {
					v, ok := s.Gauge("breaker_state{name=embed,state=" + st + "}")
					want := 0.0
					if st == tt.wantState {
						want = 1
					}
					if tt.wantState == "" && ok {
						t.Errorf("breaker_state{state=%s} set, want no series", st)
					} else if tt.wantState != "" && (!ok || v != want) {
						t.Errorf("breaker_state{state=%s} = %v (set %v), want %v", st, v, ok, want)
					}
				}
				if got, want := s.Observations("breaker_open_duration_seconds{name=embed}"), tt.wantOpen; !slices.Equal(got, want) {
					t.Errorf("open durations = %v, want %v", got, want)
				}
			})
		})
	}
}

// A composed observer (log + metrics + a recorder) given once to a Stack
// reaches every layer; Measure wraps the built stack.
func TestStackObservers(t *testing.T) {
	s := newSpace()
	obs := kitmetrics.New(s.metrics())
	var seen []middleware.EventKind
	rec := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) { seen = append(seen, e.Kind) })
	all := middleware.Observers(middleware.LogObserver(quiet), obs, rec)
	stack := middleware.Stack{
		Fallback:       middleware.FallbackConfig{Name: "search", Value: "cached"},
		CircuitBreaker: middleware.BreakerConfig{Name: "search", FailureThreshold: 1, Registry: registry.New(registry.Config{})},
		Retry:          middleware.RetryConfig{Name: "search", MaxAttempts: 2, NoDelay: true},
		Observer:       all,
	}
	mw, err := stack.Build()
	if err != nil {
		t.Fatal(err)
	}
	ep := endpoint.Chain(middleware.Measure(middleware.MeasureConfig{Name: "search", Observer: all}), mw)(endpointtest.Script("err", "err", "ok").Call)
	for range 2 {
		if resp, err := ep(t.Context(), nil); resp != "cached" || err != nil {
			t.Fatalf("call = %v, %v; want cached, nil", resp, err)
		}
	}
	want := map[string]float64{
		"calls_total{name=search,outcome=success}":                   2, // outside the fallback: served calls are successes
		"retries_total{name=search}":                                 1,
		"retries_exhausted_total{name=search}":                       1,
		"fallbacks_total{name=search}":                               2,
		"breaker_transitions_total{name=search,from=closed,to=open}": 1,
	}
	if got := s.Counters(); !maps.Equal(got, want) {
		t.Errorf("counters = %v, want %v", got, want)
	}
	wantKinds := []middleware.EventKind{
		middleware.EventRetry, middleware.EventRetry, middleware.EventStateChange, middleware.EventFallback, middleware.EventCall,
		middleware.EventFallback, middleware.EventCall,
	}
	if !slices.Equal(seen, wantKinds) {
		t.Errorf("events = %v, want %v", seen, wantKinds)
	}
}

// StateChange, given to registry.Config.Listeners, keeps the breaker metrics of
// every breaker of the registry.
func TestStateChangeListener(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpace()
		obs := kitmetrics.New(s.metrics())
		reg := registry.New(registry.Config{Listeners: []func(registry.StateChange){obs.StateChange}})
		b, err := reg.Breaker("db", registry.Settings{ResetTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		b.Trip()
		time.Sleep(10 * time.Second)
		b.Reset()
		b.Trip()
		time.Sleep(time.Minute)
		synctest.Wait()
		want := map[string]float64{
			"breaker_transitions_total{name=db,from=closed,to=open}":    2,
			"breaker_transitions_total{name=db,from=open,to=closed}":    1,
			"breaker_transitions_total{name=db,from=open,to=half-open}": 1,
		}
		if got := s.Counters(); !maps.Equal(got, want) {
			t.Errorf("counters = %v, want %v", got, want)
		}
		if v, _ := s.Gauge("breaker_state{name=db,state=half-open}"); v != 1 {
			t.Errorf("breaker_state{state=half-open} = %v, want 1", v)
		}
		if got, want := s.Observations("breaker_open_duration_seconds{name=db}"), []float64{10, 60}; !slices.Equal(got, want) {
			t.Errorf("open durations = %v, want %v", got, want)
		}
	})
}

// Every layer's events reach their metric: timeouts, rate-limit, bulkhead
// and abandon rejections, panics.
func TestLayerEvents(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		e    middleware.Event
		want string
	}{
		{"timeout", middleware.Event{Kind: middleware.EventTimeout, Layer: "timeout", Name: "q", Latency: time.Second}, "timeouts_total{name=q}"},
		{"rate limit", middleware.Event{Kind: middleware.EventRejected, Layer: "rate_limit", Name: "q", Err: middleware.ErrRateLimited}, "rejections_total{name=q,layer=rate_limit}"},
		{"bulkhead", middleware.Event{Kind: middleware.EventRejected, Layer: "bulkhead", Name: "q", Err: middleware.ErrBulkheadFull}, "rejections_total{name=q,layer=bulkhead}"},
		{"abandoned", middleware.Event{Kind: middleware.EventRejected, Layer: "timeout", Name: "q", Err: middleware.ErrBulkheadFull}, "rejections_total{name=q,layer=timeout}"},
		{"panic", middleware.Event{Kind: middleware.EventPanic, Layer: "recover", Name: "q", Err: errBoom}, "panics_total{name=q,layer=recover}"},
		{"fallback", middleware.Event{Kind: middleware.EventFallback, Layer: "fallback", Name: "q", Err: errBoom}, "fallbacks_total{name=q}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSpace()
			obs := kitmetrics.New(s.metrics())
			obs.Observe(t.Context(), tt.e)
			obs.Observe(t.Context(), tt.e)
			want := map[string]float64{tt.want: 2}
			if got := s.Counters(); !maps.Equal(got, want) {
				t.Errorf("counters = %v, want %v", got, want)
			}
		})
	}
}

// A nil metric is skipped.
func TestNilMetrics(t *testing.T) {
	obs := kitmetrics.New(kitmetrics.Metrics{})
	for k := middleware.EventRetry; k <= middleware.EventCall; k++ {
		obs.Observe(t.Context(), middleware.Event{Kind: k, Name: "x", From: registry.StateClosed, To: registry.StateOpen, Outcome: middleware.OutcomeRejected, Err: &middleware.CircuitOpenError{Service: "x"}})
	}
	obs.HealthStatus(health.Status{Name: "db", Result: health.Pass})
}

// HealthStatus, given as health.Config.Observer, keeps each check's result and
// latency.
func TestHealthStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpace()
		obs := kitmetrics.New(s.metrics())
		checker := health.NewChecker(health.Config{Observer: obs.HealthStatus})
		fail := false
		checker.MustRegister(health.Check{Name: "db", Func: func(context.Context) error {
			time.Sleep(20 * time.Millisecond)
			if fail {
				return errors.New("down")
			}
			return nil
		}})
		checker.CheckAll(t.Context())
		fail = true
		checker.CheckAll(t.Context())
		synctest.Wait()
		for r, want := range map[string]float64{"pass": 0, "warn": 0, "fail": 1} {
			if v, ok := s.Gauge("health_status{check=db,result=" + r + "}"); !ok || v != want {
				t.Errorf("health_status{result=%s} = %v (set %v), want %v", r, v, ok, want)
			}
		}
		if got, want := s.Observations("health_check_duration_seconds{check=db}"), []float64{0.02, 0.02}; !slices.Equal(got, want) {
			t.Errorf("durations = %v, want %v", got, want)
		}
	})
}

// Sync gives every breaker of a registry its state series, whether it has
// changed state or not.
func TestSync(t *testing.T) {
	s := newSpace()
	obs := kitmetrics.New(s.metrics())
	reg := registry.New(registry.Config{})
	if _, err := reg.Breaker("db", registry.Settings{}); err != nil {
		t.Fatal(err)
	}
	api, err := reg.Breaker("api", registry.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	api.Trip()
	obs.Sync(reg)
	tests := []struct {
		name, state string
		want        float64
	}{
		{"db", "closed", 1}, {"db", "open", 0}, {"db", "half-open", 0},
		{"api", "closed", 0}, {"api", "open", 1}, {"api", "half-open", 0},
	}
	for _, tt := range tests {
		if v, ok := s.Gauge("breaker_state{name=" + tt.name + ",state=" + tt.state + "}"); !ok || v != tt.want {
			t.Errorf("breaker_state{name=%s,state=%s} = %v (set %v), want %v", tt.name, tt.state, v, ok, tt.want)
		}
	}
	if got := s.Counters(); len(got) != 0 {
		t.Errorf("counters = %v, want none (Sync counts no transition)", got)
	}
	kitmetrics.New(kitmetrics.Metrics{}).Sync(reg) // no gauge: nothing to do
}
