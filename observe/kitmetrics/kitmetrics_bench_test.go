package kitmetrics_test

import (
	"context"
	"testing"

	kitprometheus "github.com/go-kit/kit/metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/observe/kitmetrics"
	"github.com/resiliencekit/resilience/registry"
)

var benchSink any

// promObserver returns an Observer on a fresh Prometheus registry.
func promObserver(tb testing.TB) *kitmetrics.Observer {
	obs, err := kitmetrics.NewPrometheus("", prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	return obs
}

// gokitPromObserver returns an Observer whose call metrics use go-kit's own
// metrics/prometheus adapter, which builds a label map on every update: the
// reason NewPrometheus binds its own.
func gokitPromObserver() *kitmetrics.Observer {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calls_total"}, []string{"name", "outcome"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "call_duration_seconds", Buckets: kitmetrics.RPCBuckets}, []string{"name", "outcome"})
	return kitmetrics.New(kitmetrics.Metrics{Calls: kitprometheus.NewCounter(calls), CallDuration: kitprometheus.NewHistogram(dur)})
}

// successPaths returns the success-path endpoints measured with obs
// attached: each layer alone, the guide's stack, and the stack under
// Measure.
func successPaths(obs middleware.Observer) []struct {
	name string
	ep   endpoint.Endpoint
} {
	reg := registry.New(registry.Config{})
	stack := func() endpoint.Middleware {
		return endpoint.Chain(
			middleware.FallbackWith(middleware.FallbackConfig{Name: "embed", Value: []float32{}, Observer: obs}),
			middleware.CircuitBreaker("embed", middleware.BreakerConfig{Registry: reg, Observer: obs}),
			middleware.Retry(middleware.RetryConfig{Name: "embed", NoDelay: true, Observer: obs}),
		)
	}
	return []struct {
		name string
		ep   endpoint.Endpoint
	}{
		{"retry", middleware.Retry(middleware.RetryConfig{Name: "embed", NoDelay: true, Observer: obs})(endpoint.Nop)},
		{"breaker", middleware.CircuitBreaker("embed", middleware.BreakerConfig{Registry: reg, Observer: obs})(endpoint.Nop)},
		{"guideStack", stack()(endpoint.Nop)},
		{"measure", middleware.Measure(middleware.MeasureConfig{Name: "embed", Observer: obs})(endpoint.Nop)},
		{"measuredGuideStack", endpoint.Chain(middleware.Measure(middleware.MeasureConfig{Name: "embed", Observer: obs}), stack())(endpoint.Nop)},
	}
}

// BenchmarkObserver measures the success path with the metrics observer
// attached. Retry, the breaker and the guide's stack report nothing on
// success, so the observer costs nothing there; Measure reports every call
// (a counter and a histogram update, plus two clock reads).
func BenchmarkObserver(b *testing.B) {
	observers := []struct {
		name string
		obs  middleware.Observer
	}{
		{"prometheus", promObserver(b)},
		{"gokitPrometheus", gokitPromObserver()},
	}
	for _, o := range observers {
		for _, p := range successPaths(o.obs) {
			b.Run(o.name+"/"+p.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					resp, err := p.ep(ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					benchSink = resp
				}
			})
		}
	}
}

// BenchmarkObserverEvent measures one event through the Observer, with the
// label set already bound.
func BenchmarkObserverEvent(b *testing.B) {
	obs := promObserver(b)
	events := []struct {
		name string
		e    middleware.Event
	}{
		{"call", middleware.Event{Kind: middleware.EventCall, Name: "embed", Outcome: middleware.OutcomeSuccess, Latency: 1e6}},
		{"retry", middleware.Event{Kind: middleware.EventRetry, Name: "embed", Attempt: 1}},
	}
	for _, tt := range events {
		b.Run(tt.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				obs.Observe(ctx, tt.e)
			}
		})
	}
}

// BenchmarkBaselineChain1Nop is the baseline: [endpointtest.Baseline],
// go-kit's endpoint.Chain of one no-op middleware around endpoint.Nop.
func BenchmarkBaselineChain1Nop(b *testing.B) {
	ep := endpointtest.Baseline()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := ep(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = resp
	}
}

// The success path with the Prometheus metrics observer attached allocates
// nothing: the layers report nothing, and Measure's updates go to bound
// series.
func TestSuccessPathAllocs(t *testing.T) {
	for _, p := range successPaths(promObserver(t)) {
		t.Run(p.name, func(t *testing.T) {
			ctx := context.Background()
			_, _ = p.ep(ctx, nil) // bind the label sets
			if got := testing.AllocsPerRun(100, func() { _, _ = p.ep(ctx, nil) }); got != 0 {
				t.Errorf("allocs per call = %v, want 0", got)
			}
		})
	}
}
