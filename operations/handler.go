package operations

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// errInvalid is what a bad argument to this package matches: the toolkit's
// one sentinel for configuration errors.
var errInvalid = middleware.ErrInvalidConfig

// ErrReadOnly is the error of an action asked of a [Handler] configured
// without an Authorize function: it serves state, never changes it.
var ErrReadOnly = errors.New("operations: read-only: no Authorize function is configured")

// Config configures [Handler]. The zero value serves the breakers read-only
// to loopback clients, with no events.
type Config struct {
	// Authorize decides whether r may act on a breaker (reset, trip,
	// hold-open, disable, metrics-only, normal): nil lets it, an error
	// refuses it with 403 and the error's text. It is called for every
	// POST, before anything is done; a panic in it goes up to net/http,
	// which drops the connection, and nothing is done. Default nil: every
	// action is refused ([ErrReadOnly]); the state is still served.
	Authorize func(r *http.Request) error
	// Events, if set, is the ring of recent events served at GET events.
	// Default nil: that route answers an empty list.
	Events *Events
	// ErrorDetails includes each event's error text. Error text may hold
	// secrets (a URL with a token, a query), so it is left out by default.
	ErrorDetails bool
	// Hosts are host names besides the loopback ones that may be named
	// in the Host header (see [GuardConfig].Hosts). Default none.
	Hosts []string
}

// Handler returns an http.Handler that serves the breakers of reg and the
// recent events, and acts on a breaker when cfg.Authorize allows, behind
// [Guard] (loopback or cfg.Hosts names only; state-changing requests
// same-origin and application/json). Mount it under a prefix with
// http.StripPrefix:
//
//	mux.Handle("/debug/", http.StripPrefix("/debug", operations.Handler(reg, cfg)))
//
// Routes, relative to the mount point:
//
//	GET  /breakers                  every breaker (a JSON array of [Breaker], by name)
//	GET  /breakers/{name}           one breaker; 404 if reg has none of that name
//	GET  /events                    the recent events, oldest first (a JSON array of [Event])
//	POST /breakers/{name}/{action}  act: reset, trip, hold-open, disable, metrics-only, normal
//
// A breaker name may hold slashes (package balancer names instances
// "svc/host:port"): the action is the last segment. An action answers the
// breaker as it is after it, 200; 403 when Authorize refuses or is nil,
// 404 for an unknown breaker or action, 409 when a store-shared breaker
// cannot take a manual mode ([registry.ErrModeShared]). Durations are
// strings, as in policy files ("1m0s"). It panics with an error matching
// [middleware.ErrInvalidConfig] when reg is nil.
func Handler(reg *registry.Registry, cfg Config) http.Handler {
	if reg == nil {
		panic(fmt.Errorf("%w: operations: Handler of a nil registry", errInvalid))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /breakers", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, Breakers(reg))
	})
	mux.HandleFunc("GET /breakers/{name...}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := reg.Get(r.PathValue("name"))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("operations: no breaker %q", r.PathValue("name")))
			return
		}
		writeJSON(w, http.StatusOK, breakerOf(b.Snapshot()))
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, eventsOf(cfg.Events, cfg.ErrorDetails))
	})
	mux.HandleFunc("POST /breakers/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Authorize == nil {
			writeError(w, http.StatusForbidden, ErrReadOnly.Error())
			return
		}
		if err := cfg.Authorize(r); err != nil {
			writeError(w, http.StatusForbidden, "operations: not authorized: "+err.Error())
			return
		}
		rest := r.PathValue("rest")
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 {
			writeError(w, http.StatusNotFound, "operations: want POST /breakers/{name}/{action}")
			return
		}
		name, action := rest[:i], rest[i+1:]
		act, ok := actions[action]
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("operations: no action %q: want one of %s", action, strings.Join(slices.Sorted(keys(actions)), ", ")))
			return
		}
		b, ok := reg.Get(name)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("operations: no breaker %q", name))
			return
		}
		if err := act(b); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, registry.ErrModeShared) {
				code = http.StatusConflict
			}
			writeError(w, code, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, breakerOf(b.Snapshot()))
	})
	h, err := Guard(mux, GuardConfig{Hosts: cfg.Hosts, MaxBody: 1 << 10})
	if err != nil {
		panic(err) // not reached: the mux is not nil and MaxBody is fixed
	}
	return h
}

// actions are what POST /breakers/{name}/{action} does.
var actions = map[string]func(*registry.Breaker) error{
	"reset":        func(b *registry.Breaker) error { b.Reset(); return nil },
	"trip":         func(b *registry.Breaker) error { b.Trip(); return nil },
	"hold-open":    func(b *registry.Breaker) error { return b.SetMode(registry.ModeHeldOpen) },
	"disable":      func(b *registry.Breaker) error { return b.SetMode(registry.ModeDisabled) },
	"metrics-only": func(b *registry.Breaker) error { return b.SetMode(registry.ModeMetricsOnly) },
	"normal":       func(b *registry.Breaker) error { return b.SetMode(registry.ModeNormal) },
}

func keys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Breaker is a breaker's state, counts and settings as [Handler] serves
// them: [registry.Snapshot] with durations as strings.
type Breaker struct {
	Name                string    `json:"name"`
	State               string    `json:"state"`
	Mode                string    `json:"mode"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	Requests            int       `json:"requests"`
	TotalSuccesses      int       `json:"total_successes"`
	TotalFailures       int       `json:"total_failures"`
	TotalExclusions     int       `json:"total_exclusions"`
	OpenedAt            time.Time `json:"opened_at,omitzero"`
	// UntilHalfOpen is the time left in an open spell, such as "12.5s".
	UntilHalfOpen string   `json:"until_half_open,omitempty"`
	Settings      Settings `json:"settings"`
}

// Settings are a breaker's settings, defaults applied, with the keys and
// duration strings of policy files; the rules a breaker does not use are
// left out.
type Settings struct {
	FailureThreshold int     `json:"failure_threshold"`
	SuccessThreshold int     `json:"success_threshold"`
	ResetTimeout     string  `json:"reset_timeout"`
	MaxResetTimeout  string  `json:"max_reset_timeout,omitempty"`
	ResetBackoff     float64 `json:"reset_backoff,omitempty"`
	ResetJitter      float64 `json:"reset_jitter,omitempty"`
	FailureRatio     float64 `json:"failure_ratio,omitempty"`
	MinRequests      int     `json:"min_requests,omitempty"`
	Window           string  `json:"window,omitempty"`
	WindowBuckets    int     `json:"window_buckets,omitempty"`
	SlowCallDuration string  `json:"slow_call_duration,omitempty"`
	SlowCallRatio    float64 `json:"slow_call_ratio,omitempty"`
}

// Breakers returns every breaker of reg as [Handler] serves them, sorted
// by name.
func Breakers(reg *registry.Registry) []Breaker {
	states := reg.States()
	out := make([]Breaker, 0, len(states))
	for _, s := range states {
		out = append(out, breakerOf(s))
	}
	slices.SortFunc(out, func(a, b Breaker) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func breakerOf(s registry.Snapshot) Breaker {
	st := s.Settings.WithDefaults()
	b := Breaker{
		Name: s.Name, State: s.State.String(), Mode: s.Mode.String(),
		ConsecutiveFailures: s.ConsecutiveFailures, Requests: s.Requests,
		TotalSuccesses: s.TotalSuccesses, TotalFailures: s.TotalFailures, TotalExclusions: s.TotalExclusions,
		OpenedAt: s.OpenedAt,
		Settings: Settings{
			FailureThreshold: st.FailureThreshold, SuccessThreshold: st.SuccessThreshold,
			ResetTimeout: st.ResetTimeout.String(), MaxResetTimeout: durationOrEmpty(st.MaxResetTimeout),
			ResetBackoff: st.ResetBackoff, ResetJitter: st.ResetJitter,
			FailureRatio: st.FailureRatio, MinRequests: st.MinRequests, Window: durationOrEmpty(st.Window),
			WindowBuckets: st.WindowBuckets, SlowCallDuration: durationOrEmpty(st.SlowCallDuration), SlowCallRatio: st.SlowCallRatio,
		},
	}
	if s.State == registry.StateOpen {
		b.UntilHalfOpen = s.UntilHalfOpen.String()
	}
	return b
}

func durationOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// Event is one recent event as [Handler] serves it: [middleware.Event] with
// durations as strings and the fields that do not apply left out.
type Event struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	Layer   string    `json:"layer"`
	Name    string    `json:"name,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	// Error is the event's error text, only with Config.ErrorDetails;
	// otherwise "error" when the event has an error.
	Error   string `json:"error,omitempty"`
	Wait    string `json:"wait,omitempty"`
	Latency string `json:"latency,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Limit   int    `json:"limit,omitempty"`
}

func eventsOf(ev *Events, details bool) []Event {
	out := []Event{}
	if ev == nil {
		return out
	}
	for _, r := range ev.recent() {
		e := r.e
		v := Event{At: r.at, Kind: e.Kind.String(), Layer: e.Layer, Name: e.Name, Attempt: e.Attempt,
			Wait: durationOrEmpty(e.Wait), Latency: durationOrEmpty(e.Latency), Limit: e.Limit}
		if e.Err != nil {
			v.Error = "error"
			if details {
				v.Error = e.Err.Error()
			}
		}
		if e.Kind == middleware.EventStateChange {
			v.From, v.To = e.From.String(), e.To.String()
		}
		if e.Kind == middleware.EventCall {
			v.Outcome = e.Outcome.String()
		}
		out = append(out, v)
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
