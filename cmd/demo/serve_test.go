package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/registry"
)

// newTestService starts a service (scaled 100×, no background traffic) and
// an HTTP server on its routes.
func newTestService(t *testing.T) (*service, *httptest.Server) {
	t.Helper()
	s, err := newService(serveOptions{scale: 100}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.handler())
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return s, srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeRoutes(t *testing.T) {
	_, srv := newTestService(t)
	defer http.DefaultClient.CloseIdleConnections()
	tests := []struct {
		name     string
		path     string
		wantCode int
		wantBody string
	}{
		{name: "status page", path: "/", wantCode: 200, wantBody: `id="state-`},
		{name: "liveness", path: "/healthz", wantCode: 200, wantBody: `"pass"`},
		{name: "readiness", path: "/readyz", wantCode: 200, wantBody: `"embedding_api"`},
		{name: "breakers", path: "/debug/breakers", wantCode: 200, wantBody: `"state":"closed"`},
		{name: "metrics", path: "/metrics", wantCode: 200, wantBody: `resilience_breaker_state{name="embedding_api",state="closed"} 1`},
		{name: "status", path: "/api/status", wantCode: 200, wantBody: `"breakers":[{"name":"embedding_api"`},
		{name: "search", path: "/search?q=retry+backoff", wantCode: 200, wantBody: `"mode":"semantic"`},
		{name: "unknown", path: "/nope", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv.URL+tt.path)
			if code != tt.wantCode {
				t.Errorf("GET %s = %d, want %d", tt.path, code, tt.wantCode)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("GET %s body lacks %q:\n%s", tt.path, tt.wantBody, body)
			}
		})
	}
}

func TestServeChaosControls(t *testing.T) {
	s, srv := newTestService(t)
	defer http.DefaultClient.CloseIdleConnections()
	tests := []struct {
		name     string
		body     string
		wantCode int
		wantRate float64
		wantLat  time.Duration
	}{
		{name: "error rate", body: `{"error_rate": 0.5}`, wantCode: 200, wantRate: 0.5},
		{name: "latency", body: `{"error_rate": 0, "latency_ms": 250}`, wantCode: 200, wantLat: 250 * time.Millisecond},
		{name: "rate above 1", body: `{"error_rate": 1.5}`, wantCode: 400, wantLat: 250 * time.Millisecond},
		{name: "negative latency", body: `{"latency_ms": -1}`, wantCode: 400, wantLat: 250 * time.Millisecond},
		{name: "not json", body: `rate=1`, wantCode: 400, wantLat: 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := post(t, srv.URL+"/api/chaos", tt.body); got != tt.wantCode {
				t.Errorf("POST /api/chaos = %d, want %d", got, tt.wantCode)
			}
			cfg := s.up.Chaos.Config()
			if cfg.ErrorRate != tt.wantRate {
				t.Errorf("error rate = %v, want %v", cfg.ErrorRate, tt.wantRate)
			}
			var lat time.Duration
			if cfg.LatencyRate > 0 {
				lat = cfg.Latency
			}
			if lat != tt.wantLat {
				t.Errorf("latency = %v, want %v", lat, tt.wantLat)
			}
		})
	}
	if got := post(t, srv.URL+"/api/traffic", `{"rps": 5}`); got != 200 {
		t.Errorf("POST /api/traffic = %d, want 200", got)
	}
	if got := floatOf(s.rps.Load()); got != 5 {
		t.Errorf("rps = %v, want 5", got)
	}
}

// TestServeProtectedEndpointOpensAndServesFallback checks the protected
// endpoint end to end: with every upstream request failing, the breaker
// opens and callers get the fallback []; the status JSON shows it.
func TestServeProtectedEndpointOpensAndServesFallback(t *testing.T) {
	s, srv := newTestService(t)
	defer http.DefaultClient.CloseIdleConnections()
	if got := post(t, srv.URL+"/api/chaos", `{"error_rate": 1}`); got != 200 {
		t.Fatalf("POST /api/chaos = %d", got)
	}
	for i := range 6 {
		resp, err := http.Post(srv.URL+"/embed", "application/json", strings.NewReader(`{"texts":["a"]}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "[]" {
			t.Errorf("call %d: %d %s, want 200 []", i, resp.StatusCode, b)
		}
	}
	if got := s.reg.States()["embedding_api"].State; got != registry.StateOpen {
		t.Errorf("breaker = %s, want open", got)
	}
	code, _ := get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz = %d, want 503 while the circuit is open", code)
	}
	_, body := get(t, srv.URL+"/api/status?since=0")
	var st struct {
		Traffic trafficJSON `json:"traffic"`
		Events  []eventJSON `json:"events"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	gaveUp := 0
	for _, e := range st.Events {
		kinds[e.Kind]++
		if e.Kind == "retry" && strings.HasPrefix(e.Detail, "gave up after") {
			gaveUp++
		}
	}
	for _, k := range []string{"chaos", "retry", "state_change", "fallback", "chaos_set"} {
		if kinds[k] == 0 {
			t.Errorf("status events lack %q: %v", k, kinds)
		}
	}
	if gaveUp == 0 {
		t.Errorf("status events lack a retry that gave up: %+v", st.Events)
	}
	if kinds["state_change"] != 1 {
		t.Errorf("state changes = %d, want 1 (each reported once)", kinds["state_change"])
	}
	// The metrics moved with the breaker.
	_, metrics := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`resilience_breaker_state{name="embedding_api",state="open"} 1`,
		`resilience_breaker_transitions_total{from="closed",name="embedding_api",to="open"} 1`,
		`resilience_fallbacks_total{name="embedding_api"} 6`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, metrics)
		}
	}
}

// TestServeRunsAndStops runs serve on a free port with background traffic
// and stops it through its context.
func TestServeRunsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveOptions{port: 0, scale: 100, rps: 50}, pw, io.Discard)
		pw.Close()
	}()
	buf := make([]byte, 256)
	n, err := pr.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	line := string(buf[:n])
	if !strings.HasPrefix(line, "serving on http://127.0.0.1:") {
		t.Fatalf("serve printed %q", line)
	}
	url := strings.Fields(line)[2]
	time.Sleep(200 * time.Millisecond) // some background calls
	_, body := get(t, url+"api/status")
	http.DefaultClient.CloseIdleConnections()
	var st struct {
		Traffic trafficJSON `json:"traffic"`
		Events  []eventJSON `json:"events"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Traffic.Calls == 0 {
		t.Errorf("background calls = 0, want some")
	}
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestServeOperations: the demo serves the library's operations handler at
// /debug/: a loopback client trips and resets the breaker; the actions
// refuse any other client (loopbackClient).
func TestServeOperations(t *testing.T) {
	s, srv := newTestService(t)
	defer http.DefaultClient.CloseIdleConnections()
	b, ok := s.reg.Get("embedding_api")
	if !ok {
		t.Fatal("no embedding_api breaker")
	}
	if got := post(t, srv.URL+"/debug/breakers/embedding_api/trip", "{}"); got != 200 || b.State() != registry.StateOpen {
		t.Fatalf("POST trip = %d, state %v; want 200 and open", got, b.State())
	}
	if code, body := get(t, srv.URL+"/debug/events"); code != 200 || !strings.Contains(body, `"to":"open"`) {
		t.Errorf("GET /debug/events = %d %s, want the state change to open", code, body)
	}
	if got := post(t, srv.URL+"/debug/breakers/embedding_api/reset", "{}"); got != 200 || b.State() != registry.StateClosed {
		t.Fatalf("POST reset = %d, state %v; want 200 and closed", got, b.State())
	}
	for _, addr := range []string{"192.0.2.7:5000", "[2001:db8::1]:5000", "garbage"} {
		if err := loopbackClient(&http.Request{RemoteAddr: addr}); err == nil {
			t.Errorf("loopbackClient(%s) = nil, want refused", addr)
		}
	}
	if err := loopbackClient(&http.Request{RemoteAddr: "[::1]:5000"}); err != nil {
		t.Errorf("loopbackClient([::1]) = %v, want nil", err)
	}
}
