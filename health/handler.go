package health

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"
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
	// Output is the check's error text, set only with [WithErrorDetails]
	// and only when Status is not Pass.
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

// HandlerOption configures [Handler] and [Endpoint].
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	details bool
	names   []string
}

// WithErrorDetails returns a HandlerOption that includes each failing or
// warning check's error text as "output". By default it is left out: a
// check's error may hold a DSN, a host name or a password, and health
// endpoints are often reachable by anyone who can reach the service.
func WithErrorDetails() HandlerOption { return func(c *handlerConfig) { c.details = true } }

// WithChecks returns a HandlerOption restricting the report to the named
// checks; by default it covers every check. A name never registered is
// reported as a failed critical check.
func WithChecks(names ...string) HandlerOption {
	names = slices.Clone(names)
	return func(c *handlerConfig) { c.names = names }
}

func newHandlerConfig(opts []HandlerOption) handlerConfig {
	var cfg handlerConfig
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
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
// left out unless [WithErrorDetails] is given.
func Handler(c *Checker, opts ...HandlerOption) http.Handler {
	if c == nil {
		panic("health: Handler: nil Checker")
	}
	cfg := newHandlerConfig(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, c.report(r.Context(), cfg))
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
