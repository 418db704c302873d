package kitmetrics_test

import (
	"slices"
	"strings"
	"sync"

	"github.com/go-kit/kit/metrics"
	"github.com/go-kit/kit/metrics/generic"

	"github.com/resiliencekit/resilience/observe/kitmetrics"
)

// space is an in-memory go-kit metrics backend on metrics/generic that keeps
// every label set's series, so a test can read each one. (A generic
// metric's With returns a detached copy, so the parent alone cannot say what
// its labelled series hold.)
type space struct {
	mu         sync.Mutex
	counters   map[string]*generic.Counter
	gauges     map[string]*generic.Gauge
	histograms map[string][]float64
}

func newSpace() *space {
	return &space{counters: map[string]*generic.Counter{}, gauges: map[string]*generic.Gauge{}, histograms: map[string][]float64{}}
}

// key writes a series as name{k=v,k=v}, labels in the order given.
func key(name string, lvs []string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i := 0; i+1 < len(lvs); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(lvs[i] + "=" + lvs[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

func (s *space) counter(k string) *generic.Counter {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counters[k]
	if !ok {
		c = generic.NewCounter(k)
		s.counters[k] = c
	}
	return c
}

func (s *space) gauge(k string) *generic.Gauge {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gauges[k]
	if !ok {
		g = generic.NewGauge(k)
		s.gauges[k] = g
	}
	return g
}

// Counter returns the value of a counter series, 0 when never updated.
func (s *space) Counter(k string) float64 {
	s.mu.Lock()
	c := s.counters[k]
	s.mu.Unlock()
	if c == nil {
		return 0
	}
	return c.Value()
}

// Gauge returns the value of a gauge series and whether it was ever set.
func (s *space) Gauge(k string) (float64, bool) {
	s.mu.Lock()
	g := s.gauges[k]
	s.mu.Unlock()
	if g == nil {
		return 0, false
	}
	return g.Value(), true
}

// Observations returns the values a histogram series observed.
func (s *space) Observations(k string) []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.histograms[k])
}

// Counters returns every counter series with a value.
func (s *space) Counters() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]float64{}
	for k, c := range s.counters {
		if v := c.Value(); v != 0 {
			out[k] = v
		}
	}
	return out
}

type spaceCounter struct {
	s    *space
	name string
	lvs  []string
}

func (c spaceCounter) With(lvs ...string) metrics.Counter {
	return spaceCounter{c.s, c.name, append(slices.Clone(c.lvs), lvs...)}
}
func (c spaceCounter) Add(d float64) { c.s.counter(key(c.name, c.lvs)).Add(d) }

type spaceGauge struct {
	s    *space
	name string
	lvs  []string
}

func (g spaceGauge) With(lvs ...string) metrics.Gauge {
	return spaceGauge{g.s, g.name, append(slices.Clone(g.lvs), lvs...)}
}
func (g spaceGauge) Set(v float64) { g.s.gauge(key(g.name, g.lvs)).Set(v) }
func (g spaceGauge) Add(d float64) { g.s.gauge(key(g.name, g.lvs)).Add(d) }

type spaceHistogram struct {
	s    *space
	name string
	lvs  []string
}

func (h spaceHistogram) With(lvs ...string) metrics.Histogram {
	return spaceHistogram{h.s, h.name, append(slices.Clone(h.lvs), lvs...)}
}
func (h spaceHistogram) Observe(v float64) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	k := key(h.name, h.lvs)
	h.s.histograms[k] = append(h.s.histograms[k], v)
}

// metrics returns a full kitmetrics.Metrics on s, each metric named as the
// Prometheus one without its prefix.
func (s *space) metrics() kitmetrics.Metrics {
	c := func(n string) metrics.Counter { return spaceCounter{s: s, name: n} }
	g := func(n string) metrics.Gauge { return spaceGauge{s: s, name: n} }
	h := func(n string) metrics.Histogram { return spaceHistogram{s: s, name: n} }
	return kitmetrics.Metrics{
		Calls:               c("calls_total"),
		CallDuration:        h("call_duration_seconds"),
		Retries:             c("retries_total"),
		RetriesExhausted:    c("retries_exhausted_total"),
		Timeouts:            c("timeouts_total"),
		Fallbacks:           c("fallbacks_total"),
		Rejections:          c("rejections_total"),
		Panics:              c("panics_total"),
		BreakerState:        g("breaker_state"),
		BreakerTransitions:  c("breaker_transitions_total"),
		BreakerOpenDuration: h("breaker_open_duration_seconds"),
		HealthStatus:        g("health_status"),
		HealthDuration:      h("health_check_duration_seconds"),
	}
}
