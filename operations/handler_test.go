package operations_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/operations"
	"github.com/resiliencekit/resilience/registry"
)

var allow = func(*http.Request) error { return nil }

// serve sends one request to h and returns the status and body.
func serve(h http.Handler, method, url, contentType, body string, header ...string) (int, string) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, url, rd)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func newRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	reg := registry.New(registry.Config{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { reg.Close() })
	for _, name := range []string{"users/10.0.0.1:8080", "chromadb"} {
		if _, err := reg.Breaker(name, registry.Settings{ResetTimeout: 90 * time.Second, FailureRatio: 0.5, Window: 30 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// TestHandlerRoutes: every route, its status and what it answers, with
// an authorizer that allows, one that refuses, and none.
func TestHandlerRoutes(t *testing.T) {
	refuse := func(*http.Request) error { return errors.New("no token") }
	tests := []struct {
		name      string
		authorize func(*http.Request) error
		method    string
		path      string
		wantCode  int
		want      string // in the body
		wantState registry.State
		wantMode  registry.Mode
	}{
		{"list", nil, "GET", "/breakers", 200, `"reset_timeout":"1m30s"`, registry.StateClosed, registry.ModeNormal},
		{"list has the window as a string", nil, "GET", "/breakers", 200, `"window":"30s"`, registry.StateClosed, registry.ModeNormal},
		{"one", nil, "GET", "/breakers/chromadb", 200, `"name":"chromadb"`, registry.StateClosed, registry.ModeNormal},
		{"one with a slash in its name", nil, "GET", "/breakers/users/10.0.0.1:8080", 200, `"name":"users/10.0.0.1:8080"`, registry.StateClosed, registry.ModeNormal},
		{"unknown", nil, "GET", "/breakers/nope", 404, `no breaker`, registry.StateClosed, registry.ModeNormal},
		{"events without a ring", nil, "GET", "/events", 200, `[]`, registry.StateClosed, registry.ModeNormal},
		{"read-only", nil, "POST", "/breakers/chromadb/trip", 403, `read-only`, registry.StateClosed, registry.ModeNormal},
		{"refused", refuse, "POST", "/breakers/chromadb/trip", 403, `not authorized: no token`, registry.StateClosed, registry.ModeNormal},
		{"trip", allow, "POST", "/breakers/chromadb/trip", 200, `"state":"open"`, registry.StateOpen, registry.ModeNormal},
		{"trip shows the time left", allow, "POST", "/breakers/chromadb/trip", 200, `"until_half_open":"1m30s"`, registry.StateOpen, registry.ModeNormal},
		{"trip an instance", allow, "POST", "/breakers/users/10.0.0.1:8080/trip", 200, `"name":"users/10.0.0.1:8080","state":"open"`, registry.StateClosed, registry.ModeNormal},
		{"hold-open", allow, "POST", "/breakers/chromadb/hold-open", 200, `"mode":"held-open"`, registry.StateClosed, registry.ModeHeldOpen},
		{"disable", allow, "POST", "/breakers/chromadb/disable", 200, `"mode":"disabled"`, registry.StateClosed, registry.ModeDisabled},
		{"metrics-only", allow, "POST", "/breakers/chromadb/metrics-only", 200, `"mode":"metrics-only"`, registry.StateClosed, registry.ModeMetricsOnly},
		{"normal", allow, "POST", "/breakers/chromadb/normal", 200, `"mode":"normal"`, registry.StateClosed, registry.ModeNormal},
		{"reset", allow, "POST", "/breakers/chromadb/reset", 200, `"state":"closed"`, registry.StateClosed, registry.ModeNormal},
		{"unknown action", allow, "POST", "/breakers/chromadb/explode", 404, `no action \"explode\"`, registry.StateClosed, registry.ModeNormal},
		{"action of an unknown breaker", allow, "POST", "/breakers/nope/trip", 404, `no breaker \"nope\"`, registry.StateClosed, registry.ModeNormal},
		{"no action", allow, "POST", "/breakers/chromadb", 404, `want POST`, registry.StateClosed, registry.ModeNormal},
		{"GET cannot act", allow, "GET", "/breakers/chromadb/trip", 404, `no breaker`, registry.StateClosed, registry.ModeNormal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				reg := newRegistry(t)
				h := operations.Handler(reg, operations.Config{Authorize: tt.authorize})
				code, body := serve(h, tt.method, "http://localhost"+tt.path, "application/json", "")
				if code != tt.wantCode || !strings.Contains(body, tt.want) {
					t.Errorf("%s %s = %d %s, want %d with %s", tt.method, tt.path, code, body, tt.wantCode, tt.want)
				}
				b, _ := reg.Get("chromadb")
				if b.State() != tt.wantState || b.Mode() != tt.wantMode {
					t.Errorf("chromadb after it: %v, %v; want %v, %v", b.State(), b.Mode(), tt.wantState, tt.wantMode)
				}
			})
		})
	}
}

// TestHandlerGuard: the handler is safe by default against CSRF and DNS
// rebinding, whatever the authorizer says; and nothing is done.
func TestHandlerGuard(t *testing.T) {
	tests := []struct {
		name        string
		method, url string
		contentType string
		body        string
		header      []string
		wantCode    int
	}{
		{"a rebound domain", "GET", "http://evil.example/breakers", "", "", nil, http.StatusMisdirectedRequest},
		{"a rebound domain cannot act", "POST", "http://evil.example/breakers/chromadb/trip", "application/json", "", nil, http.StatusMisdirectedRequest},
		{"127.0.0.1 with a port", "GET", "http://127.0.0.1:9090/breakers", "", "", nil, http.StatusOK},
		{"[::1]", "GET", "http://[::1]:9090/breakers", "", "", nil, http.StatusOK},
		{"a configured host", "GET", "http://ops.internal/breakers", "", "", nil, http.StatusOK},
		{"a cross-site POST", "POST", "http://localhost/breakers/chromadb/trip", "application/json", "", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"a foreign Origin", "POST", "http://localhost/breakers/chromadb/trip", "application/json", "", []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"a form POST", "POST", "http://localhost/breakers/chromadb/trip", "application/x-www-form-urlencoded", "a=b", nil, http.StatusUnsupportedMediaType},
		{"a text/plain POST", "POST", "http://localhost/breakers/chromadb/trip", "text/plain", "", nil, http.StatusUnsupportedMediaType},
		{"no content type", "POST", "http://localhost/breakers/chromadb/trip", "", "", nil, http.StatusUnsupportedMediaType},
		{"an oversized body", "POST", "http://localhost/breakers/chromadb/trip", "application/json", strings.Repeat("x", 2<<10), nil, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(t)
			h := operations.Handler(reg, operations.Config{Authorize: allow, Hosts: []string{"OPS.internal"}})
			code, body := serve(h, tt.method, tt.url, tt.contentType, tt.body, tt.header...)
			if code != tt.wantCode {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.url, code, body, tt.wantCode)
			}
			if b, _ := reg.Get("chromadb"); tt.wantCode != http.StatusOK && b.State() != registry.StateClosed {
				t.Errorf("a refused request tripped the breaker")
			}
		})
	}
}

// TestHandlerModeShared: a manual mode on a store-shared breaker is a
// conflict, 409, not a 500.
func TestHandlerModeShared(t *testing.T) {
	reg := registry.New(registry.Config{Store: registry.NewMemoryStore(), Logger: slog.New(slog.DiscardHandler)})
	defer reg.Close()
	if _, err := reg.Breaker("shared", registry.Settings{}); err != nil {
		t.Fatal(err)
	}
	h := operations.Handler(reg, operations.Config{Authorize: allow})
	code, body := serve(h, "POST", "http://localhost/breakers/shared/hold-open", "application/json", "")
	if code != http.StatusConflict || !strings.Contains(body, "store-shared") {
		t.Errorf("hold-open of a shared breaker = %d %s, want 409 naming the reason", code, body)
	}
}

// TestHandlerAuthorizePanics: a panicking authorizer does nothing: the
// panic goes up to net/http (which drops the connection) before any action.
func TestHandlerAuthorizePanics(t *testing.T) {
	reg := newRegistry(t)
	h := operations.Handler(reg, operations.Config{Authorize: func(*http.Request) error { panic("authorizer bug") }})
	func() {
		defer func() {
			if v := recover(); v != "authorizer bug" {
				t.Errorf("recovered %v, want the authorizer's panic", v)
			}
		}()
		serve(h, "POST", "http://localhost/breakers/chromadb/trip", "application/json", "")
	}()
	if b, _ := reg.Get("chromadb"); b.State() != registry.StateClosed {
		t.Errorf("state %v after a panicking authorizer, want closed (nothing done)", b.State())
	}
}

// TestEvents: the ring keeps the last n events in order, bounded; the
// handler serves them with durations as strings and error text only when
// asked.
func TestEvents(t *testing.T) {
	ev := operations.NewEvents(3)
	for i := range 5 {
		ev.Observe(context.Background(), middleware.Event{Kind: middleware.EventRetry, Layer: "retry", Name: "api", Attempt: i + 1,
			Wait: time.Duration(i+1) * time.Second, Err: fmt.Errorf("dial tcp: token=s3cret %d", i)})
	}
	if ev.Len() != 3 {
		t.Fatalf("Len = %d, want 3", ev.Len())
	}
	reg := newRegistry(t)
	for _, details := range []bool{false, true} {
		h := operations.Handler(reg, operations.Config{Events: ev, ErrorDetails: details})
		code, body := serve(h, "GET", "http://localhost/events", "", "")
		var got []operations.Event
		if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 {
			t.Fatalf("GET /events = %d %s (%v)", code, body, err)
		}
		if len(got) != 3 || got[0].Attempt != 3 || got[2].Attempt != 5 || got[0].Wait != "3s" || got[0].Kind != "retry" {
			t.Errorf("events %+v, want attempts 3, 4, 5 oldest first, wait \"3s\"", got)
		}
		if leaked := strings.Contains(body, "s3cret"); leaked != details {
			t.Errorf("ErrorDetails %v: error text shown = %v", details, leaked)
		}
	}
	for _, tt := range []struct{ n, want int }{{0, operations.DefaultEvents}, {-5, operations.DefaultEvents}, {1 << 40, operations.MaxEvents}} {
		ev := operations.NewEvents(tt.n)
		for range tt.want + 10 {
			ev.Observe(context.Background(), middleware.Event{Kind: middleware.EventCall})
		}
		if ev.Len() != tt.want {
			t.Errorf("NewEvents(%d) holds %d, want %d", tt.n, ev.Len(), tt.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	defer func() {
		if err, _ := recover().(error); !errors.Is(err, middleware.ErrInvalidConfig) {
			t.Errorf("Handler(nil) panicked with %v, want ErrInvalidConfig", err)
		}
	}()
	if _, err := operations.Guard(nil, operations.GuardConfig{}); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Guard(nil) err = %v, want ErrInvalidConfig", err)
	}
	if _, err := operations.Guard(http.NotFoundHandler(), operations.GuardConfig{MaxBody: -1}); !errors.Is(err, middleware.ErrInvalidConfig) {
		t.Errorf("Guard(MaxBody -1) err = %v, want ErrInvalidConfig", err)
	}
	operations.Handler(nil, operations.Config{})
}

// TestHandlerOverLoopback: the handler over a real server on 127.0.0.1,
// as an operator's curl reaches it: list, act with a token, refused
// without.
func TestHandlerOverLoopback(t *testing.T) {
	reg := newRegistry(t)
	mux := http.NewServeMux()
	mux.Handle("/debug/", http.StripPrefix("/debug", operations.Handler(reg, operations.Config{
		Authorize: func(r *http.Request) error {
			if r.Header.Get("Authorization") != "Bearer t0ken" {
				return errors.New("bad token")
			}
			return nil
		},
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := srv.Client()
	do := func(method, path, token string) (int, string) {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", "/debug/breakers", ""); code != 200 || !strings.Contains(body, `"name":"chromadb"`) {
		t.Errorf("GET /debug/breakers = %d %s", code, body)
	}
	if code, _ := do("POST", "/debug/breakers/chromadb/trip", "wrong"); code != http.StatusForbidden {
		t.Errorf("POST trip with a wrong token = %d, want 403", code)
	}
	if code, body := do("POST", "/debug/breakers/chromadb/trip", "t0ken"); code != 200 || !strings.Contains(body, `"state":"open"`) {
		t.Errorf("POST trip = %d %s, want 200 and open", code, body)
	}
	client.CloseIdleConnections()
}
