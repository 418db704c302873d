package kitmetrics_test

import (
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	kitprometheus "github.com/go-kit/kit/metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/observe/kitmetrics"
	"github.com/resiliencekit/resilience/registry"
)

// goKitPrometheus returns an Observer on go-kit's own Prometheus metrics
// (which panic on a label value that is not valid UTF-8) registered with reg.
func goKitPrometheus(reg *prometheus.Registry) *kitmetrics.Observer {
	counter := func(name string, labels ...string) *kitprometheus.Counter {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name}, labels)
		reg.MustRegister(v)
		return kitprometheus.NewCounter(v)
	}
	gauge := func(name string, labels ...string) *kitprometheus.Gauge {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name}, labels)
		reg.MustRegister(v)
		return kitprometheus.NewGauge(v)
	}
	histogram := func(name string, labels ...string) *kitprometheus.Histogram {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name}, labels)
		reg.MustRegister(v)
		return kitprometheus.NewHistogram(v)
	}
	return kitmetrics.New(kitmetrics.Metrics{
		Calls:               counter("calls_total", "name", "outcome"),
		CallDuration:        histogram("call_duration_seconds", "name", "outcome"),
		Retries:             counter("retries_total", "name"),
		RetriesExhausted:    counter("retries_exhausted_total", "name"),
		Timeouts:            counter("timeouts_total", "name"),
		Fallbacks:           counter("fallbacks_total", "name"),
		Rejections:          counter("rejections_total", "name", "layer"),
		Panics:              counter("panics_total", "name", "layer"),
		BreakerState:        gauge("breaker_state", "name", "state"),
		BreakerTransitions:  counter("breaker_transitions_total", "name", "from", "to"),
		BreakerOpenDuration: histogram("breaker_open_duration_seconds", "name"),
		HealthStatus:        gauge("health_status", "check", "result"),
		HealthDuration:      histogram("health_check_duration_seconds", "check"),
	})
}

// Every label the Observer produces is valid UTF-8, whatever the names it is
// given: a name that is not (a health check called "disk \xff") is recorded
// with U+FFFD in place of the bad bytes, on every metric, with both the
// ready-made Prometheus metrics and go-kit's, and never panics.
func TestInvalidUTF8Labels(t *testing.T) {
	const bad, want = "disk \xff", "disk \uFFFD"
	paths := []struct {
		name   string
		metric string
		record func(t *testing.T, obs *kitmetrics.Observer)
	}{
		{"call", "calls_total", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventCall, Name: bad, Outcome: middleware.OutcomeSuccess})
		}},
		{"call duration", "call_duration_seconds", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventCall, Name: bad, Outcome: middleware.OutcomeFailure, Latency: time.Millisecond})
		}},
		{"open-circuit rejection", "rejections_total", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventCall, Name: bad, Outcome: middleware.OutcomeRejected, Err: &registry.CircuitOpenError{Service: bad}})
		}},
		{"retry", "retries_total", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventRetry, Name: bad})
		}},
		{"retry exhausted", "retries_exhausted_total", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventRetry, Name: bad, Attempt: 3, Err: &middleware.RetryError{Attempts: 3, Err: errors.New("x")}})
		}},
		{"timeout", "timeouts_total", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventTimeout, Name: bad})
		}},
		{"fallback", "fallbacks_total", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventFallback, Name: bad})
		}},
		{"rejection", "rejections_total", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventRejected, Name: bad, Layer: bad})
		}},
		{"timeout rejection", "rejections_total", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventRejected, Layer: "timeout", Name: bad, Err: middleware.ErrBulkheadFull})
		}},
		{"panic", "panics_total", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventPanic, Name: bad, Layer: bad})
		}},
		{"state change event", "breaker_transitions_total", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventStateChange, Name: bad, From: registry.StateClosed, To: registry.StateOpen})
		}},
		{"state change event state", "breaker_state", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventStateChange, Name: bad, From: registry.StateClosed, To: registry.StateOpen})
		}},
		{"open duration", "breaker_open_duration_seconds", func(t *testing.T, obs *kitmetrics.Observer) {
			now := time.Now()
			obs.StateChange(registry.StateChange{Name: bad, From: registry.StateClosed, To: registry.StateOpen, At: now})
			obs.StateChange(registry.StateChange{Name: bad, From: registry.StateOpen, To: registry.StateHalfOpen, At: now.Add(time.Second)})
		}},
		{"sync", "breaker_state", func(t *testing.T, obs *kitmetrics.Observer) {
			reg := registry.New(registry.Config{})
			if _, err := reg.Breaker(bad, registry.Settings{}); err != nil {
				t.Skipf("registry refuses the name: %v", err)
			}
			obs.Sync(reg)
		}},
		{"health status", "health_status", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.HealthStatus(health.Status{Name: bad, Result: health.Fail})
		}},
		{"health duration", "health_check_duration_seconds", func(t *testing.T, obs *kitmetrics.Observer) {
			obs.HealthStatus(health.Status{Name: bad, Result: health.Pass, Latency: time.Millisecond})
		}},
	}
	backends := []struct {
		name string
		make func(t *testing.T, reg *prometheus.Registry) *kitmetrics.Observer
	}{
		{"NewPrometheus", func(t *testing.T, reg *prometheus.Registry) *kitmetrics.Observer {
			obs, err := kitmetrics.NewPrometheus("", reg)
			if err != nil {
				t.Fatal(err)
			}
			return obs
		}},
		{"go-kit prometheus", func(_ *testing.T, reg *prometheus.Registry) *kitmetrics.Observer { return goKitPrometheus(reg) }},
	}
	for _, b := range backends {
		for _, tt := range paths {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				obs := b.make(t, reg)
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("panicked: %v", r)
						}
					}()
					tt.record(t, obs)
					tt.record(t, obs) // a second time: through the cached series
				}()
				families, err := reg.Gather()
				if err != nil {
					t.Fatalf("Gather: %v", err)
				}
				found := false
				for _, f := range families {
					for _, m := range f.GetMetric() {
						for _, l := range m.GetLabel() {
							if !utf8.ValidString(l.GetValue()) {
								t.Errorf("%s{%s=%q}: not valid UTF-8", f.GetName(), l.GetName(), l.GetValue())
							}
							if l.GetValue() == want {
								found = found || f.GetName() == tt.metric || f.GetName() == "resilience_"+tt.metric
							}
						}
					}
				}
				if !found {
					t.Errorf("no %s series with the label %q", tt.metric, want)
				}
			})
		}
	}
}
