package kitmetrics_test

import (
	"bufio"
	"context"
	"errors"
	"expvar"
	"fmt"
	"net/http/httptest"
	"strings"

	kitexpvar "github.com/go-kit/kit/metrics/expvar"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/observe/kitmetrics"
	"github.com/resiliencekit/resilience/registry"
)

// NewPrometheus registers the ready-made metrics; Handler serves them. Here
// a breaker opens after two failed calls and rejects the third.
func ExampleNewPrometheus() {
	reg := prometheus.NewRegistry()
	obs, err := kitmetrics.NewPrometheus("", reg)
	if err != nil {
		panic(err)
	}
	down := func(context.Context, any) (any, error) { return nil, errors.New("connection refused") }
	ep := endpoint.Chain(
		middleware.FallbackWith(middleware.FallbackConfig{Name: "search", Value: "cached", Observer: obs}),
		middleware.Measure(middleware.MeasureConfig{Name: "search", Observer: obs}),
		middleware.CircuitBreaker("search", middleware.BreakerConfig{FailureThreshold: 2, Registry: registry.New(registry.Config{}), Observer: obs}),
	)(down)
	for range 3 {
		_, _ = ep(context.Background(), nil)
	}

	rr := httptest.NewRecorder()
	kitmetrics.Handler(reg).ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rr.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "resilience_calls_total") || strings.HasPrefix(line, "resilience_breaker_state") ||
			strings.HasPrefix(line, "resilience_fallbacks_total") || strings.HasPrefix(line, "resilience_rejections_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// resilience_breaker_state{name="search",state="closed"} 0
	// resilience_breaker_state{name="search",state="half-open"} 0
	// resilience_breaker_state{name="search",state="open"} 1
	// resilience_calls_total{name="search",outcome="failure"} 2
	// resilience_calls_total{name="search",outcome="rejected"} 1
	// resilience_fallbacks_total{name="search"} 3
	// resilience_rejections_total{layer="circuit_breaker",name="search"} 1
}

// New takes any go-kit backend, metric by metric; a nil field is not
// recorded. Here, expvar (which ignores labels) counts retries.
func ExampleNew() {
	retries := kitexpvar.NewCounter("example_resilience_retries")
	obs := kitmetrics.New(kitmetrics.Metrics{Retries: retries})
	calls := 0
	flaky := func(context.Context, any) (any, error) {
		if calls++; calls < 3 {
			return nil, errors.New("timeout")
		}
		return "ok", nil
	}
	ep := middleware.Retry(middleware.RetryConfig{Name: "api", MaxAttempts: 3, NoDelay: true, Observer: obs})(flaky)
	resp, err := ep(context.Background(), nil)
	fmt.Println(resp, err)
	fmt.Println("retries:", expvar.Get("example_resilience_retries"))
	// Output:
	// ok <nil>
	// retries: 2
}

// StateChange keeps the breaker metrics of every breaker of a registry.
func ExampleObserver_StateChange() {
	reg := prometheus.NewRegistry()
	obs, err := kitmetrics.NewPrometheus("", reg)
	if err != nil {
		panic(err)
	}
	breakers := registry.New(registry.Config{Listeners: []func(registry.StateChange){obs.StateChange}})
	b, err := breakers.Breaker("db", registry.Settings{})
	if err != nil {
		panic(err)
	}
	b.Trip()
	b.Reset()

	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		if f.GetName() != "resilience_breaker_transitions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var from, to string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "from":
					from = l.GetValue()
				case "to":
					to = l.GetValue()
				}
			}
			fmt.Printf("%s -> %s: %v\n", from, to, m.GetCounter().GetValue())
		}
	}
	// Output:
	// closed -> open: 1
	// open -> closed: 1
}
