package kitmetrics

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-kit/kit/metrics"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// Metrics holds the go-kit metrics an [Observer] updates, each with the
// label names it is given (With is called with these keys, in this order).
// A nil field is not recorded. Durations are observed in seconds.
type Metrics struct {
	// Calls counts the calls through [middleware.Measure]. Labels: name,
	// outcome.
	Calls metrics.Counter
	// CallDuration observes their latency, in seconds. Labels: name,
	// outcome.
	CallDuration metrics.Histogram
	// Retries counts retries, the attempts after the first. Labels: name.
	Retries metrics.Counter
	// RetriesExhausted counts the calls on which Retry gave up. Labels:
	// name.
	RetriesExhausted metrics.Counter
	// Timeouts counts the attempts a timeout layer ended. Labels: name.
	Timeouts metrics.Counter
	// Fallbacks counts the calls a fallback served. Labels: name.
	Fallbacks metrics.Counter
	// Rejections counts the calls a layer refused without making them.
	// Labels: name, layer ("circuit_breaker", "rate_limit", "bulkhead",
	// "timeout").
	Rejections metrics.Counter
	// Panics counts panics. Labels: name, layer.
	Panics metrics.Counter
	// BreakerState is 1 for a breaker's current state and 0 for its other
	// states. Labels: name, state ("closed", "open", "half-open").
	BreakerState metrics.Gauge
	// BreakerTransitions counts state changes. Labels: name, from, to.
	BreakerTransitions metrics.Counter
	// BreakerOpenDuration observes how long each open spell lasted, from
	// opening to half-open (or to closed, by a reset), in seconds. Labels:
	// name.
	BreakerOpenDuration metrics.Histogram
	// HealthStatus is 1 for a check's last result and 0 for the other
	// results. Labels: check, result ("pass", "warn", "fail").
	HealthStatus metrics.Gauge
	// HealthDuration observes each health check run's latency, in seconds.
	// Labels: check.
	HealthDuration metrics.Histogram
}

// maxCached bounds the bound series an Observer keeps; past it, series are
// bound again on every update (slower, still correct).
const maxCached = 4096

// Observer is a [middleware.Observer] that records the events it is given
// in go-kit metrics. It is safe for concurrent use; make one with [New] or
// [NewPrometheus]. The same Observer may serve every layer, stack, registry
// and health checker of a process.
type Observer struct {
	m Metrics

	calls      cache[callSeries]
	counters   cache[metrics.Counter]
	gauges     cache[metrics.Gauge]
	histograms cache[metrics.Histogram]

	mu     sync.Mutex
	opened map[string]time.Time // open breakers, by name: when they opened
}

// New returns an Observer that records into m.
func New(m Metrics) *Observer {
	return &Observer{m: m, opened: make(map[string]time.Time)}
}

// Metrics returns the metrics o records into.
func (o *Observer) Metrics() Metrics { return o.m }

// The series kinds, part of a cache key.
const (
	kCalls uint8 = iota
	kRetries
	kRetriesExhausted
	kTimeouts
	kFallbacks
	kRejections
	kPanics
	kBreakerState
	kBreakerTransitions
	kBreakerOpenDuration
	kHealthStatus
	kHealthDuration
)

// Observe records e: see the package documentation for which event feeds
// which metric.
func (o *Observer) Observe(_ context.Context, e middleware.Event) {
	switch e.Kind {
	case middleware.EventCall:
		o.call(e)
		// The breaker reports no event of its own when it rejects a call:
		// count its rejections here, by the breaker's name.
		if e.Outcome == middleware.OutcomeRejected {
			if open, ok := errors.AsType[*registry.CircuitOpenError](e.Err); ok {
				o.add(o.m.Rejections, kRejections, "name", open.Service, "layer", "circuit_breaker")
			}
		}
	case middleware.EventRetry:
		if _, gaveUp := e.Err.(*middleware.RetryError); gaveUp {
			o.add(o.m.RetriesExhausted, kRetriesExhausted, "name", e.Name, "", "")
		} else {
			o.add(o.m.Retries, kRetries, "name", e.Name, "", "")
		}
	case middleware.EventTimeout:
		o.add(o.m.Timeouts, kTimeouts, "name", e.Name, "", "")
	case middleware.EventFallback:
		o.add(o.m.Fallbacks, kFallbacks, "name", e.Name, "", "")
	case middleware.EventRejected:
		o.add(o.m.Rejections, kRejections, "name", e.Name, "layer", e.Layer)
	case middleware.EventPanic:
		o.add(o.m.Panics, kPanics, "name", e.Name, "layer", e.Layer)
	case middleware.EventStateChange:
		if e.Key != "" {
			// A keyed layer's breaker: one of many under one name. Its
			// transitions are counted under the layer's name; a state
			// gauge or an open duration of the name would mix the keys.
			o.add(o.m.BreakerTransitions, kBreakerTransitions, "name", e.Name, "from", e.From.String(), "to", e.To.String())
			return
		}
		o.stateChange(e.Name, e.From.String(), e.To.String(), time.Now())
	}
}

// callSeries are the bound series of one name and outcome, looked up
// together: one lookup a call.
type callSeries struct {
	calls    metrics.Counter
	duration metrics.Histogram
}

func (o *Observer) call(e middleware.Event) {
	outcome := e.Outcome.String()
	key := seriesKey{kind: kCalls, v1: e.Name, v2: outcome}
	s, ok := o.calls.get(key)
	if !ok {
		if c := o.m.Calls; c != nil {
			s.calls = c.With(labels("name", e.Name, "outcome", outcome)...)
		}
		if h := o.m.CallDuration; h != nil {
			s.duration = h.With(labels("name", e.Name, "outcome", outcome)...)
		}
		s = o.calls.put(key, s)
	}
	if s.calls != nil {
		s.calls.Add(1)
	}
	if s.duration != nil {
		s.duration.Observe(e.Latency.Seconds())
	}
}

// StateChange records one transition of a registry's breaker: pass it to
// [registry.Config.Listeners] to keep the breaker metrics of every breaker in the
// registry, whichever middleware (or none) uses them:
//
//	reg := registry.New(registry.Config{Listeners: []func(registry.StateChange){obs.StateChange}})
//
// Do not also give the Observer to the breakers' middleware, or each
// transition counts twice.
func (o *Observer) StateChange(c registry.StateChange) {
	o.stateChange(c.Name, c.From.String(), c.To.String(), c.At)
}

var breakerStates = [...]string{"closed", "open", "half-open"}

// Sync sets the breaker state of every breaker in reg to its current state,
// so that breakers that have not changed state since the process started
// (or since they were made) have their series too: call it at startup, after
// building the stacks, and the state set then follows the transitions. It
// counts no transition.
func (o *Observer) Sync(reg *registry.Registry) {
	g := o.m.BreakerState
	if g == nil {
		return
	}
	for name, snap := range reg.States() {
		to := snap.State.String()
		for _, s := range breakerStates {
			v := 0.0
			if s == to {
				v = 1
			}
			o.gauge(g, kBreakerState, "name", name, "state", s).Set(v)
		}
	}
}

func (o *Observer) stateChange(name, from, to string, at time.Time) {
	o.add(o.m.BreakerTransitions, kBreakerTransitions, "name", name, "from", from, "to", to)
	if g := o.m.BreakerState; g != nil {
		for _, s := range breakerStates {
			v := 0.0
			if s == to {
				v = 1
			}
			o.gauge(g, kBreakerState, "name", name, "state", s).Set(v)
		}
	}
	o.mu.Lock()
	openedAt, wasOpen := o.opened[name]
	if to == "open" {
		o.opened[name] = at
	} else {
		delete(o.opened, name)
	}
	o.mu.Unlock()
	if h := o.m.BreakerOpenDuration; h != nil && wasOpen && from == "open" {
		o.histogram(h, kBreakerOpenDuration, "name", name, "", "").Observe(at.Sub(openedAt).Seconds())
	}
}

// healthResults are the results of a health check, in label order.
var healthResults = [...]health.Result{health.Pass, health.Warn, health.Fail}

// HealthStatus records one run of a health check: give it to a checker as
// [health.Config].Observer:
//
//	checker := health.NewChecker(health.Config{Observer: obs.HealthStatus})
func (o *Observer) HealthStatus(s health.Status) {
	if g := o.m.HealthStatus; g != nil {
		for _, r := range healthResults {
			v := 0.0
			if r == s.Result {
				v = 1
			}
			o.gauge(g, kHealthStatus, "check", s.Name, "result", string(r)).Set(v)
		}
	}
	if h := o.m.HealthDuration; h != nil {
		o.histogram(h, kHealthDuration, "check", s.Name, "", "").Observe(s.Latency.Seconds())
	}
}

// add adds 1 to c's series for the labels (an empty key ends the list).
func (o *Observer) add(c metrics.Counter, kind uint8, k1, v1, k2, v2 string, more ...string) {
	if c == nil {
		return
	}
	key := seriesKey{kind: kind, v1: v1, v2: v2}
	if len(more) == 2 {
		key.v3 = more[1]
	}
	bound, ok := o.counters.get(key)
	if !ok {
		bound = c.With(labels(k1, v1, k2, v2, more...)...)
		bound = o.counters.put(key, bound)
	}
	bound.Add(1)
}

func (o *Observer) gauge(g metrics.Gauge, kind uint8, k1, v1, k2, v2 string) metrics.Gauge {
	key := seriesKey{kind: kind, v1: v1, v2: v2}
	bound, ok := o.gauges.get(key)
	if !ok {
		bound = g.With(labels(k1, v1, k2, v2)...)
		bound = o.gauges.put(key, bound)
	}
	return bound
}

func (o *Observer) histogram(h metrics.Histogram, kind uint8, k1, v1, k2, v2 string) metrics.Histogram {
	key := seriesKey{kind: kind, v1: v1, v2: v2}
	bound, ok := o.histograms.get(key)
	if !ok {
		bound = h.With(labels(k1, v1, k2, v2)...)
		bound = o.histograms.put(key, bound)
	}
	return bound
}

// labels returns the label pairs, up to the first empty key, every value
// made valid UTF-8 (see [labelValue]). It is the one place where the
// Observer makes labels: every series it binds goes through it.
func labels(k1, v1, k2, v2 string, more ...string) []string {
	lvs := []string{k1, labelValue(v1)}
	if k2 != "" {
		lvs = append(lvs, k2, labelValue(v2))
	}
	for i, v := range more {
		if i%2 == 1 {
			v = labelValue(v)
		}
		lvs = append(lvs, v)
	}
	return lvs
}

// labelValue returns s with every invalid UTF-8 sequence replaced by U+FFFD:
// Prometheus (and go-kit's Prometheus metrics) panic on a label value that
// is not valid UTF-8, and names come from user input (a health check called
// "disk \xff"). A valid s is returned as is, with no allocation.
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// seriesKey names one bound series: its metric and label values.
type seriesKey struct {
	kind       uint8
	v1, v2, v3 string
}

// cache maps label sets to bound series: copy on write, so a read takes no
// lock and allocates nothing.
type cache[M any] struct {
	m  atomic.Pointer[map[seriesKey]M]
	mu sync.Mutex
}

func (c *cache[M]) get(k seriesKey) (M, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero M
	return zero, false
}

// put caches v for k, unless k is cached already, and returns the value
// cached for k (v when the cache is full): concurrent first uses of a label
// set all update the same bound series.
func (c *cache[M]) put(k seriesKey, v M) M {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[seriesKey]M
	if p := c.m.Load(); p != nil {
		old = *p
	}
	if cached, ok := old[k]; ok {
		return cached
	}
	if len(old) >= maxCached {
		return v
	}
	next := make(map[seriesKey]M, len(old)+1)
	for key, val := range old {
		next[key] = val
	}
	next[k] = v
	c.m.Store(&next)
	return v
}
