// Package kitmetrics turns the middleware's events into metrics through
// go-kit's metrics interfaces ([metrics.Counter], [metrics.Gauge],
// [metrics.Histogram]), so any go-kit backend plugs in unchanged:
// Prometheus, expvar, statsd, dogstatsd, InfluxDB, CloudWatch, or
// metrics/generic in tests.
//
//	obs, err := kitmetrics.NewPrometheus("", prometheus.DefaultRegisterer)
//	stack := middleware.Stack{Observer: middleware.Observers(obs, middleware.LogObserver(nil)), ...}
//	http.Handle("/metrics", kitmetrics.Handler(nil)) // promhttp.HandlerFor(prometheus.DefaultGatherer, ...)
//
// [New] takes any [Metrics]; [NewPrometheus] defines and registers the
// ready-made Prometheus metrics below. The package is named kitmetrics, not
// metrics, so that it imports beside go-kit's metrics package without a
// rename.
//
// # Metrics
//
// With the default namespace, every name starts with resilience_; counters
// end in _total and durations are in seconds, as Prometheus names go. The
// name label is the layer's configured Name (empty when unset: name each
// layer, or the [middleware.Stack]'s breaker, to tell dependencies apart).
//
//	resilience_calls_total{name,outcome}               calls through Measure: success, failure, rejected, canceled
//	resilience_call_duration_seconds{name,outcome}     their latency (histogram, RPCBuckets)
//	resilience_retries_total{name}                     retries: attempts after the first
//	resilience_retries_exhausted_total{name}           calls on which Retry gave up
//	resilience_timeouts_total{name}                    attempts ended by a timeout layer
//	resilience_fallbacks_total{name}                   calls served by a fallback
//	resilience_rejections_total{name,layer}            calls refused by circuit_breaker, rate_limit, bulkhead or timeout
//	resilience_panics_total{name,layer}                panics recovered or re-raised
//	resilience_breaker_state{name,state}               1 for the breaker's current state, 0 for the others
//	resilience_breaker_transitions_total{name,from,to} state changes
//	resilience_breaker_open_duration_seconds{name}     time from opening to half-open (or to a reset): the time to half-open
//	resilience_health_status{check,result}            1 for the check's last result (pass, warn, fail), 0 for the others
//	resilience_health_check_duration_seconds{check}    health check latency (histogram)
//
// The breaker state is a state set (one series per state, the current one at
// 1) rather than a number, so that an alert reads as what it means:
//
//	resilience_breaker_state{state="open"} == 1
//
// Calls by outcome come from the [middleware.Measure] layer, the one layer
// that sees every call; the other series come from the layers' own events.
// A call that a fallback served is counted once in calls_total (failure or
// rejected, where Measure sits just inside the fallback) and once in
// fallbacks_total: telling the two apart in one label would need a per-call
// allocation to tie the fallback's event to the call.
//
// # Where the events come from
//
// Give the [Observer] to the layers (a [middleware.Stack]'s Observer, or each
// config's Observer), to [middleware.Measure], to a registry with
// [registry.Config].Listeners ([Observer.StateChange]) for the breaker
// gauges of every breaker in it, and to a health checker as its
// [health.Config] Observer ([Observer.HealthStatus]). Breaker state changes
// reach the observer through the layers' Observer or through the registry
// listener: use one of the two, or each transition counts twice. A breaker's
// state series appear at its first transition; [Observer.Sync] sets them for
// every breaker of a registry at once (at startup, say).
//
// # Label values
//
// Names come from user code and input: every label value the [Observer]
// records is made valid UTF-8 first, each invalid byte sequence replaced by
// U+FFFD ("disk \xff" is recorded as "disk \uFFFD"), because Prometheus
// panics on a label value that is not valid UTF-8. Two names that differ only
// in their invalid bytes share a series.
//
// # Cost
//
// A layer on its success path reports nothing, so an attached Observer has
// nothing to do there. Each event looks up its bound series in a
// copy-on-write cache (no lock, no allocation once the label set has been
// seen) plus the backend's own update; the Prometheus
// metrics of [NewPrometheus] update a bound child directly, with no
// allocation, where go-kit's metrics/prometheus builds a label map on every
// update.
package kitmetrics
