package health_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/health"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// fails returns a check that fails with err.
func fails(err error) health.CheckFunc { return func(context.Context) error { return err } }

// get serves one request of method on h.
func get(h http.Handler, method string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/readyz", nil))
	return rec
}

type check struct {
	name string
	fn   health.CheckFunc
	opts []health.CheckOption
}

func checker(t *testing.T, checks []check) *health.Checker {
	t.Helper()
	c := health.NewChecker()
	for _, ck := range checks {
		if err := c.Register(ck.name, ck.fn, ck.opts...); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestHandlerStatus(t *testing.T) {
	down := errors.New("down")
	tests := []struct {
		name       string
		checks     []check
		opts       []health.HandlerOption
		wantCode   int
		wantStatus health.Result
		wantChecks map[string]health.Result
	}{
		{name: "no checks", wantCode: 200, wantStatus: health.Pass, wantChecks: map[string]health.Result{}},
		{name: "all pass", checks: []check{{"a", ok, nil}, {"b", ok, nil}}, wantCode: 200, wantStatus: health.Pass,
			wantChecks: map[string]health.Result{"a": health.Pass, "b": health.Pass}},
		{name: "critical fails", checks: []check{{"a", ok, nil}, {"b", fails(down), nil}}, wantCode: 503, wantStatus: health.Fail,
			wantChecks: map[string]health.Result{"a": health.Pass, "b": health.Fail}},
		{name: "optional fails", checks: []check{{"a", ok, nil}, {"b", fails(down), []health.CheckOption{health.Optional()}}}, wantCode: 200, wantStatus: health.Warn,
			wantChecks: map[string]health.Result{"a": health.Pass, "b": health.Fail}},
		{name: "degraded", checks: []check{{"a", ok, nil}, {"b", fails(health.Degraded(down)), nil}}, wantCode: 200, wantStatus: health.Warn,
			wantChecks: map[string]health.Result{"a": health.Pass, "b": health.Warn}},
		{name: "warn and fail", checks: []check{{"a", fails(down), nil}, {"b", fails(health.Degraded(down)), nil}}, wantCode: 503, wantStatus: health.Fail,
			wantChecks: map[string]health.Result{"a": health.Fail, "b": health.Warn}},
		{name: "timeout", checks: []check{{"a", sleeper(time.Hour, nil), []health.CheckOption{health.Timeout(time.Second)}}}, wantCode: 503, wantStatus: health.Fail,
			wantChecks: map[string]health.Result{"a": health.Fail}},
		{name: "subset leaves out failure", checks: []check{{"a", ok, nil}, {"b", fails(down), nil}}, opts: []health.HandlerOption{health.WithChecks("a")},
			wantCode: 200, wantStatus: health.Pass, wantChecks: map[string]health.Result{"a": health.Pass}},
		{name: "subset with unknown", checks: []check{{"a", ok, nil}}, opts: []health.HandlerOption{health.WithChecks("a", "nope")},
			wantCode: 503, wantStatus: health.Fail, wantChecks: map[string]health.Result{"a": health.Pass, "nope": health.Fail}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := checker(t, tt.checks)
				rec := get(health.Handler(c, tt.opts...), http.MethodGet)
				if rec.Code != tt.wantCode {
					t.Errorf("code = %d, want %d", rec.Code, tt.wantCode)
				}
				if got, want := rec.Header().Get("Content-Type"), "application/health+json"; got != want {
					t.Errorf("Content-Type = %q, want %q", got, want)
				}
				if got, want := rec.Header().Get("Cache-Control"), "no-store"; got != want {
					t.Errorf("Cache-Control = %q, want %q", got, want)
				}
				var rep struct {
					Status string                              `json:"status"`
					Checks map[string][]map[string]interface{} `json:"checks"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
					t.Fatalf("body %q: %v", rec.Body, err)
				}
				if rep.Status != string(tt.wantStatus) {
					t.Errorf("status = %q, want %q", rep.Status, tt.wantStatus)
				}
				if len(rep.Checks) != len(tt.wantChecks) {
					t.Errorf("checks = %v, want %d entries", rep.Checks, len(tt.wantChecks))
				}
				for name, want := range tt.wantChecks {
					entries := rep.Checks[name]
					if len(entries) != 1 {
						t.Errorf("checks[%q] has %d entries, want 1", name, len(entries))
						continue
					}
					if got := entries[0]["status"]; got != string(want) {
						t.Errorf("checks[%q].status = %v, want %q", name, got, want)
					}
					if got := entries[0]["observedUnit"]; got != "ms" {
						t.Errorf("checks[%q].observedUnit = %v, want ms", name, got)
					}
				}
			})
		})
	}
}

func TestHandlerMethods(t *testing.T) {
	tests := []struct {
		name      string
		handler   func(*health.Checker) http.Handler
		method    string
		wantCode  int
		wantAllow string
		wantBody  bool
	}{
		{name: "readiness GET", handler: readiness, method: http.MethodGet, wantCode: 200, wantBody: true},
		{name: "readiness HEAD", handler: readiness, method: http.MethodHead, wantCode: 200},
		{name: "readiness POST", handler: readiness, method: http.MethodPost, wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "readiness PUT", handler: readiness, method: http.MethodPut, wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "readiness DELETE", handler: readiness, method: http.MethodDelete, wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "readiness OPTIONS", handler: readiness, method: http.MethodOptions, wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "liveness GET", handler: liveness, method: http.MethodGet, wantCode: 200, wantBody: true},
		{name: "liveness HEAD", handler: liveness, method: http.MethodHead, wantCode: 200},
		{name: "liveness POST", handler: liveness, method: http.MethodPost, wantCode: 405, wantAllow: "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := health.NewChecker()
			c.MustRegister("db", ok)
			rec := get(tt.handler(c), tt.method)
			if rec.Code != tt.wantCode {
				t.Errorf("code = %d, want %d", rec.Code, tt.wantCode)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if got, want := rec.Header().Get("Cache-Control"), "no-store"; got != want {
				t.Errorf("Cache-Control = %q, want %q", got, want)
			}
			if tt.wantCode == 200 {
				if got, want := rec.Header().Get("Content-Type"), health.ContentType; got != want {
					t.Errorf("Content-Type = %q, want %q", got, want)
				}
				if rec.Header().Get("Content-Length") == "" {
					t.Errorf("Content-Length missing")
				}
			}
			if got := rec.Body.Len() > 0 && tt.wantCode == 200; got != tt.wantBody {
				t.Errorf("has body = %v, want %v (%q)", got, tt.wantBody, rec.Body)
			}
		})
	}
}

func readiness(c *health.Checker) http.Handler { return health.Handler(c) }
func liveness(*health.Checker) http.Handler    { return health.LivenessHandler() }

// TestLivenessIgnoresChecks: liveness passes while every check fails.
func TestLivenessIgnoresChecks(t *testing.T) {
	rec := get(health.LivenessHandler(), http.MethodGet)
	if rec.Code != 200 {
		t.Errorf("code = %d, want 200", rec.Code)
	}
	if got, want := strings.TrimSpace(rec.Body.String()), `{"status":"pass"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
}

// TestSecretsHidden: error text never appears in a default response, from
// the handler or the go-kit endpoint; only WithErrorDetails shows it.
func TestSecretsHidden(t *testing.T) {
	const secret = "hunter2"
	secretErr := errors.New("dial postgres://app:password=hunter2@db:5432: connection refused")
	tests := []struct {
		name       string
		fn         health.CheckFunc
		opts       []health.HandlerOption
		wantSecret bool
	}{
		{name: "fail default", fn: fails(secretErr)},
		{name: "warn default", fn: fails(health.Degraded(secretErr))},
		{name: "panic default", fn: func(context.Context) error { panic(secretErr) }},
		{name: "fail with details", fn: fails(secretErr), opts: []health.HandlerOption{health.WithErrorDetails()}, wantSecret: true},
		{name: "warn with details", fn: fails(health.Degraded(secretErr)), opts: []health.HandlerOption{health.WithErrorDetails()}, wantSecret: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := health.NewChecker()
			c.MustRegister("db", tt.fn)
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				rec := get(health.Handler(c, tt.opts...), method)
				var all bytes.Buffer
				rec.Header().Write(&all)
				all.Write(rec.Body.Bytes())
				if got := strings.Contains(all.String(), secret); got != (tt.wantSecret && method == http.MethodGet) {
					t.Errorf("%s: secret in response = %v, want %v:\n%s", method, got, tt.wantSecret, &all)
				}
			}
			r, err := health.Endpoint(c, tt.opts...)(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(b), secret); got != tt.wantSecret {
				t.Errorf("endpoint: secret in response = %v, want %v: %s", got, tt.wantSecret, b)
			}
		})
	}
}

// TestHandlerConcurrentPolls: 64 goroutines polling the handler, on demand
// and cached, share check runs and always get a well-formed report (run
// with -race).
func TestHandlerConcurrentPolls(t *testing.T) {
	tests := []struct {
		name    string
		started bool
	}{
		{name: "on demand"},
		{name: "cached", started: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const pollers, polls = 64, 20
				c := health.NewChecker(health.WithJitter(0))
				c.MustRegister("db", sleeper(10*time.Millisecond, nil))
				c.MustRegister("cache", fails(errors.New("down")), health.Optional())
				c.MustRegister("queue", fails(health.Degraded(nil)))
				if tt.started {
					if err := c.Start(t.Context(), 50*time.Millisecond); err != nil {
						t.Fatal(err)
					}
					defer c.Stop()
					time.Sleep(20 * time.Millisecond)
				}
				h := health.Handler(c)
				var wg sync.WaitGroup
				for range pollers {
					wg.Go(func() {
						for range polls {
							rec := get(h, http.MethodGet)
							var rep health.Report
							if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
								t.Errorf("body %q: %v", rec.Body, err)
								return
							}
							if rec.Code != 200 || rep.Status != health.Warn || len(rep.Checks) != 3 {
								t.Errorf("code %d, report %+v, want 200 warn with 3 checks", rec.Code, rep)
							}
							time.Sleep(time.Millisecond)
						}
					})
				}
				wg.Wait()
			})
		})
	}
}

// TestReportGolden pins the JSON shape of reports and statuses.
func TestReportGolden(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		opts   []health.HandlerOption
	}{
		{name: "default", golden: "report.json"},
		{name: "details", golden: "report_details.json", opts: []health.HandlerOption{health.WithErrorDetails()}},
		{name: "statuses", golden: "statuses.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := health.NewChecker()
				c.MustRegister("chromadb", sleeper(15200*time.Microsecond, nil))
				c.MustRegister("embedding_api", sleeper(2*time.Second, nil), health.Timeout(time.Second))
				c.MustRegister("filesystem", fails(health.ErrCheckFailed), health.Optional())
				c.MustRegister("replica", fails(health.Degraded(errors.New("lag 30s"))))
				var got []byte
				if tt.name == "statuses" {
					b, err := json.MarshalIndent(c.CheckAll(t.Context()), "", "  ")
					if err != nil {
						t.Fatal(err)
					}
					got = append(b, '\n')
				} else {
					rec := get(health.Handler(c, tt.opts...), http.MethodGet)
					var buf bytes.Buffer
					if err := json.Indent(&buf, rec.Body.Bytes(), "", "  "); err != nil {
						t.Fatalf("body %q: %v", rec.Body, err)
					}
					got = buf.Bytes()
				}
				path := filepath.Join("testdata", tt.golden)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs (run go test -update to accept):\n got: %s\nwant: %s", path, got, want)
				}
			})
		})
	}
}

func TestReportStatusCodeAndHeaders(t *testing.T) {
	tests := []struct {
		status health.Result
		want   int
	}{
		{health.Pass, 200},
		{health.Warn, 200},
		{health.Fail, 503},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			r := health.Report{Status: tt.status}
			if got := r.StatusCode(); got != tt.want {
				t.Errorf("StatusCode() = %d, want %d", got, tt.want)
			}
			if got := r.Headers().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		name       string
		fn         health.CheckFunc
		wantStatus health.Result
		wantCode   int
	}{
		{name: "pass", fn: ok, wantStatus: health.Pass, wantCode: 200},
		{name: "fail", fn: fails(errors.New("down")), wantStatus: health.Fail, wantCode: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := health.NewChecker()
			c.MustRegister("db", tt.fn)
			resp, err := health.Endpoint(c)(t.Context(), struct{}{})
			if err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			rep, isReport := resp.(health.Report)
			if !isReport {
				t.Fatalf("response is %T, want health.Report", resp)
			}
			if rep.Status != tt.wantStatus {
				t.Errorf("Status = %q, want %q", rep.Status, tt.wantStatus)
			}
			if got := rep.StatusCode(); got != tt.wantCode {
				t.Errorf("StatusCode = %d, want %d", got, tt.wantCode)
			}
			if got := rep.Checks["db"][0].Status; got != tt.wantStatus {
				t.Errorf("db status = %q, want %q", got, tt.wantStatus)
			}
		})
	}
}

func TestNilChecker(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{name: "Handler", f: func() { health.Handler(nil) }},
		{name: "Endpoint", f: func() { health.Endpoint(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s(nil) did not panic", tt.name)
				}
			}()
			tt.f()
		})
	}
}
