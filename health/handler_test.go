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
	"github.com/resiliencekit/resilience/middleware"
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

func checker(t *testing.T, checks []health.Check) *health.Checker {
	t.Helper()
	c := health.NewChecker(health.Config{})
	for _, ck := range checks {
		if err := c.Register(ck); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestHandlerStatus(t *testing.T) {
	down := errors.New("down")
	tests := []struct {
		name       string
		checks     []health.Check
		cfg        health.HandlerConfig
		wantCode   int
		wantStatus health.Result
		wantChecks map[string]health.Result
	}{
		{name: "no checks", wantCode: 200, wantStatus: health.Pass, wantChecks: map[string]health.Result{}},
		{name: "all pass", checks: []health.Check{{Name: "a", Func: ok}, {Name: "b", Func: ok}}, wantCode: 200, wantStatus: health.Pass,
			wantChecks: map[string]health.Result{"a": health.Pass, "b": health.Pass}},
		{name: "critical fails", checks: []health.Check{{Name: "a", Func: ok}, {Name: "b", Func: fails(down)}}, wantCode: 503, wantStatus: health.Fail,
			wantChecks: map[string]health.Result{"a": health.Pass, "b": health.Fail}},
		{name: "optional fails", checks: []health.Check{{Name: "a", Func: ok}, {Name: "b", Func: fails(down), Optional: true}}, wantCode: 200, wantStatus: health.Warn,
			wantChecks: map[string]health.Result{"a": health.Pass, "b": health.Fail}},
		{name: "degraded", checks: []health.Check{{Name: "a", Func: ok}, {Name: "b", Func: fails(health.Degraded(down))}}, wantCode: 200, wantStatus: health.Warn,
			wantChecks: map[string]health.Result{"a": health.Pass, "b": health.Warn}},
		{name: "warn and fail", checks: []health.Check{{Name: "a", Func: fails(down)}, {Name: "b", Func: fails(health.Degraded(down))}}, wantCode: 503, wantStatus: health.Fail,
			wantChecks: map[string]health.Result{"a": health.Fail, "b": health.Warn}},
		{name: "timeout", checks: []health.Check{{Name: "a", Func: sleeper(time.Hour, nil), Timeout: time.Second}}, wantCode: 503, wantStatus: health.Fail,
			wantChecks: map[string]health.Result{"a": health.Fail}},
		{name: "subset leaves out failure", checks: []health.Check{{Name: "a", Func: ok}, {Name: "b", Func: fails(down)}}, cfg: health.HandlerConfig{Checks: []string{"a"}},
			wantCode: 200, wantStatus: health.Pass, wantChecks: map[string]health.Result{"a": health.Pass}},
		{name: "subset with unknown", checks: []health.Check{{Name: "a", Func: ok}}, cfg: health.HandlerConfig{Checks: []string{"a", "nope"}},
			wantCode: 503, wantStatus: health.Fail, wantChecks: map[string]health.Result{"a": health.Pass, "nope": health.Fail}},
		{name: "empty subset is every check", checks: []health.Check{{Name: "a", Func: ok}, {Name: "b", Func: fails(down)}}, cfg: health.HandlerConfig{Checks: []string{}},
			wantCode: 503, wantStatus: health.Fail, wantChecks: map[string]health.Result{"a": health.Pass, "b": health.Fail}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := checker(t, tt.checks)
				rec := get(health.Handler(c, tt.cfg), http.MethodGet)
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
			c := health.NewChecker(health.Config{})
			c.MustRegister(health.Check{Name: "db", Func: ok})
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

func readiness(c *health.Checker) http.Handler { return health.Handler(c, health.HandlerConfig{}) }
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
// the handler or the go-kit endpoint; only HandlerConfig.ErrorDetails shows it.
func TestSecretsHidden(t *testing.T) {
	const secret = "hunter2"
	secretErr := errors.New("dial postgres://app:password=hunter2@db:5432: connection refused")
	tests := []struct {
		name       string
		fn         health.CheckFunc
		cfg        health.HandlerConfig
		wantSecret bool
	}{
		{name: "fail default", fn: fails(secretErr)},
		{name: "warn default", fn: fails(health.Degraded(secretErr))},
		{name: "panic default", fn: func(context.Context) error { panic(secretErr) }},
		{name: "fail with details", fn: fails(secretErr), cfg: health.HandlerConfig{ErrorDetails: true}, wantSecret: true},
		{name: "warn with details", fn: fails(health.Degraded(secretErr)), cfg: health.HandlerConfig{ErrorDetails: true}, wantSecret: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := health.NewChecker(health.Config{})
			c.MustRegister(health.Check{Name: "db", Func: tt.fn})
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				rec := get(health.Handler(c, tt.cfg), method)
				var all bytes.Buffer
				rec.Header().Write(&all)
				all.Write(rec.Body.Bytes())
				if got := strings.Contains(all.String(), secret); got != (tt.wantSecret && method == http.MethodGet) {
					t.Errorf("%s: secret in response = %v, want %v:\n%s", method, got, tt.wantSecret, &all)
				}
			}
			r, err := health.Endpoint(c, tt.cfg)(t.Context(), nil)
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
				c := health.NewChecker(health.Config{DisableJitter: true})
				c.MustRegister(health.Check{Name: "db", Func: sleeper(10*time.Millisecond, nil)})
				c.MustRegister(health.Check{Name: "cache", Func: fails(errors.New("down")), Optional: true})
				c.MustRegister(health.Check{Name: "queue", Func: fails(health.Degraded(nil))})
				if tt.started {
					if err := c.Start(t.Context(), 50*time.Millisecond); err != nil {
						t.Fatal(err)
					}
					defer c.Stop()
					time.Sleep(20 * time.Millisecond)
				}
				h := health.Handler(c, health.HandlerConfig{})
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
		cfg    health.HandlerConfig
	}{
		{name: "default", golden: "report.json"},
		{name: "details", golden: "report_details.json", cfg: health.HandlerConfig{ErrorDetails: true}},
		{name: "statuses", golden: "statuses.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := health.NewChecker(health.Config{})
				c.MustRegister(health.Check{Name: "chromadb", Func: sleeper(15200*time.Microsecond, nil)})
				c.MustRegister(health.Check{Name: "embedding_api", Func: sleeper(2*time.Second, nil), Timeout: time.Second})
				c.MustRegister(health.Check{Name: "filesystem", Func: fails(health.ErrCheckFailed), Optional: true})
				c.MustRegister(health.Check{Name: "replica", Func: fails(health.Degraded(errors.New("lag 30s")))})
				var got []byte
				if tt.name == "statuses" {
					b, err := json.MarshalIndent(c.CheckAll(t.Context()), "", "  ")
					if err != nil {
						t.Fatal(err)
					}
					got = append(b, '\n')
				} else {
					rec := get(health.Handler(c, tt.cfg), http.MethodGet)
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
			c := health.NewChecker(health.Config{})
			c.MustRegister(health.Check{Name: "db", Func: tt.fn})
			resp, err := health.Endpoint(c, health.HandlerConfig{})(t.Context(), struct{}{})
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
		{name: "Handler", f: func() { health.Handler(nil, health.HandlerConfig{}) }},
		{name: "Endpoint", f: func() { health.Endpoint(nil, health.HandlerConfig{}) }},
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

// TestHandlerInvalidConfig: Handler and Endpoint refuse a HandlerConfig
// whose Checks hold an empty or repeated name, naming the field and index.
func TestHandlerInvalidConfig(t *testing.T) {
	tests := []struct {
		name   string
		checks []string
		want   []string // each must appear in the message
	}{
		{name: "empty name", checks: []string{"a", ""}, want: []string{"HandlerConfig.Checks[1]", "empty"}},
		{name: "repeated name", checks: []string{"a", "b", "a"}, want: []string{`HandlerConfig.Checks[2] = "a"`, "Checks[0]"}},
		{name: "both", checks: []string{"", "b", "b"}, want: []string{"HandlerConfig.Checks[0]", "HandlerConfig.Checks[2]"}},
	}
	constructors := []struct {
		name string
		make func(*health.Checker, health.HandlerConfig)
	}{
		{name: "Handler", make: func(c *health.Checker, cfg health.HandlerConfig) { health.Handler(c, cfg) }},
		{name: "Endpoint", make: func(c *health.Checker, cfg health.HandlerConfig) { health.Endpoint(c, cfg) }},
	}
	for _, tt := range tests {
		for _, k := range constructors {
			t.Run(tt.name+"/"+k.name, func(t *testing.T) {
				defer func() {
					err, _ := recover().(error)
					if !errors.Is(err, middleware.ErrInvalidConfig) {
						t.Fatalf("panic = %v, want ErrInvalidConfig", err)
					}
					for _, w := range tt.want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("panic %q does not say %s", err, w)
						}
					}
				}()
				k.make(health.NewChecker(health.Config{}), health.HandlerConfig{Checks: tt.checks})
			})
		}
	}
}

// TestHandlerConfigCopied: changing the Checks slice after Handler returns
// does not change what the handler reports.
func TestHandlerConfigCopied(t *testing.T) {
	c := health.NewChecker(health.Config{})
	c.MustRegister(health.Check{Name: "a", Func: ok})
	c.MustRegister(health.Check{Name: "b", Func: fails(errors.New("down"))})
	names := []string{"a"}
	h := health.Handler(c, health.HandlerConfig{Checks: names})
	names[0] = "b"
	if rec := get(h, http.MethodGet); rec.Code != http.StatusOK {
		t.Errorf("code = %d, want %d (the handler reports a only)", rec.Code, http.StatusOK)
	}
}
