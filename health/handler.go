package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// ContentType is the media type of a [Report]: the IETF draft "Health Check
// Response Format for HTTP APIs".
const ContentType = "application/health+json"

// Report is a health report in the IETF draft "Health Check Response Format
// for HTTP APIs": what [Handler] serves and [Endpoint] returns.
//
//	{"status":"pass","checks":{"chromadb":[{"status":"pass","observedValue":15.2,
//	  "observedUnit":"ms","time":"2026-01-13T17:45:00Z"}]}}
//
// Status is [Fail] when some critical check fails; otherwise [Warn] when some
// check warns or an optional check fails; otherwise [Pass] (also with no
// checks at all).
type Report struct {
	// Status is the overall result.
	Status Result `json:"status"`
	// Checks holds one entry per check, keyed by check name; each value is a
	// one-element list, as the draft prescribes.
	Checks map[string][]CheckReport `json:"checks,omitempty"`
}

// CheckReport is the report of one check inside a [Report].
type CheckReport struct {
	// Status is the check's own result: an optional check that fails is
	// Fail here, even though the overall report is only Warn.
	Status Result `json:"status"`
	// ObservedValue is the check's latency.
	ObservedValue float64 `json:"observedValue"`
	// ObservedUnit is "ms".
	ObservedUnit string `json:"observedUnit"`
	// Time is when the result was recorded, in UTC; omitted when the check
	// has never run.
	Time time.Time `json:"time,omitzero"`
	// Output is the check's error text, set only with
	// [HandlerConfig].ErrorDetails and only when Status is not Pass.
	Output string `json:"output,omitempty"`
}

// StatusCode returns the HTTP status code of r: 503 Service Unavailable when
// r.Status is Fail, 200 OK otherwise. It makes a Report a go-kit
// transport/http StatusCoder.
func (r Report) StatusCode() int {
	if r.Status == Fail {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// Headers returns Cache-Control: no-store, so that no cache serves a stale
// health report. It makes a Report a go-kit transport/http Headerer.
func (r Report) Headers() http.Header {
	return http.Header{"Cache-Control": {"no-store"}}
}

// HandlerConfig configures [Handler] and [Endpoint]. The zero value is the
// defaults: every check, error text left out.
type HandlerConfig struct {
	// Checks restricts the report to the named checks, in any order.
	// Default (nil or empty): every check registered, at each request. A
	// name never registered is reported as a failed critical check; an
	// empty name or a name given twice is refused.
	Checks []string

	// ErrorDetails includes each failing or warning check's error text as
	// the report's "output". Default false: it is left out, because a
	// check's error may hold a DSN, a host name or a password, and health
	// endpoints are often reachable by anyone who can reach the service.
	ErrorDetails bool
}

// handlerConfig is a validated HandlerConfig, owned by one handler.
type handlerConfig struct {
	details bool
	names   []string // nil: every check
}

// newHandlerConfig validates cfg and returns a copy the caller cannot
// change; it panics with an error matching middleware.ErrInvalidConfig, naming the
// field, when cfg is not valid.
func newHandlerConfig(cfg HandlerConfig) handlerConfig {
	var errs []error
	seen := make(map[string]int, len(cfg.Checks))
	for i, n := range cfg.Checks {
		if n == "" {
			errs = append(errs, fmt.Errorf("health: %w: HandlerConfig.Checks[%d] is empty", middleware.ErrInvalidConfig, i))
			continue
		}
		if j, dup := seen[n]; dup {
			errs = append(errs, fmt.Errorf("health: %w: HandlerConfig.Checks[%d] = %q, already given at Checks[%d]", middleware.ErrInvalidConfig, i, n, j))
			continue
		}
		seen[n] = i
	}
	if err := errors.Join(errs...); err != nil {
		panic(err)
	}
	hc := handlerConfig{details: cfg.ErrorDetails}
	if len(cfg.Checks) > 0 {
		hc.names = slices.Clone(cfg.Checks)
	}
	return hc
}

// report returns c's report under cfg.
func (c *Checker) report(ctx context.Context, cfg handlerConfig) Report {
	sts := c.statuses(ctx, cfg.names)
	r := Report{Status: Pass, Checks: make(map[string][]CheckReport, len(sts))}
	for _, s := range sts {
		cr := CheckReport{
			Status:        s.Result,
			ObservedValue: ms(s.Latency),
			ObservedUnit:  "ms",
		}
		if !s.LastCheck.IsZero() {
			cr.Time = s.LastCheck.UTC()
		}
		if cfg.details && s.Error != nil {
			cr.Output = s.Error.Error()
		}
		r.Checks[s.Name] = []CheckReport{cr}
		res := s.Result
		if res == Fail && !s.Critical {
			res = Warn
		}
		r.Status = worse(r.Status, res)
	}
	return r
}

func worse(a, b Result) Result {
	if a == Fail || b == Fail {
		return Fail
	}
	if a == Warn || b == Warn {
		return Warn
	}
	return Pass
}

// Handler returns a readiness handler: it serves c's [Report] as
// application/health+json, with status 200 when every critical check passes
// or warns and 503 otherwise. Without [Checker.Start] each request runs the
// checks (sharing runs in flight); after Start it reads the cache.
//
// It answers GET and HEAD (headers only), and any other method with 405 and
// "Allow: GET, HEAD". Responses carry Cache-Control: no-store. Error text is
// left out unless cfg.ErrorDetails is set. Handler panics when c is nil, and
// with an error matching [middleware.ErrInvalidConfig] when cfg is not valid.
func Handler(c *Checker, cfg HandlerConfig) http.Handler {
	if c == nil {
		panic("health: Handler: nil Checker")
	}
	hc := newHandlerConfig(cfg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, c.report(r.Context(), hc))
	})
}

// LivenessHandler returns a liveness handler: it answers {"status":"pass"}
// with 200, as long as the process can serve HTTP at all, and runs no
// checks, so that a failing dependency never gets the process restarted.
// Methods and headers are as for [Handler].
func LivenessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, Report{Status: Pass})
	})
}

var allowed = []string{"GET, HEAD"}

func serve(w http.ResponseWriter, r *http.Request, rep Report) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h["Allow"] = allowed
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	body, err := json.Marshal(rep)
	if err != nil { // cannot happen: a Report holds only strings, numbers and times
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	h.Set("Content-Type", ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rep.StatusCode())
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // an error means the client has gone; nothing to do
	}
}
