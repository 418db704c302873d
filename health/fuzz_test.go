package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/health"
)

// jsonString returns what s becomes after a trip through JSON: invalid
// UTF-8 turns into U+FFFD.
func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("json.Marshal(%q): %v", s, err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	return out
}

// FuzzHealthJSON feeds arbitrary check names, error texts, latencies and
// times to the two JSON encoders of the package: [health.Status] (the guide's
// ServiceHealth) and the application/health+json report served by
// [health.Handler]. Whatever the input, the encoders never fail or panic,
// the output is valid JSON that decodes back to the same values, and the
// report's status and HTTP code follow its checks.
func FuzzHealthJSON(f *testing.F) {
	f.Add("chromadb", "", int64(15200000), int64(946684800000000000), true, true)
	f.Add("embedding_api", "health: check timed out after 1s", int64(time.Second), int64(0), true, false)
	f.Add("filesystem", "dsn=postgres://user:secret@db/x \"quoted\" <html> &amp;", int64(0), int64(-1), false, false)
	f.Add("name with spaces ünïcödé 🚀", "\x00\x1f\u2028\u2029", int64(-5), int64(253402300799999999), false, true)
	f.Add("bad\xffutf8", "err\xfe\xff", int64(1<<62), int64(-1<<63), true, false)
	f.Fuzz(func(t *testing.T, name, errText string, latency, lastNanos int64, critical, passes bool) {
		// Status.MarshalJSON.
		var err error
		if !passes {
			err = errors.New(errText)
		}
		result := health.Pass
		if !passes {
			result = health.Fail
		}
		st := health.Status{Name: name, Healthy: passes, Result: result, Critical: critical,
			Latency: time.Duration(latency), Error: err, LastCheck: time.Unix(0, lastNanos).UTC()}
		b, merr := json.Marshal(st)
		if st.LastCheck.Year() > 9999 || st.LastCheck.Year() < 0 {
			// A time outside RFC 3339's years cannot be encoded; a Status
			// from a Checker always holds a time read from the clock.
			return
		}
		if merr != nil {
			t.Fatalf("json.Marshal(Status) error: %v", merr)
		}
		var back struct {
			Name      string    `json:"name"`
			Healthy   bool      `json:"healthy"`
			Result    string    `json:"result"`
			Critical  bool      `json:"critical"`
			LatencyMS float64   `json:"latency_ms"`
			Error     *string   `json:"error"`
			LastCheck time.Time `json:"last_check"`
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Status JSON %s does not decode: %v", b, err)
		}
		if back.Name != jsonString(t, name) || back.Healthy != passes || back.Result != string(result) || back.Critical != critical {
			t.Errorf("Status JSON %s does not match %+v", b, st)
		}
		if want := float64(latency) / float64(time.Millisecond); back.LatencyMS != want {
			t.Errorf("latency_ms = %v, want %v", back.LatencyMS, want)
		}
		if passes != (back.Error == nil) || (back.Error != nil && *back.Error != jsonString(t, errText)) {
			t.Errorf("error = %v, want %q (passes %v)", back.Error, errText, passes)
		}
		if !back.LastCheck.Equal(st.LastCheck) {
			t.Errorf("last_check = %v, want %v", back.LastCheck, st.LastCheck)
		}

		// The health+json report, through a Checker and its Handler.
		c := health.NewChecker(health.Config{})
		fn := func(context.Context) error { return err }
		if regErr := c.Register(health.Check{Name: name, Func: fn, Optional: !critical}); regErr != nil {
			return // a name the checker refuses is not reported
		}
		rec := get(health.Handler(c, health.HandlerConfig{ErrorDetails: true}), http.MethodGet)
		if got := rec.Header().Get("Content-Type"); got != health.ContentType {
			t.Errorf("Content-Type = %q, want %q", got, health.ContentType)
		}
		var rep health.Report
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("report %s does not decode: %v", rec.Body.Bytes(), err)
		}
		wantStatus, wantCode := health.Pass, http.StatusOK
		switch {
		case !passes && critical:
			wantStatus, wantCode = health.Fail, http.StatusServiceUnavailable
		case !passes:
			wantStatus = health.Warn
		}
		if rep.Status != wantStatus || rec.Code != wantCode {
			t.Errorf("report status %q, code %d; want %q, %d", rep.Status, rec.Code, wantStatus, wantCode)
		}
		crs := rep.Checks[jsonString(t, name)]
		if len(rep.Checks) != 1 || len(crs) != 1 {
			t.Fatalf("report checks = %v, want one entry for %q", rep.Checks, name)
		}
		if wantOut := map[bool]string{true: "", false: jsonString(t, errText)}[passes]; crs[0].Output != wantOut {
			t.Errorf("output = %q, want %q", crs[0].Output, wantOut)
		}
	})
}
