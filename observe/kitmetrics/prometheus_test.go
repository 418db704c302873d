package kitmetrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/observe/kitmetrics"
	"github.com/resiliencekit/resilience/registry"
)

// scrape returns what Handler serves for g.
func scrape(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	rr := httptest.NewRecorder()
	kitmetrics.Handler(g).ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rr.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rr.Code)
	}
	body, _ := io.ReadAll(rr.Body)
	return string(body)
}

// The Prometheus metrics move as the breaker opens and closes, and are
// served in the text format.
func TestPrometheus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		obs, err := kitmetrics.NewPrometheus("", reg)
		if err != nil {
			t.Fatal(err)
		}
		script := endpointtest.Script("err", "err", "err", "err", "slow:20ms")
		ep := guideStack(obs, registry.New(registry.Config{}), middleware.BreakerConfig{FailureThreshold: 2, SuccessThreshold: 2, ResetTimeout: time.Minute}, 2, script.Call)
		call := func() {
			if _, err := ep(t.Context(), nil); err != nil {
				t.Fatal(err)
			}
		}
		call()
		call()
		call()
		open := scrape(t, reg)
		time.Sleep(time.Minute)
		synctest.Wait()
		call()
		call()
		closed := scrape(t, reg)
		tests := []struct {
			name string
			body string
			want []string
		}{
			{"open", open, []string{
				`resilience_breaker_state{name="embed",state="open"} 1`,
				`resilience_breaker_state{name="embed",state="closed"} 0`,
				`resilience_breaker_transitions_total{from="closed",name="embed",to="open"} 1`,
				`resilience_calls_total{name="embed",outcome="failure"} 2`,
				`resilience_calls_total{name="embed",outcome="rejected"} 1`,
				`resilience_rejections_total{layer="circuit_breaker",name="embed"} 1`,
				`resilience_fallbacks_total{name="embed"} 3`,
				`resilience_retries_total{name="embed"} 2`,
				`resilience_retries_exhausted_total{name="embed"} 2`,
			}},
			{"closed again", closed, []string{
				`resilience_breaker_state{name="embed",state="open"} 0`,
				`resilience_breaker_state{name="embed",state="closed"} 1`,
				`resilience_breaker_transitions_total{from="half-open",name="embed",to="closed"} 1`,
				`resilience_breaker_open_duration_seconds_sum{name="embed"} 60`,
				`resilience_breaker_open_duration_seconds_count{name="embed"} 1`,
				`resilience_calls_total{name="embed",outcome="success"} 2`,
				`resilience_call_duration_seconds_bucket{name="embed",outcome="success",le="0.01"} 0`,
				`resilience_call_duration_seconds_bucket{name="embed",outcome="success",le="0.025"} 2`,
				`resilience_call_duration_seconds_sum{name="embed",outcome="success"} 0.04`,
			}},
		}
		for _, tt := range tests {
			for _, line := range tt.want {
				if !strings.Contains(tt.body, line+"\n") {
					t.Errorf("%s: /metrics lacks %s", tt.name, line)
				}
			}
		}
		if t.Failed() {
			t.Logf("/metrics:\n%s", closed)
		}
	})
}

func TestNewPrometheusNamespace(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := kitmetrics.NewPrometheus("myapp", reg)
	if err != nil {
		t.Fatal(err)
	}
	obs.Observe(t.Context(), middleware.Event{Kind: middleware.EventRetry, Name: "api"})
	if body := scrape(t, reg); !strings.Contains(body, `myapp_resilience_retries_total{name="api"} 1`+"\n") {
		t.Errorf("/metrics = %s, want myapp_resilience_retries_total", body)
	}
}

// A second NewPrometheus on one registry fails and leaves the first one's
// metrics in place.
func TestNewPrometheusTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := kitmetrics.NewPrometheus("", reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kitmetrics.NewPrometheus("", reg); err == nil {
		t.Fatal("second NewPrometheus: err = nil, want an error")
	}
	first.Observe(t.Context(), middleware.Event{Kind: middleware.EventFallback, Name: "api"})
	if body := scrape(t, reg); !strings.Contains(body, `resilience_fallbacks_total{name="api"} 1`+"\n") {
		t.Errorf("/metrics = %s, want the first observer's fallback", body)
	}
}

// The go-kit metrics made by NewPrometheus follow go-kit's With semantics:
// labels given in steps, or incomplete (the missing one is an error in
// Prometheus, so only complete sets are tested).
func TestPrometheusWithInSteps(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := kitmetrics.NewPrometheus("", reg)
	if err != nil {
		t.Fatal(err)
	}
	m := obs.Metrics()
	m.Rejections.With("name", "api").With("layer", "bulkhead").Add(2)
	m.BreakerState.With("name", "api", "state", "open").Add(1)
	m.HealthDuration.With("check", "db").Observe(0.5)
	body := scrape(t, reg)
	for _, line := range []string{
		`resilience_rejections_total{layer="bulkhead",name="api"} 2`,
		`resilience_breaker_state{name="api",state="open"} 1`,
		`resilience_health_check_duration_seconds_sum{check="db"} 0.5`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}
