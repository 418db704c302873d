package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
)

// The file format: a map from stack name to a stack of these layers. The
// schema is this package's own; it is turned into middleware's config
// structs, which know nothing of it.

// layerKeys are the keys of a stack in a policy file.
var layerKeys = []string{"name", "budget", "measure", "recover", "fallback", "bulkhead", "adaptive_limit", "rate_limit", "circuit_breaker", "retry", "hedge", "throttle", "timeout"}

type fileRetry struct {
	MaxAttempts         int      `json:"max_attempts"`
	Delay               duration `json:"delay"`
	NoDelay             bool     `json:"no_delay"`
	Backoff             float64  `json:"backoff"`
	MaxDelay            duration `json:"max_delay"`
	DisableJitter       bool     `json:"disable_jitter"`
	RetryOn             []string `json:"retry_on"`
	RetryBusinessErrors bool     `json:"retry_business_errors"`
	Name                string   `json:"name"`
	// Budget, when present, gives the stack's retries a budget of their
	// own, shared by every endpoint built from the stack.
	Budget json.RawMessage `json:"budget"`
}

type fileRetryBudget struct {
	Ratio      float64 `json:"ratio"`
	MinRetries int     `json:"min_retries"`
}

type fileBreaker struct {
	Name                string   `json:"name"`
	FailureThreshold    int      `json:"failure_threshold"`
	SuccessThreshold    int      `json:"success_threshold"`
	ResetTimeout        duration `json:"reset_timeout"`
	FailOn              []string `json:"fail_on"`
	CountBusinessErrors bool     `json:"count_business_errors"`
	FailureRatio        float64  `json:"failure_ratio"`
	MinRequests         int      `json:"min_requests"`
	Window              duration `json:"window"`
	WindowBuckets       int      `json:"window_buckets"`
	SlowCallDuration    duration `json:"slow_call_duration"`
	SlowCallRatio       float64  `json:"slow_call_ratio"`
	MaxResetTimeout     duration `json:"max_reset_timeout"`
	ResetBackoff        float64  `json:"reset_backoff"`
	ResetJitter         float64  `json:"reset_jitter"`
}

type fileTimeout struct {
	Timeout       duration        `json:"timeout"`
	Abandon       bool            `json:"abandon"`
	MaxAbandoned  int             `json:"max_abandoned"`
	Default       json.RawMessage `json:"default"`
	ReturnDefault bool            `json:"return_default"`
	Name          string          `json:"name"`
}

type fileFallback struct {
	Value      json.RawMessage `json:"value"`
	FallbackOn []string        `json:"fallback_on"`
	Name       string          `json:"name"`
}

type fileBulkhead struct {
	MaxConcurrent int      `json:"max_concurrent"`
	MaxWait       duration `json:"max_wait"`
	MaxQueue      int      `json:"max_queue"`
	Name          string   `json:"name"`
}

type fileAdaptiveLimit struct {
	Algorithm    string   `json:"algorithm"`
	InitialLimit int      `json:"initial_limit"`
	MinLimit     int      `json:"min_limit"`
	MaxLimit     int      `json:"max_limit"`
	Tolerance    float64  `json:"tolerance"`
	Window       duration `json:"window"`
	MaxQueue     int      `json:"max_queue"`
	MaxWait      duration `json:"max_wait"`
	Name         string   `json:"name"`
}

type fileHedge struct {
	Delay      duration `json:"delay"`
	Quantile   float64  `json:"quantile"`
	MaxHedges  int      `json:"max_hedges"`
	Idempotent bool     `json:"idempotent"`
	// RetryBudget counts the hedges against the stack's retry budget.
	RetryBudget bool   `json:"retry_budget"`
	Name        string `json:"name"`
}

type fileThrottle struct {
	K           float64  `json:"k"`
	Window      duration `json:"window"`
	MinRequests int      `json:"min_requests"`
	Name        string   `json:"name"`
}

type fileRateLimit struct {
	Rate    float64  `json:"rate"`
	Burst   int      `json:"burst"`
	Wait    bool     `json:"wait"`
	MaxWait duration `json:"max_wait"`
	Name    string   `json:"name"`
	Shared  bool     `json:"shared"`
}

// stackDef is one stack as read from the file: the Stack, and the values a
// typed caller decodes into its own type ([StackFor]).
type stackDef struct {
	stack          middleware.Stack
	fallbackValue  json.RawMessage // nil: none in the file
	timeoutDefault json.RawMessage // nil: none in the file
}

// decodeStack turns one stack of the file (as JSON) into a stackDef. Every
// problem is returned at once, each a *middleware.ConfigError naming the
// field ("retry.max_attempts").
func decodeStack(name string, js []byte, classes *errclass.Set) (stackDef, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(js, &raw); err != nil || raw == nil {
		return stackDef{}, &middleware.ConfigError{Path: "stack", Reason: "must be a map of layers (" + strings.Join(layerKeys, ", ") + ")"}
	}
	var (
		hedgeBudget bool // hedge.retry_budget: share the retry's budget, once it is read
		d           stackDef
		s           = &d.stack
		errs        []error
		reported    []string // the paths of errs
	)
	s.Name = name
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := raw[k]
		if string(v) == "null" {
			continue
		}
		var err error
		switch k {
		case "name":
			if derr := json.Unmarshal(v, &s.Name); derr != nil {
				err = &middleware.ConfigError{Path: "name", Reason: "must be a string"}
			}
		case "budget":
			var b duration
			if b.UnmarshalJSON(v); b.err != nil {
				err = &middleware.ConfigError{Path: "budget", Field: "Stack.Budget", Reason: b.err.Error()}
			}
			s.Budget = b.v
		case "measure", "recover":
			var on bool
			if derr := decodeToggle(v, &on); derr != nil {
				err = &middleware.ConfigError{Path: k, Reason: derr.Error()}
			}
			if k == "measure" {
				s.Measure = on
			} else {
				s.Recover = on
			}
		case "retry":
			var f fileRetry
			if err = decodeStrict("retry", v, &f); err == nil {
				pred, cerr := classPredicate("retry.retry_on", f.RetryOn, classes)
				err = errors.Join(durations("retry", "delay", f.Delay, "max_delay", f.MaxDelay), cerr)
				s.Retry = middleware.RetryConfig{
					MaxAttempts: f.MaxAttempts, Delay: f.Delay.v, NoDelay: f.NoDelay, Backoff: f.Backoff,
					MaxDelay: f.MaxDelay.v, DisableJitter: f.DisableJitter, RetryIf: pred,
					RetryBusinessErrors: f.RetryBusinessErrors, Name: orName(f.Name, s.Name),
				}
				if f.Budget != nil && string(f.Budget) != "null" {
					var fb fileRetryBudget
					if berr := decodeStrict("retry.budget", f.Budget, &fb); berr != nil {
						err = errors.Join(err, berr)
					} else if bc := (middleware.RetryBudgetConfig{Ratio: fb.Ratio, MinRetries: fb.MinRetries}); bc.Validate() != nil {
						err = errors.Join(err, reroot(bc.Validate(), "retry_budget.", "retry.budget."))
					} else {
						s.Retry.Budget = middleware.NewRetryBudget(bc)
					}
				}
			}
		case "circuit_breaker":
			var f fileBreaker
			if err = decodeStrict("circuit_breaker", v, &f); err == nil {
				pred, cerr := classPredicate("circuit_breaker.fail_on", f.FailOn, classes)
				err = errors.Join(durations("circuit_breaker", "reset_timeout", f.ResetTimeout, "window", f.Window, "slow_call_duration", f.SlowCallDuration, "max_reset_timeout", f.MaxResetTimeout), cerr)
				s.CircuitBreaker = middleware.BreakerConfig{
					Name: f.Name, FailureThreshold: f.FailureThreshold, SuccessThreshold: f.SuccessThreshold,
					ResetTimeout: f.ResetTimeout.v, FailIf: pred, CountBusinessErrors: f.CountBusinessErrors,
					FailureRatio: f.FailureRatio, MinRequests: f.MinRequests, Window: f.Window.v,
					WindowBuckets: f.WindowBuckets, SlowCallDuration: f.SlowCallDuration.v, SlowCallRatio: f.SlowCallRatio,
					MaxResetTimeout: f.MaxResetTimeout.v, ResetBackoff: f.ResetBackoff, ResetJitter: f.ResetJitter,
				}
				if s.CircuitBreaker.Name == "" {
					s.CircuitBreaker.Name = s.Name
				}
			}
		case "timeout":
			var f fileTimeout
			if err = decodeStrict("timeout", v, &f); err == nil {
				err = durations("timeout", "timeout", f.Timeout)
				s.Timeout = middleware.TimeoutConfig{
					Timeout: f.Timeout.v, Abandon: f.Abandon, MaxAbandoned: f.MaxAbandoned,
					ReturnDefault: f.ReturnDefault, Name: orName(f.Name, s.Name),
				}
				var verr error
				s.Timeout.Default, verr = fileValue("timeout.default", f.Default, &d.timeoutDefault)
				err = errors.Join(err, verr)
			}
		case "fallback":
			var f fileFallback
			if err = decodeStrict("fallback", v, &f); err == nil {
				var pred func(error) bool
				pred, err = classPredicate("fallback.fallback_on", f.FallbackOn, classes)
				s.Fallback = middleware.FallbackConfig{FallbackIf: pred, Name: orName(f.Name, s.Name)}
				var verr error
				s.Fallback.Value, verr = fileValue("fallback.value", f.Value, &d.fallbackValue)
				err = errors.Join(err, verr)
			}
		case "bulkhead":
			var f fileBulkhead
			if err = decodeStrict("bulkhead", v, &f); err == nil {
				err = durations("bulkhead", "max_wait", f.MaxWait)
				s.Bulkhead = middleware.BulkheadConfig{MaxConcurrent: f.MaxConcurrent, MaxWait: f.MaxWait.v, MaxQueue: f.MaxQueue, Name: orName(f.Name, s.Name)}
			}
		case "adaptive_limit":
			var f fileAdaptiveLimit
			if err = decodeStrict("adaptive_limit", v, &f); err == nil {
				err = durations("adaptive_limit", "window", f.Window, "max_wait", f.MaxWait)
				s.AdaptiveLimit = middleware.AdaptiveLimitConfig{
					Algorithm: f.Algorithm, InitialLimit: f.InitialLimit, MinLimit: f.MinLimit, MaxLimit: f.MaxLimit,
					Tolerance: f.Tolerance, Window: f.Window.v, MaxQueue: f.MaxQueue, MaxWait: f.MaxWait.v, Name: orName(f.Name, s.Name),
				}
			}
		case "hedge":
			var f fileHedge
			if err = decodeStrict("hedge", v, &f); err == nil {
				err = durations("hedge", "delay", f.Delay)
				s.Hedge = middleware.HedgeConfig{Delay: f.Delay.v, Quantile: f.Quantile, MaxHedges: f.MaxHedges, Name: orName(f.Name, s.Name)}
				if f.Idempotent {
					s.Hedge.Idempotent = everyCall
				}
				hedgeBudget = f.RetryBudget
			}
		case "throttle":
			var f fileThrottle
			if err = decodeStrict("throttle", v, &f); err == nil {
				err = durations("throttle", "window", f.Window)
				s.Throttle = middleware.ThrottleConfig{K: f.K, Window: f.Window.v, MinRequests: f.MinRequests, Name: orName(f.Name, s.Name)}
			}
		case "rate_limit":
			var f fileRateLimit
			if err = decodeStrict("rate_limit", v, &f); err == nil {
				err = durations("rate_limit", "max_wait", f.MaxWait)
				s.RateLimit = middleware.RateLimitConfig{Rate: f.Rate, Burst: f.Burst, Wait: f.Wait, MaxWait: f.MaxWait.v, Name: orName(f.Name, s.Name), Shared: f.Shared}
			}
		default:
			err = &middleware.ConfigError{Path: k, Reason: "unknown layer (want one of " + strings.Join(layerKeys, ", ") + ")"}
		}
		for _, l := range leaves(err) {
			errs = append(errs, l.error)
			reported = append(reported, l.Path)
		}
	}
	if hedgeBudget {
		if s.Retry.Budget == nil {
			errs = append(errs, &middleware.ConfigError{Path: "hedge.retry_budget", Field: "HedgeConfig.Budget", Value: true,
				Reason: "needs a retry budget (retry.budget) to count the hedges against"})
		}
		s.Hedge.Budget = s.Retry.Budget
	}
	// Validate what decoded too, so that one stack reports every problem
	// at once. A layer that did not decode is zero, so Validate skips it;
	// a field that did not decode is zero, and its problem is reported
	// already.
	for _, l := range leaves(s.Validate()) {
		if l.Path == "" || !slices.Contains(reported, l.Path) {
			errs = append(errs, l.error)
		}
	}
	return d, errors.Join(errs...)
}

// everyCall is a hedge's Idempotent for a file's "idempotent: true".
func everyCall(context.Context, any) bool { return true }

// reroot moves the paths of err's ConfigErrors from under one prefix to
// another ("retry_budget.ratio" to "retry.budget.ratio").
func reroot(err error, from, to string) error {
	var out []error
	for _, l := range leaves(err) {
		if ce, ok := l.error.(*middleware.ConfigError); ok && strings.HasPrefix(ce.Path, from) {
			c := *ce
			c.Path = to + strings.TrimPrefix(ce.Path, from)
			out = append(out, &c)
			continue
		}
		out = append(out, l.error)
	}
	return errors.Join(out...)
}

// leaf is one error of a joined error, with its ConfigError's path ("" for
// another error).
type leaf struct {
	error
	Path string
}

// leaves returns the errors of a joined error, each with its path.
func leaves(err error) []leaf {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []leaf
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	l := leaf{error: err}
	if ce, ok := errors.AsType[*middleware.ConfigError](err); ok {
		l.Path = ce.Path
	}
	return []leaf{l}
}

// orName is name, or the stack's name when it is empty: a layer named in the
// file keeps its name, and every layer present is set (not the zero value).
func orName(name, stack string) string {
	if name != "" {
		return name
	}
	if stack != "" {
		return stack
	}
	return "policy"
}

// decodeToggle reads a layer with no settings of its own: true/false, or
// an empty map (present).
func decodeToggle(v json.RawMessage, on *bool) error {
	if err := json.Unmarshal(v, on); err == nil {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return errors.New("must be true, false or {}")
	}
	for k := range m {
		return fmt.Errorf("unknown key %q (the layer takes the stack's name and observer)", k)
	}
	*on = true
	return nil
}

// classPredicate turns the class names of a *_on list into one predicate:
// nil for none, or an error naming every unknown class and the known ones.
func classPredicate(path string, names []string, classes *errclass.Set) (func(error) bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var errs []error
	for i, n := range names {
		if _, ok := classes.Lookup(n); !ok {
			errs = append(errs, &middleware.ConfigError{Path: fmt.Sprintf("%s[%d]", path, i), Value: n,
				Reason: "unknown error class (known: " + strings.Join(classes.Names(), ", ") + ")"})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return classes.Match(names...)
}

// fileValue decodes a value of the file at path (a fallback value, a
// timeout's default) as JSON's types and keeps its raw form in *keep, for
// StackFor; an absent or null value is nil.
func fileValue(path string, raw json.RawMessage, keep *json.RawMessage) (any, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	*keep = raw
	return decodeValue(path, raw)
}

// decodeValue decodes a value of the file (a fallback value, a timeout's
// default) as JSON's types: what [Set.Stack] serves.
func decodeValue(path string, raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, &middleware.ConfigError{Path: path, Reason: err.Error()}
	}
	return v, nil
}

// decodeStrict decodes one layer's map into v, rejecting unknown keys and
// trailing data, and names the field of any problem.
func decodeStrict(layer string, b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the map")
	}
	if err == nil {
		return nil
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return &middleware.ConfigError{Path: layer, Reason: fmt.Sprintf("must be a map, not a %s", te.Value)}
		}
		return &middleware.ConfigError{Path: layer + "." + te.Field, Reason: fmt.Sprintf("must be of type %s, not a %s", jsonKind(te.Type.String()), te.Value)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ := strconv.Unquote(f)
		return &middleware.ConfigError{Path: layer + "." + name, Reason: "unknown key"}
	}
	return &middleware.ConfigError{Path: layer, Reason: strings.TrimPrefix(msg, "json: ")}
}

func jsonKind(goType string) string {
	switch goType {
	case "int", "int64":
		return "integer"
	case "float64":
		return "number"
	case "policy.duration":
		return "duration"
	case "bool":
		return "boolean"
	case "string":
		return "string"
	case "[]string":
		return "list of names"
	}
	return goType
}
