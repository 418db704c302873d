package kitmetrics

import (
	"errors"
	"net/http"

	"github.com/go-kit/kit/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// RPCBuckets are the buckets, in seconds, of the call latency histogram made
// by [NewPrometheus]: 1ms to 30s, dense where RPCs to a dependency usually
// fall, with room above the guide's 10s and 30s timeouts.
var RPCBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// openBuckets are the buckets, in seconds, of the breaker open-duration
// histogram: around the guide's 60s reset timeout.
var openBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800}

// healthBuckets are the buckets, in seconds, of the health check latency
// histogram, up to past the checker's 5s default timeout.
var healthBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewPrometheus returns an Observer recording into the ready-made Prometheus
// metrics listed in the package documentation, registered with reg (nil
// means prometheus.DefaultRegisterer). Their names start with namespace and
// "resilience_" ("myapp_resilience_calls_total"), or with "resilience_" alone
// when namespace is empty.
//
// It returns an error, and registers nothing, when reg refuses a metric
// (such as a second NewPrometheus with the same namespace on one registry).
// Serve the metrics with [Handler], or with promhttp as usual.
//
// The metrics implement go-kit's interfaces (see [Observer.Metrics]) but
// bind each label set to its Prometheus child once, so an update costs no
// allocation and no lock.
func NewPrometheus(namespace string, reg prometheus.Registerer) (*Observer, error) {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	var cs []prometheus.Collector
	counter := func(name, help string, labels ...string) metrics.Counter {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "resilience", Name: name, Help: help}, labels)
		cs = append(cs, v)
		return &promCounter{vec: v}
	}
	gauge := func(name, help string, labels ...string) metrics.Gauge {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "resilience", Name: name, Help: help}, labels)
		cs = append(cs, v)
		return &promGauge{vec: v}
	}
	histogram := func(name, help string, buckets []float64, labels ...string) metrics.Histogram {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "resilience", Name: name, Help: help, Buckets: buckets}, labels)
		cs = append(cs, v)
		return &promHistogram{vec: v}
	}
	m := Metrics{
		Calls:               counter("calls_total", "Calls through a Measure layer, by outcome: success, failure, rejected, canceled.", "name", "outcome"),
		CallDuration:        histogram("call_duration_seconds", "Latency of the calls through a Measure layer, by outcome.", RPCBuckets, "name", "outcome"),
		Retries:             counter("retries_total", "Retries: attempts after the first.", "name"),
		RetriesExhausted:    counter("retries_exhausted_total", "Calls on which Retry gave up.", "name"),
		Timeouts:            counter("timeouts_total", "Attempts ended by a timeout layer.", "name"),
		Fallbacks:           counter("fallbacks_total", "Calls served by a fallback.", "name"),
		Rejections:          counter("rejections_total", "Calls refused without being made, by the refusing layer.", "name", "layer"),
		Panics:              counter("panics_total", "Panics, by the layer that reported them.", "name", "layer"),
		BreakerState:        gauge("breaker_state", "1 for the circuit breaker's current state (closed, open, half-open), 0 for the others.", "name", "state"),
		BreakerTransitions:  counter("breaker_transitions_total", "Circuit breaker state changes.", "name", "from", "to"),
		BreakerOpenDuration: histogram("breaker_open_duration_seconds", "How long each open spell of a circuit breaker lasted, until half-open or a reset.", openBuckets, "name"),
		HealthStatus:        gauge("health_status", "1 for the health check's last result (pass, warn, fail), 0 for the others.", "check", "result"),
		HealthDuration:      histogram("health_check_duration_seconds", "Latency of health check runs.", healthBuckets, "check"),
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, errors.Join(errors.New("kitmetrics: registering the metrics"), err)
		}
	}
	return New(m), nil
}

// Handler returns an http.Handler serving the metrics gathered by g (nil
// means prometheus.DefaultGatherer) in the Prometheus text format: the
// /metrics endpoint. It is promhttp.HandlerFor(g, promhttp.HandlerOpts{}).
func Handler(g prometheus.Gatherer) http.Handler {
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// promLabels turns label pairs into Prometheus labels, each value made valid
// UTF-8 by [labelValue]; an odd list ends with the value "unknown", as in
// go-kit.
func promLabels(lvs []string) prometheus.Labels {
	l := make(prometheus.Labels, (len(lvs)+1)/2)
	for i := 0; i < len(lvs); i += 2 {
		v := "unknown"
		if i+1 < len(lvs) {
			v = lvs[i+1]
		}
		l[lvs[i]] = labelValue(v)
	}
	return l
}

// with returns lvs followed by more, in a new slice.
func with(lvs, more []string) []string {
	return append(append(make([]string, 0, len(lvs)+len(more)), lvs...), more...)
}

// promCounter is a go-kit Counter on a Prometheus CounterVec. With binds the
// child once when the labels are complete; Add then updates it directly.
type promCounter struct {
	vec   *prometheus.CounterVec
	lvs   []string
	bound prometheus.Counter
}

// With implements metrics.Counter.
func (c *promCounter) With(labelValues ...string) metrics.Counter {
	n := &promCounter{vec: c.vec, lvs: with(c.lvs, labelValues)}
	n.bound, _ = c.vec.GetMetricWith(promLabels(n.lvs)) // nil until complete
	return n
}

// Add implements metrics.Counter.
func (c *promCounter) Add(delta float64) {
	if c.bound != nil {
		c.bound.Add(delta)
		return
	}
	c.vec.With(promLabels(c.lvs)).Add(delta)
}

// promGauge is a go-kit Gauge on a Prometheus GaugeVec (see promCounter).
type promGauge struct {
	vec   *prometheus.GaugeVec
	lvs   []string
	bound prometheus.Gauge
}

// With implements metrics.Gauge.
func (g *promGauge) With(labelValues ...string) metrics.Gauge {
	n := &promGauge{vec: g.vec, lvs: with(g.lvs, labelValues)}
	n.bound, _ = g.vec.GetMetricWith(promLabels(n.lvs))
	return n
}

func (g *promGauge) child() prometheus.Gauge {
	if g.bound != nil {
		return g.bound
	}
	return g.vec.With(promLabels(g.lvs))
}

// Set implements metrics.Gauge.
func (g *promGauge) Set(value float64) { g.child().Set(value) }

// Add implements metrics.Gauge.
func (g *promGauge) Add(delta float64) { g.child().Add(delta) }

// promHistogram is a go-kit Histogram on a Prometheus HistogramVec (see
// promCounter).
type promHistogram struct {
	vec   *prometheus.HistogramVec
	lvs   []string
	bound prometheus.Observer
}

// With implements metrics.Histogram.
func (h *promHistogram) With(labelValues ...string) metrics.Histogram {
	n := &promHistogram{vec: h.vec, lvs: with(h.lvs, labelValues)}
	n.bound, _ = h.vec.GetMetricWith(promLabels(n.lvs))
	return n
}

// Observe implements metrics.Histogram.
func (h *promHistogram) Observe(value float64) {
	if h.bound != nil {
		h.bound.Observe(value)
		return
	}
	h.vec.With(promLabels(h.lvs)).Observe(value)
}
