package middleware

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// stackKeys are the layer keys of a stack in a policy file.
var stackKeys = []string{"name", "budget", "measure", "fallback", "bulkhead", "rate_limit", "circuit_breaker", "retry", "timeout"}

// UnmarshalJSON decodes the file form of a Stack, rejecting unknown layers
// and unknown keys within each layer; every problem is reported at once.
func (s *Stack) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return &ConfigError{Path: "stack", Reason: "must be an object of layers (" + strings.Join(stackKeys, ", ") + ")"}
	}
	var errs []error
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		if string(v) == "null" {
			continue
		}
		var err error
		switch k {
		case "budget":
			var d duration
			if derr := d.UnmarshalJSON(v); derr != nil {
				err = &ConfigError{Path: "budget", Field: "Stack.Budget", Reason: derr.Error()}
			} else {
				s.Budget = time.Duration(d)
			}
		case "name":
			if derr := json.Unmarshal(v, &s.Name); derr != nil {
				err = &ConfigError{Path: "name", Field: "Stack.Name", Reason: "must be a string"}
			}
		case "measure":
			s.Measure = new(MeasureConfig)
			if derr := decodeStrict(v, s.Measure); derr != nil {
				err = fileError("measure", "MeasureConfig", derr)
			}
		case "fallback":
			s.Fallback = new(FallbackConfig)
			err = s.Fallback.UnmarshalJSON(v)
		case "bulkhead":
			s.Bulkhead = new(BulkheadConfig)
			err = json.Unmarshal(v, s.Bulkhead)
		case "rate_limit":
			s.RateLimit = new(RateLimitConfig)
			err = json.Unmarshal(v, s.RateLimit)
		case "circuit_breaker":
			s.CircuitBreaker = new(BreakerConfig)
			err = json.Unmarshal(v, s.CircuitBreaker)
		case "retry":
			s.Retry = new(RetryConfig)
			err = s.Retry.UnmarshalJSON(v)
		case "timeout":
			s.Timeout = new(TimeoutConfig)
			err = s.Timeout.UnmarshalJSON(v)
		default:
			err = &ConfigError{Path: k, Reason: "unknown layer (want one of " + strings.Join(stackKeys, ", ") + ")"}
		}
		if err != nil {
			errs = append(errs, asConfigError(k, err))
		}
	}
	return errors.Join(errs...)
}

// MarshalJSON encodes a Stack in the policy-file form (durations as strings),
// which LoadStacks reads back to an equal stack.
func (s Stack) MarshalJSON() ([]byte, error) {
	type plain Stack
	return json.Marshal(struct {
		plain
		Budget *duration
	}{plain: plain(s), Budget: optDuration(s.Budget)})
}

// asConfigError makes sure every decoding problem matches ErrInvalidConfig
// and names its layer, splitting joined errors.
func asConfigError(layer string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, asConfigError(layer, e))
		}
		return errors.Join(out...)
	}
	if errors.Is(err, ErrInvalidConfig) {
		return err
	}
	return fileError(layer, "", err)
}

// LoadStacks reads named stacks from a policy file: src is a file path
// (string) or an [io.Reader]. The file is YAML or JSON (JSON is YAML too), a
// map from stack name to [Stack], with the config structs' json keys,
// durations as strings ("1.5s") or numbers of seconds, and a fallback value as
// any YAML/JSON value:
//
//	embedding_api:
//	  fallback: {value: []}
//	  circuit_breaker: {name: embedding_api, failure_threshold: 5, reset_timeout: 2m}
//	  retry: {max_attempts: 3, delay: 1s}
//
// Unknown keys are errors, never silently ignored defaults. Every stack is
// validated; every problem in the file is returned at once, each naming the
// file, the stack and the field and matching [ErrInvalidConfig]. Functions
// (a fallback endpoint, RetryIf, an observer) cannot be written in a file: set
// them on the loaded stack by its name before building it.
//
// The input is bounded: at most [DefaultMaxPolicyBytes] (1 MiB; see
// [LoadStacksWith] for another limit), a bounded number of keys and values
// with aliases expanded, and a bounded depth; keys are exact (a stack's
// layers and a layer's fields are lowercase) and a key given twice is an
// error naming both spellings.
func LoadStacks(src any) (map[string]Stack, error) {
	return LoadStacksWith(src, LoadOptions{})
}

func decodeStacks(file string, data []byte) (map[string]Stack, error) {
	doc, err := parseBounded(file, data)
	if err != nil {
		return nil, err
	}
	if doc == nil {
		return map[string]Stack{}, nil
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: %w: the file must be a map from stack name to stack", file, ErrInvalidConfig)
	}
	stacks := make(map[string]Stack, len(top))
	var errs []error
	for _, name := range sortedKeys(top) {
		js, err := json.Marshal(jsonable(top[name]))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: stack %q: %w: %v", file, name, ErrInvalidConfig, err))
			continue
		}
		var s Stack
		err = s.UnmarshalJSON(js)
		if s.Name == "" {
			s.Name = name
		}
		if err != nil {
			errs = append(errs, wrapEach(err, fmt.Sprintf("%s: stack %q", file, name)))
			continue
		}
		if err := s.Validate(); err != nil {
			errs = append(errs, wrapEach(err, fmt.Sprintf("%s: stack %q", file, name)))
			continue
		}
		stacks[name] = s
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return stacks, nil
}

// wrapEach prefixes every error of a joined error with where.
func wrapEach(err error, where string) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, wrapEach(e, where))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// jsonable converts what the YAML decoder produced into values encoding/json
// accepts (maps with non-string keys become string-keyed).
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = jsonable(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = jsonable(e)
		}
		return t
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
