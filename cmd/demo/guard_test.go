package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The served handler answers loopback host names only, refuses
// state-changing requests that are cross-site or not JSON, and caps request
// bodies: a web page the developer visits can neither change the chaos
// settings or the traffic (CSRF) nor read the page through a name it
// controls (DNS rebinding), and no request body is read past the cap.
func TestServeGuard(t *testing.T) {
	s, _ := newTestService(t)
	h := s.handler()
	big := `{"texts":["` + strings.Repeat("a", maxRequestBody) + `"]}`
	tests := []struct {
		name     string
		method   string
		path     string
		host     string
		header   map[string]string
		body     string
		chunked  bool // send the body with no Content-Length
		wantCode int
		wantRate float64 // the chaos error rate afterwards
	}{
		{name: "cross-site text/plain POST", method: "POST", path: "/api/chaos", host: "127.0.0.1:8080",
			header: map[string]string{"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
			body:   `{"error_rate": 1}`, wantCode: http.StatusForbidden},
		{name: "cross-site text/plain POST, Origin only", method: "POST", path: "/api/traffic", host: "127.0.0.1:8080",
			header: map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"},
			body:   `{"rps": 1000}`, wantCode: http.StatusForbidden},
		{name: "cross-site JSON POST", method: "POST", path: "/api/chaos", host: "localhost:8080",
			header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
			body:   `{"error_rate": 1}`, wantCode: http.StatusForbidden},
		{name: "same-site but other origin JSON POST", method: "POST", path: "/api/chaos", host: "localhost:8080",
			header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site", "Origin": "http://localhost:9999"},
			body:   `{"error_rate": 1}`, wantCode: http.StatusForbidden},
		{name: "text/plain POST with no browser headers", method: "POST", path: "/api/chaos", host: "127.0.0.1:8080",
			header: map[string]string{"Content-Type": "text/plain"}, body: `{"error_rate": 1}`, wantCode: http.StatusUnsupportedMediaType},
		{name: "form POST", method: "POST", path: "/api/chaos", host: "127.0.0.1:8080",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: `error_rate=1`, wantCode: http.StatusUnsupportedMediaType},
		{name: "POST with no content type", method: "POST", path: "/api/traffic", host: "127.0.0.1:8080",
			body: `{"rps": 1000}`, wantCode: http.StatusUnsupportedMediaType},
		{name: "same-origin JSON POST", method: "POST", path: "/api/chaos", host: "127.0.0.1:8080",
			header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8080"},
			body:   `{"error_rate": 0.25}`, wantCode: http.StatusOK, wantRate: 0.25},
		{name: "JSON POST with a charset, no browser headers", method: "POST", path: "/api/chaos", host: "localhost:8080",
			header: map[string]string{"Content-Type": "application/json; charset=utf-8"},
			body:   `{"error_rate": 0.5}`, wantCode: http.StatusOK, wantRate: 0.5},
		{name: "same-origin JSON POST on [::1]", method: "POST", path: "/api/chaos", host: "[::1]:8080",
			header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": "http://[::1]:8080"},
			body:   `{"error_rate": 0}`, wantCode: http.StatusOK},

		{name: "Host evil.example", method: "GET", path: "/", host: "evil.example", wantCode: http.StatusMisdirectedRequest},
		{name: "Host evil.example with port", method: "GET", path: "/api/status", host: "evil.example:8080", wantCode: http.StatusMisdirectedRequest},
		{name: "Host evil.example, same-origin JSON POST", method: "POST", path: "/api/chaos", host: "evil.example:8080",
			header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": "http://evil.example:8080"},
			body:   `{"error_rate": 1}`, wantCode: http.StatusMisdirectedRequest},
		{name: "Host localhost under another domain", method: "GET", path: "/", host: "localhost.evil.example:8080", wantCode: http.StatusMisdirectedRequest},
		{name: "Host a loopback address under another domain", method: "GET", path: "/", host: "127.0.0.1.nip.io:8080", wantCode: http.StatusMisdirectedRequest},
		{name: "Host 0.0.0.0", method: "GET", path: "/", host: "0.0.0.0:8080", wantCode: http.StatusMisdirectedRequest},
		{name: "Host a LAN address", method: "GET", path: "/", host: "192.168.1.20:8080", wantCode: http.StatusMisdirectedRequest},
		{name: "no Host", method: "GET", path: "/", host: "", wantCode: http.StatusMisdirectedRequest},
		{name: "Host localhost:port", method: "GET", path: "/", host: "localhost:8080", wantCode: http.StatusOK},
		{name: "Host LOCALHOST", method: "GET", path: "/", host: "LOCALHOST:8080", wantCode: http.StatusOK},
		{name: "Host localhost", method: "GET", path: "/", host: "localhost", wantCode: http.StatusOK},
		{name: "Host 127.0.0.1:port", method: "GET", path: "/api/status", host: "127.0.0.1:8080", wantCode: http.StatusOK},
		{name: "Host [::1]:port", method: "GET", path: "/healthz", host: "[::1]:8080", wantCode: http.StatusOK},
		{name: "Host [::1]", method: "GET", path: "/healthz", host: "[::1]", wantCode: http.StatusOK},

		{name: "embed within the cap", method: "POST", path: "/embed", host: "127.0.0.1:8080",
			header: map[string]string{"Content-Type": "application/json"}, body: `{"texts":["a"]}`, wantCode: http.StatusOK},
		{name: "embed over the cap", method: "POST", path: "/embed", host: "127.0.0.1:8080",
			header: map[string]string{"Content-Type": "application/json"}, body: big, wantCode: http.StatusRequestEntityTooLarge},
		{name: "embed over the cap, chunked", method: "POST", path: "/embed", host: "127.0.0.1:8080",
			header: map[string]string{"Content-Type": "application/json"}, body: big, chunked: true, wantCode: http.StatusRequestEntityTooLarge},
		{name: "chaos over the cap, chunked", method: "POST", path: "/api/chaos", host: "127.0.0.1:8080",
			header: map[string]string{"Content-Type": "application/json"}, body: `{"error_rate": 1, "x": "` + strings.Repeat("a", maxRequestBody) + `"}`,
			chunked: true, wantCode: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.up.Chaos.Config()
			cfg.ErrorRate = 0
			if err := s.up.Chaos.Set(cfg); err != nil {
				t.Fatal(err)
			}
			s.rps.Store(floatBits(0))
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length
			}
			r := httptest.NewRequest(tt.method, tt.path, body)
			r.Host = tt.host
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantCode {
				t.Errorf("%s %s (Host %q) = %d, want %d: %s", tt.method, tt.path, tt.host, w.Code, tt.wantCode, strings.TrimSpace(w.Body.String()))
			}
			if got := s.up.Chaos.Config().ErrorRate; got != tt.wantRate {
				t.Errorf("error rate = %v, want %v", got, tt.wantRate)
			}
			if got := floatOf(s.rps.Load()); got != 0 {
				t.Errorf("rps = %v, want 0 (unchanged)", got)
			}
		})
	}
}

// An extra host name given with -allow-host is answered too.
func TestServeGuardAllowHost(t *testing.T) {
	s, err := newService(serveOptions{scale: 100, hosts: []string{"demo.test"}}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := s.handler()
	for _, tt := range []struct {
		host string
		want int
	}{{"demo.test:8080", http.StatusOK}, {"DEMO.test", http.StatusOK}, {"localhost:8080", http.StatusOK}, {"other.test:8080", http.StatusMisdirectedRequest}} {
		r := httptest.NewRequest("GET", "/healthz", nil)
		r.Host = tt.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("GET /healthz (Host %q) = %d, want %d", tt.host, w.Code, tt.want)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
